"""amlops.drift.partial: the partial format, the vectorised merge and totals past the float range."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from amlops.drift import partial
from amlops.drift.kinds import with_comparison_kinds
from amlops.drift.profile import ReferenceProfile, build_profile
from amlops.steps import monitor as single
from amlops.steps import monitor_map, monitor_reduce

# The squares overflow in numpy (a RuntimeWarning, in the monitor's threads too): expected here.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
HUGE = 1e155  # its square (1e310) is past the float maximum (1.8e308); the value itself is an ordinary double


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two files of daily rows; one column holds a few values whose squares overflow, on two of the days."""
    root = tmp_path_factory.mktemp("huge")
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 2_000), "y": rng.normal(5, 2, 2_000)})
    build_profile(ref, ["x", "y"], []).to_json(root / "profile.json")
    n = 3_000
    cur = pd.DataFrame(
        {
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) % 6, unit="D"),
            "x": rng.normal(0, 1, n),
            "y": rng.normal(5, 2, n),
        }
    )
    cur.loc[[6, 12, 1500], "x"] = [HUGE, -HUGE, 2 * HUGE]  # days 0, 0 and 0 (6, 12, 1500 are multiples of 6)
    folder = root / "current"
    folder.mkdir()
    cur.iloc[:1_500].to_parquet(folder / "a.parquet")
    cur.iloc[1_500:].to_parquet(folder / "b.parquet")
    return {"root": root, "current": folder, "profile": root / "profile.json"}


def _single(data: dict[str, Path], out: Path, window: str) -> dict[str, Any]:
    result = single.monitor(
        str(data["current"]), out, reference_profile=str(data["profile"]), window=window,
        timestamp_column="date", chunk_rows=400, min_window_rows=10,
    ).to_json_dict()  # fmt: skip
    result.pop("created_at")
    return result


def _mapreduce(data: dict[str, Path], partials: Path, window: str) -> dict[str, Any]:
    args = ["--data", str(data["current"]), "--partials", str(partials), "--reference-profile",
            str(data["profile"]), "--window", window, "--timestamp-column", "date", "--chunk-rows", "400",
            "--min-window-rows", "10"]  # fmt: skip
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    for f in sorted(data["current"].glob("*.parquet")):
        mapper.map_files([str(f)])
    states = partial.read_all(partials)
    random.Random(1).shuffle(states)
    profile = with_comparison_kinds(ReferenceProfile.from_json(data["profile"]), {})
    result = monitor_reduce.reduce_partials(profile, states, str(data["profile"])).to_json_dict()
    result.pop("created_at")
    return result


