"""The synthetic demand generator: realistic structure, deterministic by seed, drift only where asked."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from training_helpers import SCHEMA

from amlops.data.generate import COLUMNS, DRIFT_KINDS, NEW_CATEGORY, GeneratorConfig, generate
from amlops.data.schema import load_schema
from amlops.data.validate import validate_frame

BASE = GeneratorConfig(days=120, stores=3, products=6, seed=11)
DRIFT_DATE = date(2024, 3, 1)


def drifted(*kinds: str, strength: float = 1.0) -> pd.DataFrame:
    return generate(
        GeneratorConfig(
            days=120,
            stores=3,
            products=6,
            seed=11,
            drift_date=DRIFT_DATE,
            drifts=kinds,
            drift_strength=strength,
        )
    )


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate(BASE)


def test_same_seed_same_rows_other_seed_other_rows(base: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(base, generate(BASE))
    other = generate(GeneratorConfig(days=120, stores=3, products=6, seed=12))
    assert not other["units_sold"].equals(base["units_sold"])


def test_columns_keys_and_the_declared_schema(base: pd.DataFrame) -> None:
    assert list(base.columns) == COLUMNS
    assert len(base) == 120 * 3 * 6
    assert base["row_id"].is_unique
    assert not base.duplicated(["date", "store_id", "product_id"]).any()
    report = validate_frame(base, load_schema(SCHEMA), "generated")
    assert report.bad_rows == 0, report.summary()


def test_structure_weekly_seasonality_promotions_and_weather(base: pd.DataFrame) -> None:
    by_weekday = base.groupby(base["date"].dt.day_of_week)["units_sold"].mean()
    assert by_weekday.max() / by_weekday.min() > 1.1  # a weekly pattern
    promo = base.groupby("promotion")["units_sold"].mean()
    assert promo[1] > 1.2 * promo[0]  # promotions lift demand
    assert (base.loc[base["promotion"] == 1, "price"] < base.loc[base["promotion"] == 0, "price"].max()).all()
    assert base["temperature"].isna().mean() < 0.02  # a few sensor gaps, as the schema allows
    assert base["holiday"].sum() > 0
    assert (base["units_sold"] >= 0).all()


def test_longer_series_starts_with_the_shorter(base: pd.DataFrame) -> None:
    longer = generate(GeneratorConfig(days=180, stores=3, products=6, seed=11))
    pd.testing.assert_frame_equal(longer.iloc[: len(base)].reset_index(drop=True), base)


@pytest.mark.parametrize("kind", DRIFT_KINDS)
def test_drift_leaves_rows_before_the_drift_date_unchanged(base: pd.DataFrame, kind: str) -> None:
    df = drifted(kind)
    before = df[df["date"] < pd.Timestamp(DRIFT_DATE)].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        before, base[base["date"] < pd.Timestamp(DRIFT_DATE)].reset_index(drop=True)
    )
    after, base_after = (
        df[df["date"] >= pd.Timestamp(DRIFT_DATE)],
        base[base["date"] >= pd.Timestamp(DRIFT_DATE)],
    )
    assert not after.reset_index(drop=True).equals(base_after.reset_index(drop=True))


def test_each_drift_kind_does_what_it_says(base: pd.DataFrame) -> None:
    after = base["date"] >= pd.Timestamp(DRIFT_DATE)

    price = drifted("price_shift")
    ratio = price.loc[after.to_numpy(), "price"].mean() / base.loc[after, "price"].mean()
    assert ratio == pytest.approx(1.3, rel=0.02)

    new = drifted("new_category")
    cats = new.groupby(new["date"] >= pd.Timestamp(DRIFT_DATE))["product_category"].agg(set)
    assert NEW_CATEGORY not in cats[False] and NEW_CATEGORY in cats[True]

    cov = drifted("covariate_shift")
    assert cov.loc[after.to_numpy(), "temperature"].mean() - base.loc[
        after, "temperature"
    ].mean() == pytest.approx(6.0, abs=0.2)
    # Same draws, a higher promotion probability: every base promotion stays, more are added.
    assert (cov["promotion"] >= base["promotion"]).all()
    assert cov.loc[after.to_numpy(), "promotion"].sum() > base.loc[after, "promotion"].sum()
    pd.testing.assert_series_equal(cov.loc[~after.to_numpy(), "promotion"], base.loc[~after, "promotion"])

    # Concept changes: same covariates, different demand.
    promo = drifted("promo_response")
    pd.testing.assert_series_equal(promo["price"], base["price"])
    on = after & (base["promotion"] == 1)
    assert promo.loc[on.to_numpy(), "units_sold"].mean() < 0.9 * base.loc[on, "units_sold"].mean()

    season = drifted("seasonality")
    pd.testing.assert_series_equal(season["temperature"], base["temperature"])
    weekday = base["date"].dt.day_of_week
    peak_before = base[after].groupby(weekday[after])["units_sold"].mean().idxmax()
    s_after = season[after.to_numpy()]
    peak_after = s_after.groupby(s_after["date"].dt.day_of_week)["units_sold"].mean().idxmax()
    assert peak_after != peak_before


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown drift kind 'flood'"):
        GeneratorConfig(drift_date=DRIFT_DATE, drifts=("flood",))
    with pytest.raises(ValueError, match="need a drift date"):
        GeneratorConfig(drifts=("price_shift",))
    with pytest.raises(ValueError, match="at least 1"):
        GeneratorConfig(days=0)


def test_strength_zero_means_no_drift(base: pd.DataFrame) -> None:
    df = drifted("price_shift", "covariate_shift", "promo_response", strength=0.0)
    assert np.allclose(df["price"], base["price"])


def test_the_cli_help_lists_every_drift_kind() -> None:
    """`amlops data generate --help` names the kinds without importing the generator: the two lists agree."""
    from amlops.commands.data import DRIFT_HELP

    assert DRIFT_HELP.removesuffix(" (repeatable)").split(" | ") == list(DRIFT_KINDS)


def test_slow_movers_with_new_category_keeps_the_quieter_half_of_both() -> None:
    """Two row filters in one block (the new products exist only after the drift date; the busy half of the
    pairs goes from then on) used to index each other's rows: a raw ValueError."""
    from datetime import date

    drift = date(2024, 1, 20)
    df = generate(
        GeneratorConfig(
            start=date(2024, 1, 1),
            days=30,
            stores=4,
            products=8,
            drift_date=drift,
            drifts=("new_category", "slow_movers"),
        )
    )
    after = df[df["date"] >= pd.Timestamp(drift)]
    new = after[after["product_category"] == NEW_CATEGORY]
    assert len(new) and len(new) < 11 * 4 * 2  # 11 days x 4 stores x 2 new products, the busy half gone
    assert not (df[df["date"] < pd.Timestamp(drift)]["product_category"] == NEW_CATEGORY).any()
