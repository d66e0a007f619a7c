"""The bottom-k samples behind the label-free estimates (amlops.drift.estimate.BottomK, RowHasher): a row's hash
is a function of its content only, so the sample, and the estimate, do not depend on the order, the chunking or
the partition of the stream; merged samples are the one-pass sample."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from amlops.drift import estimate as E
from amlops.drift.multivariate import MultivariateSample, fit_pca

from .test_estimate import CATEGORICAL, NUMERIC, make


@pytest.fixture(scope="module")
def estimator() -> E.ErrorEstimator:
    X, pred, y = make(8_000, seed=1)
    return E.fit_error_estimator(X, pred, y, NUMERIC, CATEGORICAL, seed=0)


def _hash(numeric: dict[str, np.ndarray], categorical: dict[str, pa.Array]) -> np.ndarray:
    n = len(next(iter(numeric.values())))
    return E.RowHasher(list(numeric), list(categorical)).hashes(n, numeric, categorical)


def test_equal_values_hash_equal_whatever_their_encoding() -> None:
    x = np.array([0.0, -0.0, np.nan, 1.5, float.fromhex("-0x1.8p+1")])
    odd_nan = np.frombuffer(np.uint64(0x7FF8_0000_0000_0001).tobytes(), dtype=np.float64)[0]
    y = np.array([0.0, 0.0, odd_nan, 1.5, -3.0])  # -0.0 and 0.0, two NaN payloads: the same values
    plain = pa.array(["a", "a", None, "b", "c"])
    encoded = pa.array(["c", "a", "a", None, "b", "c"]).dictionary_encode().slice(1)  # other indices
    chunked = pa.chunked_array([plain.slice(0, 2), plain.slice(2)])
    h = _hash({"x": x}, {"s": plain})
    assert h.tolist() == _hash({"x": y}, {"s": encoded}).tolist() == _hash({"x": y}, {"s": chunked}).tolist()
    assert h[0] == h[1] and len(set(h[[0, 2, 3, 4]].tolist())) == 4


def test_a_hash_depends_on_every_column_and_on_names_not_positions() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=1_000), rng.normal(size=1_000)
    base = _hash({"a": a, "b": b}, {})
    assert len(set(base.tolist())) == 1_000
    assert (_hash({"b": b, "a": a}, {}) == base).all()  # the same columns listed in another order
    assert not (_hash({"a": a, "b": -b}, {}) == base).any()
    assert not (_hash({"a": b, "b": a}, {}) == base).any()  # swapped values are other rows
    # (x, y) and (-x, -y): sign flips in two columns must not cancel (a plain multiply-add hash would let them).
    assert not (_hash({"a": -a, "b": -b}, {}) == base).any()
    # Roughly uniform: the share of hashes below a quarter of the range.
    assert 0.2 < float(np.mean(base < np.uint64(2**62))) < 0.3


def _stream(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    X, pred, _ = make(n, seed=seed, shift=0.5)
    return X, pred


def _sampled(
    est: E.ErrorEstimator, frames: list[tuple[pd.DataFrame, np.ndarray]], k: int
) -> E.EstimateSample:
    acc = E.EstimateSample(est, k=k)
    for X, pred in frames:
        acc.update(pa.Table.from_pandas(X, preserve_index=False), pred, None, np.zeros(1, np.intp))
    acc.flush()
    return acc


def _pieces(X: pd.DataFrame, pred: np.ndarray, cuts: list[int]) -> list[tuple[pd.DataFrame, np.ndarray]]:
    bounds = [0, *cuts, len(X)]
    return [(X.iloc[a:b], pred[a:b]) for a, b in itertools.pairwise(bounds)]


def test_order_chunking_and_partition_give_the_same_estimate(estimator: E.ErrorEstimator) -> None:
    X, pred = _stream(12_000, seed=3)
    one = _sampled(estimator, [(X, pred)], k=300).window(0)
    order = np.random.default_rng(1).permutation(len(X))
    shuffled = _sampled(estimator, _pieces(X.iloc[order], pred[order], [1_000, 7_777]), k=300).window(0)
    assert shuffled == one
    # Partitions sampled apart, then united in any order and grouping (as partials are).
    parts = [_sampled(estimator, [piece], k=300) for piece in _pieces(X, pred, [2_500, 4_000, 9_000])]
    for seed in range(3):
        random.Random(seed).shuffle(parts)
        merged = E.EstimateSample(estimator, k=300)
        merged.sample.absorb([(p.sample.arrays(1), np.zeros(1, np.intp)) for p in parts], 1)
        assert merged.window(0) == one


def test_keeping_the_first_k_instead_of_the_smallest_changes_the_merge(
    estimator: E.ErrorEstimator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted fault: a union that keeps the first k entries met: the merged estimate is not the one-pass one."""
    X, pred = _stream(6_000, seed=4)
    one = _sampled(estimator, [(X, pred)], k=200).window(0)

    def first_k(self: E.BottomK, g: int, h: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        self.hashes[g], self.counts[g], self.values[g] = h[: self.k], c[: self.k], v[: self.k]

    parts = [_sampled(estimator, [piece], k=200) for piece in _pieces(X, pred, [3_000])]
    monkeypatch.setattr(E.BottomK, "union", first_k)
    merged = E.EstimateSample(estimator, k=200)
    merged.sample.absorb([(p.sample.arrays(1), np.zeros(1, np.intp)) for p in reversed(parts)], 1)
    assert merged.window(0) != one


def test_repeated_rows_are_one_entry_with_their_count(estimator: E.ErrorEstimator) -> None:
    """A window of 40 distinct rows repeated 500 times each (20,000 rows): all 40 fit in the sample, counted, so the
    estimate is the exact mean of the rows, not of one repeated row, and has no subsampling term."""
    X, pred = _stream(40, seed=5)
    reps = np.tile(np.arange(40), 500)
    many = _sampled(estimator, [(X.iloc[reps].reset_index(drop=True), pred[reps])], k=100)
    assert many.sample.counts[0].sum() == 20_000 and len(many.sample.hashes[0]) == 40
    few = _sampled(estimator, [(X, pred)], k=100).window(0)
    assert many.window(0)["mae"] == pytest.approx(few["mae"], rel=1e-12)
    assert many.sample.subsampling_variance(0, many.sample.values[0][:, 0]) == 0.0


def test_rows_without_a_prediction_are_met_not_sampled(estimator: E.ErrorEstimator) -> None:
    """The estimate's count is the rows it used (those with a prediction): a file without the prediction column
    never reaches the sample on the map-reduce path, and there is no error to estimate without a prediction."""
    X, pred = _stream(1_000, seed=6)
    pred = pred.copy()
    pred[::4] = np.nan
    acc = _sampled(estimator, [(X, pred)], k=2_000)
    assert acc.sample.rows[0] == 1_000 and acc.sample.population[0] == 750
    assert acc.window(0)["count"] == 750 and acc.sample.counts[0].sum() == 750


def test_the_multivariate_sample_merges_like_one_pass() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"a": rng.normal(size=9_000), "b": rng.normal(size=9_000), "c": rng.normal(size=9_000)}
    )
    pca = fit_pca(frame, ["a", "b", "c"])
    table = pa.Table.from_pandas(frame, preserve_index=False)

    def sampled(parts: list[pa.Table]) -> MultivariateSample:
        s = MultivariateSample(pca, k=500)
        for t in parts:
            s.update(t, None, np.zeros(1, np.intp))
        return s

    one = sampled([table]).window(0)
    pieces = [sampled([table.slice(0, 4_000)]), sampled([table.slice(4_000)])]
    merged = MultivariateSample(pca, k=500)
    merged.sample.absorb([(p.sample.arrays(1), np.zeros(1, np.intp)) for p in reversed(pieces)], 1)
    assert merged.window(0) == one
    assert one["count"] == 9_000 and one["threshold"] >= pca.threshold(9_000)  # sampled: no narrower