def _x_summaries(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = [result["overall"]["features"]["x"]["summary"]]
    return out + [w["features"]["x"]["summary"] for w in result["windows"] if w.get("features")]


@pytest.mark.parametrize("window", ["all", "daily"])
def test_squares_past_the_float_range_give_no_std_not_a_wrong_one(
    huge: dict[str, Path], tmp_path: Path, window: str
) -> None:
    """The std of a column whose squares overflow is not computable in doubles: null, never a finite number
    (it was 0.0); the mean stays exact; the other column is untouched; map-reduce gives the same text."""
    got = _single(huge, tmp_path / "single", window)
    merged = _mapreduce(huge, tmp_path / "partials", window)
    assert json.dumps(got, sort_keys=True) == json.dumps(merged, sort_keys=True)
    overall = got["overall"]["features"]["x"]["summary"]
    assert overall["std"] is None
    assert overall["mean"] == pytest.approx(2 * HUGE / 3_000, rel=1e-9)
    assert got["overall"]["features"]["y"]["summary"]["std"] == pytest.approx(2.0, rel=0.1)
    if window == "daily":
        stds = [s["std"] for s in _x_summaries(got)[1:]]
        # Day 0 holds the huge values; the five other days have ordinary stds.
        assert stds.count(None) == 1 and all(s is not None and 0.5 < s < 2 for s in stds if s is not None)


def test_without_the_overflow_marker_the_std_would_be_a_wrong_number(
    huge: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted fault: drop the overflow marker and the std becomes a finite number again."""
    monkeypatch.setattr(partial.ExactSums, "mark_overflow", lambda self, window, value: None)
    got = _single(huge, tmp_path / "single", "all")
    assert got["overall"]["features"]["x"]["summary"]["std"] is not None


def test_overflow_markers_merge_in_any_order() -> None:
    sums = [partial.ExactSums() for _ in range(3)]
    for s in sums:
        s.ensure(2)
    sums[0].add(0, math.inf, np.array([math.inf, 1.0]))
    sums[1].add_many(np.array([0, 1]), np.array([-math.inf, 2.5]))
    sums[2].add(1, 4.0)
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        merged = partial.ExactSums()
        merged.ensure(2)
        for i in order:
            merged.values = [a + b for a, b in zip(merged.values, sums[i].values, strict=True)]
            for g, v in sums[i].overflow.items():
                merged.mark_overflow(g, v)
        assert math.isnan(merged.total(0)) and merged.total(1) == 6.5
        assert math.isnan(merged.total(np.arange(2)))


def test_finite_values_whose_sum_overflows_stay_exact() -> None:
    sums = partial.ExactSums()
    sums.ensure(1)
    big = np.array([1.7e308, 1.7e308, -1.7e308])
    with np.errstate(over="ignore"):
        sums.add(0, float(big[:2].sum()), big[:2])
    sums.add(0, -1.7e308)
    assert sums.total(0) == 1.7e308 and not sums.overflow


@pytest.mark.parametrize(
    "value", [0, 1, -1, 3 << 1126, -(5 << 40), (1 << 2300) + 1, -((7 << 900) + (1 << 3))]
)
def test_exact_text_round_trips(value: int) -> None:
    assert partial._decode_exact(partial._encode_exact(value)) == value


def test_the_merge_reads_each_partial_once_not_per_feature(
    huge: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What keeps 1,000 partials in seconds: one int matrix per partial (the old format inflated one array per
    feature and statistic)."""
    states = []
    for i in range(3):
        states += _states(huge, tmp_path / f"p{i}", f"copy-{i}")
    calls: list[tuple[int, ...]] = []
    real = partial._unb64

    def counting(text: str, shape: tuple[int, ...]) -> np.ndarray:
        calls.append(shape)
        return real(text, shape)

    monkeypatch.setattr(partial, "_unb64", counting)
    profile = with_comparison_kinds(ReferenceProfile.from_json(huge["profile"]), {})
    monitor_reduce.merged_monitor(profile, states)
    assert len([shape for shape in calls if len(shape) == 2]) == len(states)


def _states(data: dict[str, Path], partials: Path, prefix: str) -> list[dict[str, Any]]:
    args = ["--data", str(data["current"]), "--partials", str(partials), "--reference-profile",
            str(data["profile"]), "--window", "daily", "--timestamp-column", "date", "--chunk-rows", "400"]  # fmt: skip
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    for f in sorted(data["current"].glob("*.parquet")):
        mapper.map_files([str(f)])
    states = partial.read_all(partials)
    for s in states:  # as if other files: the merge refuses a file counted twice
        s["files"] = [f"{prefix}/{f}" for f in s["files"]]
    return states


def test_a_partial_of_the_old_format_is_refused_clearly(huge: dict[str, Path], tmp_path: Path) -> None:
    states = _states(huge, tmp_path / "p", "x")
    states[0]["schema_version"] = 1
    profile = with_comparison_kinds(ReferenceProfile.from_json(huge["profile"]), {})
    with pytest.raises(partial.PartialError, match="version 1, expected 3"):
        monitor_reduce.reduce_partials(profile, states)


def test_partial_files_are_readable_by_others(huge: dict[str, Path], tmp_path: Path) -> None:
    """The reduce step may run as another user than the map's workers (a mounted output)."""
    _states(huge, tmp_path / "p", "x")
    modes = {f.stat().st_mode & 0o777 for f in (tmp_path / "p").glob("*.partial.json")}
    assert modes == {0o644}
