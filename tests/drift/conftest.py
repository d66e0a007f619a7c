"""Small synthetic data for the monitor tests: a reference and current frames with and without drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_frame(n: int, seed: int, drift_from_day: int | None = None, days: int = 28) -> pd.DataFrame:
    """Daily data over `days` days from 2024-01-01 (a Monday); from `drift_from_day` on, x1 shifts by 1.5 sd,
    price scales by 1.6 and promo flips its mix."""
    rng = np.random.default_rng(seed)
    day = rng.integers(0, days, n)
    frame = pd.DataFrame(
        {
            "row_id": np.arange(n) + seed * 1_000_000,
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(day, unit="D"),
            "x0": rng.normal(0.0, 1.0, n),
            "x1": rng.normal(5.0, 2.0, n),
            "price": rng.lognormal(1.0, 0.4, n),
            "qty": rng.poisson(4, n).astype(np.int64),
            "store": rng.choice([f"s{i}" for i in range(8)], n),
            "promo": rng.choice(["yes", "no"], n, p=[0.2, 0.8]),
        }
    )
    if drift_from_day is not None:
        late = day >= drift_from_day
        frame.loc[late, "x1"] += 3.0
        frame.loc[late, "price"] *= 1.6
        frame.loc[late, "promo"] = rng.choice(["yes", "no"], int(late.sum()), p=[0.7, 0.3])
    frame["units_sold"] = 3.0 * frame["x0"] + frame["x1"] + rng.normal(0, 0.5, n)
    frame["prediction"] = 3.0 * frame["x0"] + 5.0 + rng.normal(0, 0.5, n)
    return frame


NUMERIC = ["x0", "x1", "price", "qty"]
CATEGORICAL = ["store", "promo"]


@pytest.fixture(scope="session")
def reference_frame() -> pd.DataFrame:
    return make_frame(20_000, seed=1)


@pytest.fixture(scope="session")
def drifted_frame() -> pd.DataFrame:
    return make_frame(14_000, seed=2, drift_from_day=14)


@pytest.fixture(scope="session")
def clean_frame() -> pd.DataFrame:
    return make_frame(14_000, seed=3)


@pytest.fixture(scope="session")
def reference_profile(reference_frame: pd.DataFrame):  # type: ignore[no-untyped-def]
    from amlops.drift.profile import build_profile

    return build_profile(reference_frame, NUMERIC, CATEGORICAL, target="units_sold", prediction="prediction")
