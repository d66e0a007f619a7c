"""The fast binner must equal np.searchsorted(edges, x, side="right") exactly, whatever grid it picks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlops.drift.binning import Binner, float_keys
from amlops.drift.profile import build_profile

RNG = np.random.default_rng(7)
N = 60_000
DATA = {
    "normal": RNG.normal(size=N),
    "lognormal": RNG.lognormal(0.0, 2.0, N),
    "narrow_offset": 47.6 + 1e-4 * RNG.normal(size=N),
    "student_t": RNG.standard_t(2, N),
    "negative": -RNG.lognormal(0.0, 1.5, N),
    "zero_inflated": np.where(RNG.random(N) < 0.5, 0.0, RNG.exponential(size=N)),
    "integers": RNG.poisson(5, N).astype(float),
    "days_of_week": RNG.integers(0, 7, N).astype(float),
    "halves": RNG.integers(0, 40, N) / 2.0,
    "huge_range": np.concatenate([[-1e300, 1e300], RNG.normal(size=N - 2)]),
}


@pytest.mark.parametrize("name", sorted(DATA))
def test_binner_equals_searchsorted(name: str) -> None:
    values = DATA[name]
    p = build_profile(pd.DataFrame({name: values}), [name], []).numeric[name]
    binner = Binner(p.edges, p.counts, discrete=p.discrete)
    # Current data: shifted and scaled copies plus every edge, its neighbours and extreme values.
    edges = p.edges
    probes = np.concatenate(
        [
            values * 1.3 + 0.2 * np.std(values[np.abs(values) < 1e200]),
            values,
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            [np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324, -5e-324],
        ]
    )
    got = binner(probes)
    want = np.searchsorted(edges, probes, side="right")
    assert np.array_equal(got, want), (
        f"{name}: {int((got != want).sum())} values binned differently ({binner.mode})"
    )


def test_grids_are_chosen_for_speed() -> None:
    """Typical columns get a lookup grid (not the plain binary search) with little mass left to search."""
    for name in ("normal", "lognormal", "narrow_offset", "integers", "days_of_week"):
        p = build_profile(pd.DataFrame({name: DATA[name]}), [name], []).numeric[name]
        binner = Binner(p.edges, p.counts, discrete=p.discrete)
        assert binner.mode != "search", name
        assert binner.ambiguous_mass < 0.15, (name, binner.ambiguous_mass)


def test_float_keys_preserve_order() -> None:
    x = np.sort(np.concatenate([RNG.normal(size=1000) * 10.0 ** RNG.integers(-300, 300, 1000), [0.0]]))
    keys = float_keys(x)
    assert np.all(np.diff(keys) >= 0)
