"""The fast profile build against the exact one.

Two shortcuts keep building a profile cheap: later chunks are counted with the lookup-table Binner instead of
`np.searchsorted`, and a first chunk of more than `SAMPLE_ABOVE` values takes its fine edges from a sample
instead of a sort. Neither may cost accuracy: counts stay exact for the edges chosen, and the sampled build
describes the same distribution as the sorted one within the tolerances the scipy cross-checks use
(tests/drift/test_metrics.py: KS statistic within 0.01, normalized Wasserstein within 0.01 + 3%).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import amlops.drift.profile as prof
from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.profile import SAMPLE_ROWS, ProfileBuilder, ReferenceProfile

N = 5 * SAMPLE_ROWS  # big enough that a sample is a real shortcut, small enough for a unit test


def _frame(seed: int = 11, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mixed = rng.normal(50.0, 5.0, n)
    mixed[rng.random(n) < 0.3] = 0.0  # an atom inside a continuous column (a "zero-inflated" feature)
    return pd.DataFrame(
        {
            "normal": rng.normal(10.0, 2.0, n),
            "lognormal": rng.lognormal(1.0, 0.8, n),
            "gamma": rng.gamma(2.0, 1.0, n),
            "poisson": rng.poisson(10.0, n).astype(np.float64),  # discrete: every value kept
            "mixed": mixed,
            "trend": np.sort(rng.normal(0.0, 1.0, n)),  # time-ordered: later chunks leave the first's range
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        }
    )


NUMERIC = ["normal", "lognormal", "gamma", "poisson", "mixed", "trend"]


def _build(frame: pd.DataFrame, chunk: int, **kwargs: int) -> ReferenceProfile:
    builder = ProfileBuilder(NUMERIC, ["cat"], **kwargs)
    for batch in pa.Table.from_pandas(frame, preserve_index=False).to_batches(chunk):
        builder.update(batch)
    return builder.finalize()


def _cdf_gap(a: prof.NumericProfile, b: prof.NumericProfile) -> float:
    grid = np.linspace(a.min, a.max, 400)
    ca = np.interp(grid, a.edges, np.r_[0, np.cumsum(a.counts)] / a.counts.sum())
    cb = np.interp(grid, b.edges, np.r_[0, np.cumsum(b.counts)] / b.counts.sum())
    return float(np.abs(ca - cb).max())


def _worst_bin_mass(p: prof.NumericProfile) -> float:
    """The heaviest bin as a multiple of an equal share (1.0: perfectly equal mass)."""
    return float(p.counts.max() / (p.counts.sum() / len(p.counts)))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


@pytest.mark.parametrize("chunk", [N, N // 3])
def test_counts_are_exact_for_the_edges_chosen(frame: pd.DataFrame, chunk: int) -> None:
    """Whatever the edges, each bin holds exactly the values in [edges[i], edges[i+1])."""
    for sample_above in (1, 10**9):  # sampled first chunk, sorted first chunk
        p = _build(frame, chunk, sample_above=sample_above)
        for name in NUMERIC:
            f = p.numeric[name]
            x = frame[name].to_numpy()
            exact = np.histogram(x, f.edges)[0]
            exact[-1] -= int((x == f.edges[-1]).sum())  # np.histogram closes its last bin; ours is half-open
            assert np.array_equal(f.counts, exact), (name, chunk, sample_above)
            assert f.edges[0] == x.min() and f.edges[-1] > x.max()


def test_sampled_build_matches_the_sorted_build(frame: pd.DataFrame) -> None:
    exact = _build(frame, N, sample_above=10**9)
    fast = _build(frame, N, sample_above=1)
    for name in NUMERIC:
        e, f = exact.numeric[name], fast.numeric[name]
        assert (f.count, f.min, f.max, f.discrete) == (e.count, e.min, e.max, e.discrete), name
        assert f.mean == pytest.approx(e.mean, rel=1e-12) and f.std == pytest.approx(e.std, rel=1e-12)
        if name == "mixed":
            # An atom's bin reaches to the next edge, and the linear CDF inside it is fiction in both builds
            # (they cut it at different points of the empty gap): the scoring test below judges this column.
            continue
        assert _cdf_gap(e, f) < 0.01, name
        # Equal-mass bins: the sorted build's worst bin is ~1.06x an equal share; the sample may add a little.
        if not e.discrete:
            assert _worst_bin_mass(f) < 1.25 * _worst_bin_mass(e), name
    assert fast.categorical["cat"].categories == exact.categorical["cat"].categories


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_sampled_build_scores_like_the_sorted_build(frame: pd.DataFrame, shift: float) -> None:
    """The metrics against either profile agree within the scipy cross-check tolerances."""
    exact = _build(frame, N, sample_above=10**9)
    fast = _build(frame, N, sample_above=1)
    current = _frame(seed=12, n=60_000)
    for name in NUMERIC:
        current[name] = current[name] + shift * current[name].std()
    table = pa.Table.from_pandas(current, preserve_index=False)
    opts = MonitorOptions(min_window_rows=1)
    a = run_monitor([table], exact, opts)["overall"]["features"]
    b = run_monitor([table], fast, opts)["overall"]["features"]
    for name in NUMERIC:
        ma, mb = a[name]["metrics"], b[name]["metrics"]
        ks_a = ma["two_sample_kolmogorov_smirnov_test"]["statistic"]
        ks_b = mb["two_sample_kolmogorov_smirnov_test"]["statistic"]
        assert abs(ks_a - ks_b) <= 0.01, (name, ks_a, ks_b)
        w_a = ma["normalized_wasserstein_distance"]["value"]
        w_b = mb["normalized_wasserstein_distance"]["value"]
        assert abs(w_a - w_b) <= 0.01 + 0.03 * w_a, (name, w_a, w_b)
        assert (
            ma["normalized_wasserstein_distance"]["exceeded"]
            == mb["normalized_wasserstein_distance"]["exceeded"]
        )


def test_a_biased_sample_is_caught(frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above can fail: a sample of the first rows of time-ordered data (not a random one) puts
    every fine edge in the low tail, and the equal-mass check notices."""
    monkeypatch.setattr(prof._NumericSketch, "_sample_index", lambda self, n: np.arange(SAMPLE_ROWS))
    exact = _build(frame, N, sample_above=10**9)
    biased = _build(frame, N, sample_above=1)
    assert _worst_bin_mass(biased.numeric["trend"]) > 1.25 * _worst_bin_mass(exact.numeric["trend"])


def test_a_value_the_sample_missed_is_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A discrete-looking sample must not drop the values it missed: a rare value outside the sample's atoms
    becomes an atom of its own, counted exactly."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, N).astype(np.float64)
    x[123] = 2.5  # one value the sample (almost surely) misses
    monkeypatch.setattr(prof._NumericSketch, "_sample_index", lambda self, n: np.arange(1000, 1000 + 64))
    builder = ProfileBuilder(["x"], [], sample_above=1)
    builder.update(pa.table({"x": x}))
    p = builder.finalize().numeric["x"]
    assert p.discrete and 2.5 in p.edges.tolist()
    assert p.counts[p.edges.tolist().index(2.5)] == 1 and p.counts.sum() == N
