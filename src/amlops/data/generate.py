"""Synthetic daily demand per store x product, with knobs that inject drift from a given date.

Demand is a negative-binomial count around

    lambda = base(product) * size(store) * weekly(store type, weekday) * yearly(day of year) * holiday
             * (price / list price) ** -elasticity(category) * lift(category) ** promotion
             * exp(heat(category) * (temperature - 15))

Deterministic by seed, and *prefix-stable*: every random draw is made day by day in its own stream, so the
rows before the drift date are identical with and without drift, and a longer series starts with the shorter
one.

Drift kinds (from `drift_date`, scaled by `drift_strength`):
- `price_shift`     prices rise by 30 % (demand reacts through the same elasticity: a covariate change)
- `new_category`    new products of a new category (`plant_based`) appear
- `promo_response`  promotions lift demand far less than before (concept change)
- `seasonality`     the weekly pattern moves (peak mid-week) and the yearly swing doubles (concept change)
- `covariate_shift` warmer days and twice as many promotions, same demand function (covariate shift only)
- `level_shift`     the same rows sell less: demand falls by 25 % x strength (at most 90 %) from the drift date (a
                    competitor opens nearby; a concept change only labels show, which a retrain on the new weeks
                    learns)
- `slow_movers`     the assortment leans to slow sellers: the busiest half of the store x product pairs (by expected
                    volume) leaves the shelves (sold through another channel), so a day's rows are the quieter half;
                    every row stays inside the values seen before and demand keeps its function (a pure shift in
                    the mix). Counts of a few units are relatively noisier (Poisson), so the error per unit sold
                    rises, and an error estimator fitted on the earlier rows can see it coming
                    (amlops.drift.estimate; the demo's story).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

STORE_TYPES = ("urban", "suburban", "rural")
CATEGORIES = ("beverages", "snacks", "dairy", "produce", "household", "frozen")
NEW_CATEGORY = "plant_based"
DRIFT_KINDS = (
    "price_shift",
    "new_category",
    "promo_response",
    "seasonality",
    "covariate_shift",
    "level_shift",
    "slow_movers",
)
COLUMNS = [
    "row_id",
    "date",
    "store_id",
    "store_type",
    "product_id",
    "product_category",
    "price",
    "promotion",
    "temperature",
    "holiday",
    "units_sold",
]

# Per category: list price, elasticity, promotion lift, temperature sensitivity (per degree C), holiday lift.
_CATEGORY = {
    "beverages": (2.5, 1.4, 1.6, 0.030, 1.30),
    "snacks": (3.0, 1.2, 1.7, 0.005, 1.45),
    "dairy": (2.0, 0.8, 1.3, 0.000, 1.15),
    "produce": (2.8, 1.0, 1.4, 0.010, 1.20),
    "household": (6.0, 0.6, 1.5, -0.005, 0.95),
    "frozen": (4.5, 1.1, 1.5, 0.040, 1.25),
    "plant_based": (3.8, 1.6, 1.9, 0.015, 1.10),
}
# Weekday multipliers (Mon..Sun) per store type.
_WEEKLY = {
    "urban": (1.05, 1.02, 1.00, 1.03, 1.10, 0.95, 0.85),
    "suburban": (0.85, 0.85, 0.90, 0.95, 1.10, 1.35, 1.20),
    "rural": (0.90, 0.88, 0.90, 0.92, 1.05, 1.40, 0.95),
}
_STORE_TYPE_SCALE = {"urban": 1.3, "suburban": 1.0, "rural": 0.6}
_NB_SHAPE = 8.0  # negative-binomial dispersion: variance = mu + mu^2 / shape
_REFERENCE_TEMPERATURE = 15.0


@dataclass(frozen=True)
class GeneratorConfig:
    start: date = date(2024, 1, 1)
    days: int = 365
    # 5 x 40 = 200 rows a day, 1,400 a week: a weekly window clears the monitor's min_window_rows (500), and
    # forty products make a week's price and promotion mix stable enough that weekly windows before a drift
    # stay under the default thresholds (tests/newcomer holds both).
    stores: int = 5
    products: int = 40
    seed: int = 42
    drift_date: date | None = None
    drifts: tuple[str, ...] = ()
    drift_strength: float = 1.0
    # Multiplies every expected count: below 1, counts of a few units, where the Poisson part of the noise
    # dominates and the error per unit sold depends on the volume (the demo uses it).
    demand_scale: float = 1.0
    # Write only the rows from this day on. The series still starts at `start`, so these rows are exactly the
    # tail of the longer file: "new data" that continues the history a model was trained on.
    keep_from: date | None = None

    def __post_init__(self) -> None:
        if self.days < 1 or self.stores < 1 or self.products < 1:
            raise ValueError("days, stores and products must be at least 1")
        unknown = [d for d in self.drifts if d not in DRIFT_KINDS]
        if unknown:
            raise ValueError(f"unknown drift kind {unknown[0]!r} (known: {', '.join(DRIFT_KINDS)})")
        if self.drifts and self.drift_date is None:
            raise ValueError("drift kinds need a drift date")
        if self.drift_strength < 0:
            raise ValueError("drift_strength must be >= 0")
        if self.demand_scale <= 0:
            raise ValueError("demand_scale must be > 0")
        last = date.fromordinal(self.start.toordinal() + self.days - 1)
        if self.keep_from is not None and not self.start <= self.keep_from <= last:
            raise ValueError(
                f"--from {self.keep_from} is outside the generated days ({self.start} .. {last})"
            )


def holidays(dates: pd.DatetimeIndex) -> np.ndarray:
    """Public-holiday flag: fixed dates plus the fourth Thursday of November (a US-like calendar)."""
    md = dates.month * 100 + dates.day
    fixed = np.isin(md, [101, 501, 704, 1111, 1224, 1225, 1231])
    thanksgiving = (dates.month == 11) & (dates.day_of_week == 3) & (dates.day >= 22) & (dates.day <= 28)
    return np.asarray(fixed | thanksgiving)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    per_block = ("entities", "promotion_week", "promotion_store", "price", "noise")
    names = ("temperature", "store_temperature", "nulls", *per_block, *(f"new_{n}" for n in per_block))
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {n: np.random.default_rng(s) for n, s in zip(names, seqs, strict=True)}


def _daily(rng: np.random.Generator, days: int, width: int, draw: str, **kw: Any) -> np.ndarray:
    """Draw a (days, width) array day by day, so a longer series starts with exactly the shorter one."""
    fn = getattr(rng, draw)
    return np.stack([fn(size=width, **kw) for _ in range(days)]) if days else np.empty((0, width))


def generate(config: GeneratorConfig) -> pd.DataFrame:
    """Rows of date x store x product (plus the new-category products after the drift date, if asked)."""
    rng = _streams(config.seed)
    dates = pd.date_range(pd.Timestamp(config.start), periods=config.days, freq="D")
    n_days, n_stores = len(dates), config.stores
    drift_on = (
        np.asarray(dates >= pd.Timestamp(config.drift_date)) if config.drift_date else np.zeros(n_days, bool)
    )
    strength = config.drift_strength
    active = set(config.drifts)

    # Stores: type (balanced, shuffled), size.
    ent = rng["entities"]
    store_types = np.array([STORE_TYPES[i % len(STORE_TYPES)] for i in range(n_stores)])
    ent.shuffle(store_types)
    store_size = np.exp(ent.normal(0.0, 0.25, n_stores)) * np.array(
        [_STORE_TYPE_SCALE[t] for t in store_types]
    )
    store_temp_offset = ent.normal(0.0, 2.0, n_stores)

    # Shared daily weather: seasonal cycle + AR(1) noise; each store a bit warmer or cooler.
    doy = np.asarray(dates.day_of_year, dtype=float)
    shocks = _daily(rng["temperature"], n_days, 1, "normal", scale=2.5)[:, 0]
    ar = np.zeros(n_days)
    for t in range(n_days):
        ar[t] = (0.7 * ar[t - 1] if t else 0.0) + shocks[t]
    regional = 12.0 + 10.0 * np.sin(2 * np.pi * (doy - 110) / 365.25) + ar
    temperature = (
        regional[:, None]
        + store_temp_offset[None, :]
        + _daily(rng["store_temperature"], n_days, n_stores, "normal", scale=0.8)
    )
    if "covariate_shift" in active:
        temperature = temperature + (6.0 * strength) * drift_on[:, None]

    holiday = holidays(dates).astype(int)
    frames = [
        _block(
            config,
            rng,
            prefix="",
            dates=dates,
            drift_on=drift_on,
            temperature=temperature,
            holiday=holiday,
            store_types=store_types,
            store_size=store_size,
            n_products=config.products,
            first_product=1,
            categories=[CATEGORIES[i % len(CATEGORIES)] for i in range(config.products)],
        )
    ]
    if "new_category" in active and drift_on.any():
        n_new = max(1, config.products // 4)
        frames.append(
            _block(
                config,
                rng,
                prefix="new_",
                dates=dates,
                drift_on=drift_on,
                temperature=temperature,
                holiday=holiday,
                store_types=store_types,
                store_size=store_size,
                n_products=n_new,
                first_product=config.products + 1,
                categories=[NEW_CATEGORY] * n_new,
                only_after_drift=True,
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df = df.sort_values(["date", "store_id", "product_id"], kind="mergesort").reset_index(drop=True)
    if config.keep_from is not None:
        df = df[df["date"] >= pd.Timestamp(config.keep_from)].reset_index(drop=True)
    return df[COLUMNS]


def _block(
    config: GeneratorConfig,
    rng: dict[str, np.random.Generator],
    *,
    prefix: str,
    dates: pd.DatetimeIndex,
    drift_on: np.ndarray,
    temperature: np.ndarray,
    holiday: np.ndarray,
    store_types: np.ndarray,
    store_size: np.ndarray,
    n_products: int,
    first_product: int,
    categories: list[str],
    only_after_drift: bool = False,
) -> pd.DataFrame:
    n_days, n_stores = len(dates), len(store_types)
    strength = config.drift_strength
    active = set(config.drifts)
    ent = rng[f"{prefix}entities"]
    cats = np.array(categories)
    spec = np.array([_CATEGORY[c] for c in cats])  # (P, 5)
    list_price = np.round(spec[:, 0] * np.exp(ent.normal(0.0, 0.2, n_products)), 2)
    base = np.exp(ent.normal(np.log(12.0), 0.5, n_products))
    elasticity, lift, heat, holiday_lift = spec[:, 1], spec[:, 2], spec[:, 3], spec[:, 4]

    # Promotions run for a week per product, most stores take part; price drops 20 % on promotion.
    n_weeks = (n_days + 6) // 7
    week_promo = _daily(rng[f"{prefix}promotion_week"], n_weeks, n_products, "random")
    takes_part = _daily(rng[f"{prefix}promotion_store"], n_days, n_stores * n_products, "random").reshape(
        n_days, n_stores, n_products
    )
    week_of_day = np.arange(n_days) // 7
    promo_p = np.where(("covariate_shift" in active) & drift_on, min(0.12 * (1 + strength), 0.9), 0.12)
    promotion = (week_promo[week_of_day] < promo_p[:, None])[:, None, :] & (takes_part < 0.8)

    # Price: a slow walk around the list price per product, the drift's level shift, the promotion discount.
    walk = np.cumsum(_daily(rng[f"{prefix}price"], n_days, n_products, "normal", scale=0.004), axis=0)
    level = 1.0 + np.clip(walk, -0.15, 0.15)
    if "price_shift" in active:
        level = level * (1.0 + 0.3 * strength * drift_on)[:, None]
    price = np.round(list_price[None, None, :] * level[:, None, :] * np.where(promotion, 0.8, 1.0), 2)

    # Demand.
    dow = np.asarray(dates.day_of_week)
    weekly = np.array([_WEEKLY[t] for t in store_types])  # (S, 7)
    weekly_now = weekly[:, dow].T  # (D, S)
    amplitude = np.full(n_days, 0.15)
    if "seasonality" in active:
        shifted = np.roll(weekly, -3, axis=1)[:, dow].T  # peak moves from the weekend to mid-week
        weekly_now = np.where(drift_on[:, None], shifted, weekly_now)
        amplitude = np.where(drift_on, 0.15 * (1 + strength), amplitude)
    doy = np.asarray(dates.day_of_year, dtype=float)
    yearly = (
        1.0 + amplitude * np.sin(2 * np.pi * (doy - 80) / 365.25) + 0.25 * (np.asarray(dates.month) == 12)
    )
    lift_now = np.broadcast_to(lift, (n_days, n_products)).copy()
    if "promo_response" in active:
        weaker = 1.0 + (lift - 1.0) * max(0.0, 1.0 - 0.8 * strength)
        lift_now = np.where(drift_on[:, None], weaker[None, :], lift_now)
    level_now = (
        np.where(drift_on, max(1.0 - 0.25 * strength, 0.1), 1.0)
        if "level_shift" in active
        else np.ones(n_days)
    )
    mu = (
        config.demand_scale
        * level_now[:, None, None]
        * base[None, None, :]
        * store_size[None, :, None]
        * weekly_now[:, :, None]
        * yearly[:, None, None]
        * np.where(holiday[:, None, None] == 1, holiday_lift[None, None, :], 1.0)
        * (price / (list_price[None, None, :])) ** (-elasticity[None, None, :])
        * np.where(promotion, lift_now[:, None, :], 1.0)
        * np.exp(heat[None, None, :] * (temperature[:, :, None] - _REFERENCE_TEMPERATURE))
    )
    noise_rng = rng[f"{prefix}noise"]
    units = np.zeros(mu.shape, dtype=np.int64)
    for t in range(n_days):  # day by day (gamma then Poisson) keeps the stream prefix-stable
        shock = noise_rng.gamma(_NB_SHAPE, 1.0 / _NB_SHAPE, size=(n_stores, n_products))
        units[t] = noise_rng.poisson(mu[t] * shock)

    # Weather sensors fail now and then: ~0.5 % of temperatures missing (a nullable column in the schema).
    temp_grid = np.broadcast_to(np.round(temperature, 1)[:, :, None], units.shape).astype(float).copy()
    gaps = (
        _daily(rng["nulls"], n_days, n_stores, "random") < 0.005
        if not prefix
        else np.zeros((n_days, n_stores), bool)
    )
    temp_grid[np.broadcast_to(gaps[:, :, None], units.shape)] = np.nan

    grid = np.meshgrid(np.arange(n_days), np.arange(n_stores), np.arange(n_products), indexing="ij")
    d_idx, s_idx, p_idx = (axis.ravel() for axis in grid)
    store_ids = np.array([f"S{i + 1:03d}" for i in range(n_stores)])
    product_ids = np.array([f"P{first_product + i:03d}" for i in range(n_products)])
    day_str = np.asarray(dates.strftime("%Y%m%d"))
    df = pd.DataFrame(
        {
            "row_id": pd.Series(day_str[d_idx]) + "-" + store_ids[s_idx] + "-" + product_ids[p_idx],
            "date": dates[d_idx],
            "store_id": store_ids[s_idx],
            "store_type": store_types[s_idx],
            "product_id": product_ids[p_idx],
            "product_category": cats[p_idx],
            "price": price.ravel(),
            "promotion": promotion.ravel().astype(int),
            "temperature": temp_grid.ravel(),
            "holiday": holiday[d_idx],
            "units_sold": units.ravel().astype(int),
        }
    )
    # One mask, applied once: both filters index the block's full grid of rows.
    keep = np.asarray(drift_on[d_idx]) if only_after_drift else np.ones(len(df), dtype=bool)
    if "slow_movers" in active and strength > 0 and drift_on.any():
        keep &= ~(drift_on[d_idx] & _busy_pairs(base, store_size).ravel()[s_idx * n_products + p_idx])
    return df[keep] if not keep.all() else df


def _busy_pairs(base: np.ndarray, store_size: np.ndarray) -> np.ndarray:
    """(stores, products): the pairs whose expected volume is above the median (no draw: prefix-stable)."""
    volume = store_size[:, None] * base[None, :]
    return np.asarray(volume > np.median(volume))
