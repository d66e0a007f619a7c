"""The reference profile: one-pass build (DataFrame or chunks), JSON round trip, versioning and merge."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.profile import (
    SCHEMA_VERSION,
    ProfileError,
    ReferenceProfile,
    build_profile,
    build_profile_from_batches,
)

from .conftest import CATEGORICAL, NUMERIC


def test_contract_build_profile_and_json(tmp_path: Path, reference_frame: pd.DataFrame) -> None:
    """The API the training step relies on: build_profile(df, numeric, categorical), to_json, from_json."""
    profile = build_profile(reference_frame, NUMERIC, CATEGORICAL)
    path = tmp_path / "model" / "reference_profile.json"
    profile.to_json(path)
    loaded = ReferenceProfile.from_json(path)
    assert loaded.features == NUMERIC + CATEGORICAL
    assert loaded.row_count == len(reference_frame)
    for name in NUMERIC:
        a, b = profile.numeric[name], loaded.numeric[name]
        assert np.array_equal(a.edges, b.edges) and np.array_equal(a.counts, b.counts)
        assert b.mean == pytest.approx(reference_frame[name].mean())
        assert b.std == pytest.approx(reference_frame[name].std(ddof=0))
        assert b.min == reference_frame[name].min() and b.max == reference_frame[name].max()
        assert b.counts.sum() == len(reference_frame)
    assert loaded.categorical["promo"].categories == reference_frame["promo"].value_counts().to_dict()
    data = json.loads(path.read_text())
    assert data["schema"] == "amlops.reference_profile" and data["schema_version"] == SCHEMA_VERSION


def test_quantile_edges_are_near_equal_mass(reference_frame: pd.DataFrame) -> None:
    p = build_profile(reference_frame, ["x0"], [], bins=100).numeric["x0"]
    assert len(p.counts) == 100
    share = p.counts / p.counts.sum()
    assert share.max() < 0.0125 and share.min() > 0.0075
    for q in (0.1, 0.5, 0.9):
        assert p.quantile(q) == pytest.approx(reference_frame["x0"].quantile(q), abs=0.02)


def test_discrete_column_keeps_every_value(reference_frame: pd.DataFrame) -> None:
    p = build_profile(reference_frame, ["qty"], []).numeric["qty"]
    assert p.discrete
    values = np.sort(reference_frame["qty"].unique()).astype(float)
    assert np.array_equal(p.edges[:-1], values)
    assert p.counts.tolist() == [int((reference_frame["qty"] == v).sum()) for v in values]


def test_newer_schema_version_is_refused(tmp_path: Path, reference_profile: ReferenceProfile) -> None:
    data = reference_profile.to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="newer"):
        ReferenceProfile.from_json(path)
    path.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        ReferenceProfile.from_json(path)
    with pytest.raises(ProfileError, match="not found"):
        ReferenceProfile.from_json(tmp_path / "missing.json")


def test_chunked_build_matches_whole_build(reference_frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(reference_frame, preserve_index=False)
    whole = build_profile(reference_frame, NUMERIC, CATEGORICAL)
    chunked = build_profile_from_batches(table.to_batches(max_chunksize=3_000), NUMERIC, CATEGORICAL)
    _assert_same_data(whole, chunked)


def test_sorted_chunks_fold_out_of_range_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time-ordered data (a trend) puts most later values outside the first chunk's range: the folded
    extension bins must still count every value and keep the quantiles."""
    import amlops.drift.profile as prof

    monkeypatch.setattr(prof, "OUTLIER_CAP", 5_000)
    rng = np.random.default_rng(0)
    values = np.sort(rng.lognormal(0, 1, 60_000))
    frame = pd.DataFrame({"v": values})
    chunked = build_profile_from_batches(pa.Table.from_pandas(frame).to_batches(4_000), ["v"], [])
    p = chunked.numeric["v"]
    assert p.counts.sum() == len(values)
    assert np.all(np.diff(p.edges) > 0)
    for q in (0.05, 0.5, 0.95):
        assert p.quantile(q) == pytest.approx(np.quantile(values, q), rel=0.03)


def test_merge_equals_profile_of_concatenation(reference_frame: pd.DataFrame) -> None:
    a, b = reference_frame.iloc[:7_000], reference_frame.iloc[7_000:]
    merged = build_profile(a, NUMERIC, CATEGORICAL).merge(build_profile(b, NUMERIC, CATEGORICAL))
    whole = build_profile(reference_frame, NUMERIC, CATEGORICAL)
    _assert_same_data(whole, merged)
    # Discrete histograms and categories merge exactly.
    assert np.array_equal(merged.numeric["qty"].edges, whole.numeric["qty"].edges)
    assert np.array_equal(merged.numeric["qty"].counts, whole.numeric["qty"].counts)
    assert merged.categorical["store"].categories == whole.categorical["store"].categories


def test_merge_with_identical_edges_adds_counts(reference_profile: ReferenceProfile) -> None:
    doubled = reference_profile.merge(reference_profile)
    for name, p in reference_profile.numeric.items():
        assert np.array_equal(doubled.numeric[name].counts, 2 * p.counts)
        assert doubled.numeric[name].std == pytest.approx(p.std)
    assert doubled.row_count == 2 * reference_profile.row_count


def test_categorical_tail_goes_to_other() -> None:
    frame = pd.DataFrame({"c": [f"v{i % 50}" for i in range(1000)] + ["rare"]})
    p = build_profile(frame, [], ["c"], max_categories=10).categorical["c"]
    assert len(p.categories) == 10
    assert p.other_count == 1001 - sum(p.categories.values())
    assert p.other_distinct == 41


def test_edge_columns_profile_without_crashing() -> None:
    frame = pd.DataFrame(
        {
            "constant": np.full(100, 3.5),
            "all_null": np.full(100, np.nan),
            "with_inf": np.r_[np.arange(98.0), np.inf, -np.inf],
            "cat_null": [None] * 100,
        }
    )
    p = build_profile(frame, ["constant", "all_null", "with_inf"], ["cat_null"])
    assert p.numeric["constant"].discrete and p.numeric["constant"].counts.tolist() == [100]
    assert p.numeric["all_null"].count == 0 and p.numeric["all_null"].null_count == 100
    assert math.isnan(p.numeric["all_null"].mean)
    assert p.numeric["with_inf"].nonfinite_count == 2 and p.numeric["with_inf"].count == 98
    assert p.categorical["cat_null"].null_count == 100
    ReferenceProfile.from_dict(json.loads(json.dumps(p.to_dict(), allow_nan=False)))


def test_missing_column_is_named(reference_frame: pd.DataFrame) -> None:
    with pytest.raises(ProfileError, match="nope"):
        build_profile(reference_frame, ["x0", "nope"], [])


def _assert_same_data(expected: ReferenceProfile, got: ReferenceProfile) -> None:
    """Counts, moments, min/max and nulls equal; the histograms describe the same distribution."""
    assert got.row_count == expected.row_count
    for name, e in expected.numeric.items():
        g = got.numeric[name]
        assert (g.count, g.null_count, g.min, g.max) == (e.count, e.null_count, e.min, e.max)
        assert g.mean == pytest.approx(e.mean, rel=1e-9, abs=1e-12)
        assert g.std == pytest.approx(e.std, rel=1e-9)
        assert g.counts.sum() == e.counts.sum()
    for name, e in expected.categorical.items():
        assert got.categorical[name].categories == e.categories
    # The histograms (piecewise-linear CDFs) stay within 1% of each other everywhere.
    for name, e in expected.numeric.items():
        g = got.numeric[name]
        cdf_e = np.interp(
            np.linspace(e.min, e.max, 200), e.edges, np.r_[0, np.cumsum(e.counts)] / e.counts.sum()
        )
        cdf_g = np.interp(
            np.linspace(e.min, e.max, 200), g.edges, np.r_[0, np.cumsum(g.counts)] / g.counts.sum()
        )
        assert np.abs(cdf_e - cdf_g).max() < 0.01, name


def test_profiles_score_their_own_data_as_no_drift(
    reference_frame: pd.DataFrame, reference_profile: ReferenceProfile
) -> None:
    table = pa.Table.from_pandas(reference_frame, preserve_index=False)
    result = run_monitor([table], reference_profile, MonitorOptions())
    for f in result["overall"]["features"].values():
        assert f["metrics"][f["deciding_metric"]]["value"] < 1e-3
    assert result["verdict"]["status"] == "no_drift"


def test_nan_in_metadata_is_written_as_null(tmp_path: Path, reference_frame: pd.DataFrame) -> None:
    profile = build_profile(
        reference_frame, ["x0"], [], metadata={"feature_importance": {"x0": float("nan")}}
    )
    profile.to_json(tmp_path / "p.json")
    assert ReferenceProfile.from_json(tmp_path / "p.json").metadata == {"feature_importance": {"x0": None}}
