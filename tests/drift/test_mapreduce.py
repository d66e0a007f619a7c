"""The map-reduce monitor (steps/monitor_map + steps/monitor_reduce) gives exactly the single-process result."""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from amlops.drift import partial
from amlops.drift.profile import build_profile
from amlops.steps import monitor as single
from amlops.steps import monitor_map, monitor_reduce

from .conftest import CATEGORICAL, NUMERIC, make_frame

CHUNK = 700  # several chunks per file, most of them spanning several days


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Six files of daily data with drift from day 14, nulls, out-of-range values, an unseen category, undated rows
    and labels for most rows (a separate file with a repeated row)."""
    root = tmp_path_factory.mktemp("mapreduce")
    ref = make_frame(20_000, seed=1)
    # A 0/1 number: compared as categories (drift/kinds.py), so the map must use the same comparison kinds.
    ref["flag"] = (np.arange(len(ref)) % 10 == 0).astype(np.int64)
    profile = build_profile(
        ref, [*NUMERIC, "flag"], CATEGORICAL, target="units_sold", prediction="prediction"
    )
    profile.to_json(root / "reference_profile.json")
    cur = make_frame(9_000, seed=2, drift_from_day=14).sample(frac=1.0, random_state=5).reset_index(drop=True)
    cur.loc[cur.index % 3 == 0, "x0"] = np.nan  # null rate far above the reference's: a data-quality finding
    cur.loc[cur.index % 11 == 0, "qty"] = 10_000  # out of the reference range
    cur.loc[cur.index % 13 == 0, "store"] = "s-new"  # unseen category
    cur.loc[cur.index % 97 == 0, "date"] = pd.NaT  # undated rows: their own window
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    folder = root / "current"
    folder.mkdir()
    for i, lo in enumerate(range(0, len(cur), 1_500)):
        cur.iloc[lo : lo + 1_500].to_parquet(folder / f"part-{i:02d}.parquet", row_group_size=1_000)
    labels = cur.loc[cur.index % 5 != 0, ["row_id", "units_sold"]]
    labels = pd.concat([labels, labels.head(3)])
    labels.to_csv(root / "labels.csv", index=False)
    return {
        "root": root,
        "current": folder,
        "profile": root / "reference_profile.json",
        "labels": root / "labels.csv",
    }


def _args(data: dict[str, Path], partials: Path) -> list[str]:
    return [
        "--data", str(data["current"]), "--partials", str(partials),
        "--reference-profile", str(data["profile"]), "--labels", str(data["labels"]),
        "--window", "daily", "--timestamp-column", "date", "--id-column", "row_id",
        "--prediction-column", "prediction", "--label-column", "units_sold",
        "--min-window-rows", "50", "--chunk-rows", str(CHUNK),
    ]  # fmt: skip


def _single(data: dict[str, Path], out: Path) -> dict[str, Any]:
    result = single.monitor(
        str(data["current"]),
        out,
        reference_profile=str(data["profile"]),
        labels=str(data["labels"]),
        window="daily",
        timestamp_column="date",
        id_column="row_id",
        prediction_column="prediction",
        label_column="units_sold",
        min_window_rows=50,
        chunk_rows=CHUNK,
    )
    return _comparable(result.to_json_dict())


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    out = dict(result)
    out.pop("created_at")
    return out


def _map(data: dict[str, Path], partials: Path, groups: list[list[str]]) -> list[dict[str, Any]]:
    """Run the parallel entry as the driver would: init() once, run() per mini-batch."""
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(_args(data, partials)))
    for files in groups:
        mapper.map_files(files)
    return partial.read_all(partials)


@pytest.fixture(scope="module")
def expected(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import os

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    return _single(data, tmp_path_factory.mktemp("single"))


def _files(data: dict[str, Path]) -> list[str]:
    return sorted(str(p) for p in data["current"].glob("*.parquet"))


def test_the_data_exercises_windows_labels_and_quality(expected: dict[str, Any]) -> None:
    v = expected["verdict"]
    assert v["window_count"] > 20 and v["drift_detected"]
    assert any(w["window"] == "undated" for w in expected["windows"])
    metrics = {(f["feature"], f["metric"]) for f in v["data_quality_findings"]}
    assert ("x0", "null_value_rate") in metrics and ("qty", "out_of_bounds_rate") in metrics
    assert expected["labels"]["rows_joined"] > 0 and expected["labels"]["duplicate_rows_dropped"] == 3
    assert v["performance"]["count"] > 0 and v["performance"]["mape"] is not None
    flag = expected["overall"]["features"]["flag"]["metrics"]
    assert "jensen_shannon_distance" in flag and "normalized_wasserstein_distance" not in flag


@pytest.mark.parametrize("per_batch", [1, 2, 4])
def test_map_reduce_equals_single_process_in_any_order(
    data: dict[str, Path], expected: dict[str, Any], tmp_path: Path, per_batch: int
) -> None:
    files = _files(data)
    groups = [files[i : i + per_batch] for i in range(0, len(files), per_batch)]
    states = _map(data, tmp_path / "partials", groups)
    assert len(states) == len(groups)
    profile = partial_profile(data)
    for seed in range(3):
        random.Random(seed).shuffle(states)
        got = _comparable(
            monitor_reduce.reduce_partials(profile, states, str(data["profile"])).to_json_dict()
        )
        _same(got, expected)


def test_merge_is_associative_over_groupings(
    data: dict[str, Path], expected: dict[str, Any], tmp_path: Path
) -> None:
    states = _map(data, tmp_path / "p", [[f] for f in _files(data)])
    profile = partial_profile(data)
    # ((p0 + p1) + p2) + ((p5 + p3) + p4): intermediate merges written as partials again, as a tree reduce would.
    left = partial.dump(monitor_reduce.merged_monitor(profile, states[:3]), source=states[0]["source"])
    right = partial.dump(
        monitor_reduce.merged_monitor(profile, [states[5], states[3], states[4]]), states[0]["source"]
    )
    got = _comparable(
        monitor_reduce.reduce_partials(profile, [right, left], str(data["profile"])).to_json_dict()
    )
    _same(got, expected)


def test_a_missing_partial_changes_the_result(
    data: dict[str, Path], expected: dict[str, Any], tmp_path: Path
) -> None:
    """The equality above is not vacuous: one mini-batch fewer, other numbers."""
    states = _map(data, tmp_path / "p", [[f] for f in _files(data)])
    got = _comparable(monitor_reduce.reduce_partials(partial_profile(data), states[1:]).to_json_dict())
    assert got["current"]["row_count"] < expected["current"]["row_count"]
    assert got != expected


def test_float_totals_would_differ_without_exact_sums(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted fault: plain float accumulation depends on the order; the exact sums do not."""
    values = [1e16, 1.0, -1e16, 3.0, 1e-3, 2.5e15]
    naive = {sum(p) for p in (values, values[::-1], sorted(values))}
    assert len(naive) > 1
    exact = {
        partial.to_float(sum(partial.exact(v) for v in p)) for p in (values, values[::-1], sorted(values))
    }
    assert exact == {math.fsum(values)}


def test_exact_handles_the_whole_double_range() -> None:
    values = np.array([5e-324, -(2.0**-1022), 1e-300, 0.0, -0.0, 1.5, -7.25, 1e300, -1.7e308])
    assert partial.to_float(sum(partial.exact_array(values))) == math.fsum(values)
    assert [partial.to_float(partial.exact(float(v))) for v in values] == values.tolist()
    huge = np.array([1.7e308, 1.7e308])  # the float sum overflows, the exact one does not; its float is inf
    sums = partial.ExactSums()
    sums.ensure(1)
    with np.errstate(over="ignore"):
        sums.add(0, float(huge.sum()), huge)
    assert sums.raw(0) == 2 * partial.exact(1.7e308) and sums.total(0) == math.inf


def test_partials_of_another_profile_are_refused(data: dict[str, Path], tmp_path: Path) -> None:
    states = _map(data, tmp_path / "p", [[f] for f in _files(data)[:2]])
    other = build_profile(make_frame(5_000, seed=9), NUMERIC, CATEGORICAL)
    with pytest.raises(partial.PartialError, match="other settings or another reference profile"):
        monitor_reduce.reduce_partials(other, states)
    states[1]["fingerprint"] = "0" * 32  # one partial of other settings among good ones
    with pytest.raises(partial.PartialError):
        monitor_reduce.reduce_partials(partial_profile(data), states)


def test_row_windows_are_refused_by_the_map(data: dict[str, Path], tmp_path: Path) -> None:
    args = _args(data, tmp_path / "p")
    args[args.index("daily")] = "1000"
    with pytest.raises(monitor_map.MapInputError, match="row-count windows"):
        monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))


def test_retried_mini_batch_replaces_its_partial(data: dict[str, Path], tmp_path: Path) -> None:
    files = _files(data)[:2]
    _map(data, tmp_path / "p", [files])
    assert len(_map(data, tmp_path / "p", [list(reversed(files))])) == 1


def test_parallel_entry_and_reduce_cli(
    data: dict[str, Path], expected: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init()/run() with the driver's own arguments around ours, then the reduce step's command line."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    argv = ["driver/amlbi_main.py", "--output", str(tmp_path / "summary"), "--mini_batch_size", "2",
            *_args(data, tmp_path / "partials"), "--input_fds_0", "input_data"]  # fmt: skip
    monkeypatch.setattr("sys.argv", argv)
    monitor_map.init()
    files = _files(data)
    lines = [line for i in range(0, 6, 3) for line in monitor_map.run(files[i : i + 3])]
    assert len(lines) == 2 and all(".partial.json" in line for line in lines)
    out = tmp_path / "out"
    code = monitor_reduce.main(
        [
            "--partials",
            str(tmp_path / "partials"),
            "--reference-profile",
            str(data["profile"]),
            "--output",
            str(out),
        ]
    )
    assert code == 0
    got = _comparable(json.loads((out / "result.json").read_text(encoding="utf-8")))
    _same(got, expected)
    assert (out / "report.html").is_file()


def _same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Bit-for-bit: the JSON text, not a tolerance; the first differing path when not."""
    if json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True):
        return

    def walk(a: Any, b: Any, path: str) -> str | None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                found = walk(a.get(k), b.get(k), f"{path}.{k}")
                if found:
                    return found
            return None
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                found = walk(x, y, f"{path}[{i}]")
                if found:
                    return found
            return None
        return None if a == b else f"{path}: {a!r} != {b!r}"

    pytest.fail(f"map-reduce differs from the single process at {walk(got, expected, '')}")


def partial_profile(data: dict[str, Path]) -> Any:
    from amlops.drift.kinds import with_comparison_kinds
    from amlops.drift.profile import ReferenceProfile

    # As the reduce step reads it: the stored profile with the monitor's comparison kinds.
    return with_comparison_kinds(ReferenceProfile.from_json(data["profile"]), {})


def test_without_predictions_or_labels_too(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No prediction column and no labels: no performance section on either path (not an empty one on one)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    single_result = single.monitor(
        str(data["current"]), tmp_path / "single", reference_profile=str(data["profile"]), window="weekly",
        timestamp_column="date", chunk_rows=CHUNK, min_window_rows=50,
    ).to_json_dict()  # fmt: skip
    assert single_result["verdict"]["performance"] is None
    args = ["--data", str(data["current"]), "--partials", str(tmp_path / "p"), "--reference-profile",
            str(data["profile"]), "--window", "weekly", "--timestamp-column", "date", "--chunk-rows", str(CHUNK),
            "--min-window-rows", "50"]  # fmt: skip
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    for f in _files(data):
        mapper.map_files([f])
    states = partial.read_all(tmp_path / "p")
    random.Random(7).shuffle(states)
    got = monitor_reduce.reduce_partials(partial_profile(data), states, str(data["profile"])).to_json_dict()
    _same(_comparable(got), _comparable(single_result))


def test_a_file_counted_by_two_partials_is_refused(data: dict[str, Path], tmp_path: Path) -> None:
    """A leftover partial in the output folder (or a file mapped in two mini-batches) would double its rows."""
    files = _files(data)
    states = _map(data, tmp_path / "p", [files[:2]])
    states += _map(data, tmp_path / "q", [files[1:3]])  # files[1] again, under another grouping
    with pytest.raises(partial.PartialError, match="counted by two partials"):
        monitor_reduce.reduce_partials(partial_profile(data), states)


def test_partials_scored_with_other_thresholds_are_refused(data: dict[str, Path], tmp_path: Path) -> None:
    """The merge scores with one partial's options: partials given other thresholds must not meet."""
    files = _files(data)
    states = _map(data, tmp_path / "p", [files[:1]])
    args = [*_args(data, tmp_path / "q"), "--thresholds", "normalized_wasserstein_distance=5"]
    monitor_map.build_mapper(monitor_map._parser("t").parse_args(args)).map_files(files[1:2])
    states += partial.read_all(tmp_path / "q")
    with pytest.raises(partial.PartialError):
        monitor_reduce.reduce_partials(partial_profile(data), states)


# ------------------------------------------------------------------------------------------ label-free extras
SMALL_K = {
    "K_ESTIMATE": 64,
    "K_MULTIVARIATE": 48,
}  # below a daily window's ~320 rows: samples evict and merge


@pytest.fixture(scope="module")
def model(data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as `amlops train` leaves it: the profile, an error estimator and a multivariate PCA."""
    from amlops.drift.estimate import fit_error_estimator
    from amlops.drift.multivariate import fit_pca

    folder = tmp_path_factory.mktemp("model")
    (folder / "reference_profile.json").write_bytes(data["profile"].read_bytes())
    ref = make_frame(6_000, seed=11)
    fit_error_estimator(
        ref, ref["prediction"].to_numpy(), ref["units_sold"].to_numpy(), NUMERIC, CATEGORICAL, seed=0
    ).save(folder)
    fit_pca(ref, NUMERIC).save(folder)
    return folder


def _model_args(data: dict[str, Path], model: Path, partials: Path) -> list[str]:
    args = _args(data, partials)
    at = args.index("--reference-profile")
    args[at : at + 2] = ["--model-dir", str(model)]
    return args


@pytest.fixture(scope="module")
def expected_extras(
    data: dict[str, Path], model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    import os

    from amlops.drift import estimate

    os.environ.pop("MLFLOW_TRACKING_URI", None)
    with pytest.MonkeyPatch.context() as mp:
        for name, k in SMALL_K.items():
            mp.setattr(estimate, name, k)
        result = single.monitor(
            str(data["current"]), tmp_path_factory.mktemp("single-extras"), model_dir=str(model),
            labels=str(data["labels"]), window="daily", timestamp_column="date", id_column="row_id",
            prediction_column="prediction", label_column="units_sold", min_window_rows=50, chunk_rows=CHUNK,
        )  # fmt: skip
    return _comparable(result.to_json_dict())


def _reduce_with_model(model: Path, states: list[dict[str, Any]]) -> dict[str, Any]:
    extras = monitor_map.model_extras(*monitor_map.load_extras(str(model)))
    profile = partial_profile({"profile": model / "reference_profile.json"})
    merged = monitor_reduce.reduce_partials(profile, states, str(model), extras=extras)
    return _comparable(merged.to_json_dict())


@pytest.fixture
def small_k(monkeypatch: pytest.MonkeyPatch) -> None:
    from amlops.drift import estimate

    for name, k in SMALL_K.items():
        monkeypatch.setattr(estimate, name, k)


def test_the_extras_are_there_and_sampled(expected_extras: dict[str, Any]) -> None:
    """The comparison below means something: every window has both label-free sections, and most windows hold
    more rows than the samples keep."""
    windows = [w for w in expected_extras["windows"] if w["window"] != "undated"]
    assert all(w["estimated_performance"]["mae"] is not None and w["multivariate"]["value"] for w in windows)
    assert sum(w["row_count"] > 4 * SMALL_K["K_ESTIMATE"] for w in windows) > 20
    assert (
        expected_extras["overall"]["estimated_performance"]["count"]
        == expected_extras["current"]["row_count"]
    )


@pytest.mark.parametrize("per_batch", [1, 2, 4])
def test_with_an_estimator_and_a_pca_map_reduce_equals_single_process(
    data: dict[str, Path],
    model: Path,
    expected_extras: dict[str, Any],
    tmp_path: Path,
    per_batch: int,
    small_k: None,
) -> None:
    files = _files(data)
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(_model_args(data, model, tmp_path)))
    for i in range(0, len(files), per_batch):
        mapper.map_files(files[i : i + per_batch])
    states = partial.read_all(tmp_path)
    for seed in range(3):
        random.Random(seed).shuffle(states)
        _same(_reduce_with_model(model, states), expected_extras)


def test_with_extras_the_merge_is_associative(
    data: dict[str, Path], model: Path, expected_extras: dict[str, Any], tmp_path: Path, small_k: None
) -> None:
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(_model_args(data, model, tmp_path)))
    for f in _files(data):
        mapper.map_files([f])
    states = partial.read_all(tmp_path)
    profile = partial_profile({"profile": model / "reference_profile.json"})

    def merged(group: list[dict[str, Any]]) -> dict[str, Any]:
        extras = monitor_map.model_extras(*monitor_map.load_extras(str(model)))
        return partial.dump(monitor_reduce.merged_monitor(profile, group, extras), source=states[0]["source"])

    left, right = merged(states[:3]), merged([states[5], states[3], states[4]])
    _same(_reduce_with_model(model, [right, left]), expected_extras)


def test_a_merge_keeping_the_first_k_entries_is_caught(
    data: dict[str, Path], model: Path, expected_extras: dict[str, Any], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, small_k: None,
) -> None:  # fmt: skip
    """Planted fault: the union keeps the first k entries it meets, not the k smallest hashes."""
    from amlops.drift import estimate

    def first_k(self: estimate.BottomK, g: int, h: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        h, c, v = (
            np.concatenate([a, b]) for a, b in ((self.hashes[g], h), (self.counts[g], c), (self.values[g], v))
        )
        self.hashes[g], self.counts[g], self.values[g] = h[: self.k], c[: self.k], v[: self.k]

    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(_model_args(data, model, tmp_path)))
    for f in _files(data):
        mapper.map_files([f])
    monkeypatch.setattr(estimate.BottomK, "union", first_k)
    with pytest.raises(pytest.fail.Exception, match="differs from the single process"):
        _same(_reduce_with_model(model, partial.read_all(tmp_path)), expected_extras)


def test_partials_with_extras_need_the_model_to_merge(
    data: dict[str, Path], model: Path, tmp_path: Path, small_k: None
) -> None:
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(_model_args(data, model, tmp_path)))
    mapper.map_files(_files(data)[:1])
    with pytest.raises(partial.PartialError, match="give the reduce step the model folder"):
        monitor_reduce.reduce_partials(partial_profile(data), partial.read_all(tmp_path))


# ------------------------------------------------------------------------------------------ a file without predictions
@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two files of one run, one without the prediction column; in both name orders."""
    root = tmp_path_factory.mktemp("mixed")
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)  # the model's profile (`data`) has it
    with_pred, without = cur.iloc[:2_000], cur.iloc[2_000:].drop(columns=["prediction"])
    folders = {}
    for order, (first, second) in {
        "prediction-first": (with_pred, without),
        "prediction-last": (without, with_pred),
    }.items():
        folders[order] = root / order
        folders[order].mkdir()
        first.to_parquet(folders[order] / "a.parquet", row_group_size=1_000)
        second.to_parquet(folders[order] / "b.parquet", row_group_size=1_000)
    return folders


@pytest.mark.parametrize("order", ["prediction-first", "prediction-last"])
@pytest.mark.parametrize("per_batch", [1, 2])
def test_a_file_without_the_prediction_column_gives_one_result_on_both_paths(
    mixed: dict[str, Path],
    model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    order: str,
    per_batch: int,
) -> None:
    """The estimate uses the rows with a prediction and says so (count 2,000 of 3,000 rows), whichever file comes
    first and however the map groups them; the rows without one are missing predictions on both paths."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    folder = mixed[order]
    expected = _single_weekly(model, folder, tmp_path / "single")
    estimate = expected["overall"]["estimated_performance"]
    assert expected["current"]["row_count"] == 3_000 and estimate["count"] == 2_000
    assert sum(w["estimated_performance"]["count"] for w in expected["windows"]) == 2_000
    assert expected["overall"]["prediction_drift"]["summary"]["null_count"] == 1_000
    _same(_map_reduce_weekly(model, folder, tmp_path / "p", per_batch), expected)


# ------------------------------------------------------------------------------------------ a file without a feature
# The row hash sums an absent column's constant modulo 2**64: without a warning in the step's log.
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("lacking", ["a.parquet", "b.parquet"])
@pytest.mark.parametrize("per_batch", [1, 2])
def test_a_file_without_a_feature_gives_one_result_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lacking: str, per_batch: int
) -> None:
    """A numeric and a categorical feature absent from one file: its rows count as nulls, and the column is not
    reported missing (the other file has it), on both paths whichever file lacks them and however grouped."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    parts = {"a.parquet": cur.iloc[:1_500], "b.parquet": cur.iloc[1_500:]}
    for name, frame in parts.items():
        (frame.drop(columns=["x0", "store"]) if name == lacking else frame).to_parquet(
            tmp_path / name, row_group_size=1_000
        )
    expected = _single_weekly(model, tmp_path, tmp_path / "single")
    assert expected["current"]["missing_columns"] == []
    assert expected["overall"]["features"]["x0"]["summary"]["null_count"] == 1_500
    _same(_map_reduce_weekly(model, tmp_path, tmp_path / "p", per_batch), expected)


def test_files_that_disagree_on_a_type_still_read_every_files_columns(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first file lacks the prediction column and the second has qty as float64 (pandas writes an integer
    column with nulls so): the predictions are still read, as the map reads them, not dropped for every file."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    cur.iloc[:1_500].drop(columns=["prediction"]).to_parquet(tmp_path / "a.parquet", row_group_size=1_000)
    second = cur.iloc[1_500:].copy()
    second["qty"] = second["qty"].astype(np.float64)
    second.to_parquet(tmp_path / "b.parquet", row_group_size=1_000)
    expected = _single_weekly(model, tmp_path, tmp_path / "single")
    assert expected["overall"]["estimated_performance"]["count"] == 1_500
    args = ["--data", str(tmp_path), "--partials", str(tmp_path / "p"), "--model-dir", str(model),
            "--window", "weekly", "--timestamp-column", "date", "--prediction-column", "prediction",
            "--min-window-rows", "50"]  # fmt: skip
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    mapper.map_files(sorted(str(p) for p in tmp_path.glob("*.parquet")))
    _same(_reduce_with_model(model, partial.read_all(tmp_path / "p")), expected)


@pytest.mark.parametrize("per_batch", [1, 2])
def test_integer_and_fractional_predictions_across_files_give_one_result_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_batch: int
) -> None:
    """Integer predictions in the first file, fractional ones in the next: the folder reads the column as
    float64, the type both widen to (the first file's int64 would truncate 5.38), as the map reads each file in
    its own type; every row's prediction counts on both paths."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    first = cur.iloc[:1_500].copy()
    first["prediction"] = first["prediction"].round().astype(np.int64)
    first.to_parquet(tmp_path / "a.parquet", row_group_size=1_000)
    cur.iloc[1_500:].to_parquet(tmp_path / "b.parquet", row_group_size=1_000)
    expected = _single_weekly(model, tmp_path, tmp_path / "single")
    assert expected["overall"]["estimated_performance"]["count"] == 3_000
    _same(_map_reduce_weekly(model, tmp_path, tmp_path / "p", per_batch), expected)


def test_a_column_whose_type_differs_between_files_is_named_when_it_cannot_be_read(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Predictions as numbers in the first file and as text in the next ("n/a" among them): no type holds both,
    the folder is read with the first file's float64, and pyarrow's cast error ("Failed to parse string") names
    neither the file nor the column. The error says which column, in which file, and what to do; a column that
    merely widens (int64 qty in one file, float64 in the other) is not the one named."""
    from amlops.drift.monitor import MonitorError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    cur.iloc[:1_500].to_parquet(tmp_path / "a.parquet", row_group_size=1_000)
    second = cur.iloc[1_500:].copy()
    second["qty"] = second["qty"].astype(np.float64)
    second["prediction"] = second["prediction"].map(lambda v: f"{v:.3f}")
    second.iloc[7, second.columns.get_loc("prediction")] = "n/a"
    second.to_parquet(tmp_path / "b.parquet", row_group_size=1_000)
    with pytest.raises(MonitorError) as caught:
        single.monitor(
            str(tmp_path), tmp_path / "single", model_dir=str(model), window="weekly",
            timestamp_column="date", prediction_column="prediction", min_window_rows=50,
        )  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message
    # pandas writes text as large_string or string, depending on its version
    assert re.search(
        r"column 'prediction' is (large_)?string in b\.parquet but double in the first file", message
    )


# ------------------------------------------------------------------------------------------ a file that cannot count
LACKING = {
    "date": "timestamp column 'date' not in this file",
    "row_id": "labels are joined on the id column 'row_id', not in this file",
    "features": "this file has none of the profile's features",
}


@pytest.mark.parametrize("lacking", sorted(LACKING))
def test_a_file_lacking_a_column_every_row_needs_is_named_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lacking: str
) -> None:
    """The second file lacks the timestamp, the id the labels join on, or every feature. Read as nulls among the
    other files' columns, its rows would be undated, unlabelled or empty; the map refuses such a file. Both paths
    stop with one line naming the file and the column, whichever file lacks it."""
    from amlops.drift.monitor import MonitorError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    labels = tmp_path / "labels.parquet"
    cur[["row_id", "units_sold"]].to_parquet(labels)
    folder = tmp_path / "data"
    folder.mkdir()
    cur.iloc[:1_500].to_parquet(folder / "a.parquet")
    drop = [*NUMERIC, *CATEGORICAL, "flag"] if lacking == "features" else [lacking]
    cur.iloc[1_500:].drop(columns=drop).to_parquet(folder / "b.parquet")
    options = {
        "window": "weekly",
        "timestamp_column": "date",
        "id_column": "row_id",
        "label_column": "units_sold",
    }
    with pytest.raises(MonitorError) as alone:
        single.monitor(str(folder), tmp_path / "single", model_dir=str(model), labels=str(labels), **options)
    args = ["--data", str(folder), "--partials", str(tmp_path / "p"), "--model-dir", str(model),
            "--labels", str(labels)]  # fmt: skip
    args += [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    with pytest.raises(MonitorError) as mapped:
        mapper.map_files([str(folder / "b.parquet")])
    for caught in (alone, mapped):
        assert str(caught.value).startswith(f"{folder / 'b.parquet'}: {LACKING[lacking]}"), str(caught.value)


def _single_weekly(model: Path, folder: Path, out: Path, window: str = "weekly") -> dict[str, Any]:
    """The single-process monitor over the folder, weekly by default, as the map-reduce tests compare it."""
    alone = single.monitor(
        str(folder), out, model_dir=str(model), window=window, timestamp_column="date",
        prediction_column="prediction", min_window_rows=50,
    )  # fmt: skip
    return _comparable(alone.to_json_dict())


def _map_reduce_weekly(model: Path, folder: Path, partials: Path, per_batch: int) -> dict[str, Any]:
    """The map step over the folder's Parquet files, `per_batch` files to a mini-batch, then the reduce."""
    args = ["--data", str(folder), "--partials", str(partials), "--model-dir", str(model),
            "--window", "weekly", "--timestamp-column", "date", "--prediction-column", "prediction",
            "--min-window-rows", "50"]  # fmt: skip
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    files = sorted(str(p) for p in folder.iterdir() if p.suffix in (".parquet", ".csv"))
    for i in range(0, len(files), per_batch):
        mapper.map_files(files[i : i + per_batch])
    return _reduce_with_model(model, partial.read_all(partials))


# ------------------------------------------------------------------------------------------ types with no common type
@pytest.mark.parametrize("dates_first", [True, False])
def test_dates_in_one_csv_and_datetimes_in_the_next_give_one_result_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dates_first: bool
) -> None:
    """pandas writes a datetime column whose times are all midnight to CSV as bare dates (Arrow infers date32)
    and the next day's file with its times (timestamp). pyarrow's promotion has no common type for the two: read
    in the first file's date32, the CSV reader could not parse '2024-01-07 10:00:00' and only the single process
    stopped. Read as the timestamp, both paths count every row in the same week, whichever file sorts first."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    dates, times = cur.iloc[:1_500], cur.iloc[1_500:].copy()
    times["date"] += pd.Timedelta(hours=10)
    folder = tmp_path / "data"
    folder.mkdir()
    dates.to_csv(folder / ("a.csv" if dates_first else "b.csv"), index=False)
    times.to_csv(folder / ("b.csv" if dates_first else "a.csv"), index=False)
    assert "10:00:00" not in (folder / ("a.csv" if dates_first else "b.csv")).read_text()
    expected = _single_weekly(model, folder, tmp_path / "single")
    assert expected["current"]["row_count"] == 3_000
    assert all(w["window"] != "undated" for w in expected["windows"])
    _same(_map_reduce_weekly(model, folder, tmp_path / "p", 1), expected)


@pytest.mark.parametrize("booleans_first", [True, False])
def test_booleans_in_one_file_and_integers_in_the_next_give_one_result_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, booleans_first: bool
) -> None:
    """A number column written as booleans in one file: no common type for pyarrow, and read in a first file's
    bool type the other file's quantities cast silently (4 reads as true, 1). The booleans read as 0 and 1 in
    the numbers' type instead, as the map reads each file, whichever file sorts first."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    booleans, numbers = cur.iloc[:1_500].copy(), cur.iloc[1_500:]
    booleans["qty"] = booleans["qty"] > 3
    folder = tmp_path / "data"
    folder.mkdir()
    booleans.to_parquet(folder / ("a.parquet" if booleans_first else "b.parquet"))
    numbers.to_parquet(folder / ("b.parquet" if booleans_first else "a.parquet"))
    expected = _single_weekly(model, folder, tmp_path / "single")
    qty = expected["overall"]["features"]["qty"]["summary"]
    assert qty["count"] == 3_000 and qty["type_error_count"] == 0
    _same(_map_reduce_weekly(model, folder, tmp_path / "p", 1), expected)


def test_a_column_that_widens_is_named_when_a_value_does_not_fit(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snowflake-like ids (above 2**53) as int64 in one file and float64 in the next (pandas after a join that
    left an id empty): the folder reads them as float64, the type both widen to, and the int64 file's ids do
    not fit. pyarrow's error ("Integer value ... not in range") names neither the column nor the file, and the
    column is not one whose types disagree outright: it is named all the same."""
    from amlops.drift.monitor import MonitorError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    cur["row_id"] += 1_500_000_000_000_000_000
    labels = tmp_path / "labels.parquet"
    cur[["row_id", "units_sold"]].to_parquet(labels)
    folder = tmp_path / "data"
    folder.mkdir()
    cur.iloc[:1_500].to_parquet(folder / "a.parquet")
    second = cur.iloc[1_500:].copy()
    second["row_id"] = second["row_id"].astype(np.float64)
    second["qty"] = second["qty"].astype(np.float64)  # widens and fits: not the one named
    second.iloc[3, second.columns.get_loc("row_id")] = np.nan
    second.to_parquet(folder / "b.parquet")
    with pytest.raises(MonitorError) as caught:
        single.monitor(
            str(folder), tmp_path / "single", model_dir=str(model), labels=str(labels), window="weekly",
            timestamp_column="date", id_column="row_id", label_column="units_sold", min_window_rows=50,
        )  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message
    assert "column 'row_id' is int64 in a.parquet, read as double" in message, message


def test_a_labels_folder_whose_files_disagree_on_a_type_is_named(tmp_path: Path) -> None:
    """Labels in two files, the ids as numbers in one and as text in the other ("X-1" among them): read in the
    first file's int64, the cast fails with pyarrow's "Failed to parse string", naming neither; the labels are
    refused in one line naming the folder, the column and the file (a MonitorError, as the current data's)."""
    from amlops.drift.monitor import MonitorError, load_labels

    folder = tmp_path / "labels"
    folder.mkdir()
    pd.DataFrame({"row_id": [1, 2, 3], "units_sold": [1.0, 2.0, 3.0]}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"row_id": ["4", "X-1"], "units_sold": [4.0, 5.0]}).to_parquet(folder / "b.parquet")
    with pytest.raises(MonitorError) as caught:
        load_labels(str(folder), "row_id", "units_sold")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{folder}: cannot read the labels: ")
    assert re.search(r"column 'row_id' is (large_)?string in b\.parquet but int64 in the first file", message)


@pytest.mark.parametrize("lacking", ["row_id", "units_sold"])
def test_a_labels_file_lacking_the_id_or_the_label_is_named(tmp_path: Path, lacking: str) -> None:
    """A folder of labels whose second file lacks the id (or the label): read as nulls among the first file's
    columns, its labels joined nothing, and its null ids were reported as "repeated row(s) (same id, same
    label) were dropped". Refused in one line naming the file, for both paths (the map loads labels so too)."""
    from amlops.drift.monitor import MonitorError, load_labels

    folder = tmp_path / "labels"
    folder.mkdir()
    pd.DataFrame({"row_id": [1, 2, 3], "units_sold": [1.0, 2.0, 3.0]}).to_parquet(folder / "a.parquet")
    pd.DataFrame({"row_id": [4, 5], "units_sold": [4.0, 5.0]}).drop(columns=[lacking]).to_parquet(
        folder / "b.parquet"
    )
    pd.DataFrame().to_parquet(folder / "c.parquet")  # no rows, no columns: labels nothing, not refused
    with pytest.raises(MonitorError) as caught:
        load_labels(str(folder), "row_id", "units_sold")
    assert str(caught.value) == f"{folder / 'b.parquet'}: labels need column(s) {lacking}, not in this file"
    (folder / "b.parquet").unlink()
    assert load_labels(str(folder), "row_id", "units_sold").to_dict() == {1: 1.0, 2: 2.0, 3: 3.0}


@pytest.mark.parametrize("undated", ["a.csv", "b.csv"])
def test_a_csv_file_without_any_date_gives_one_result_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, undated: str
) -> None:
    """A CSV file whose timestamp cells are all empty: Arrow infers the column as null. Among the folder's other
    files the single process reads it in their timestamp type, its rows undated; the map, reading the file
    alone, stopped with "timestamp column 'date' has type null". Both count its rows in the undated window."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    folder = tmp_path / "data"
    folder.mkdir()
    parts = {"a.csv": cur.iloc[:1_500].copy(), "b.csv": cur.iloc[1_500:].copy()}
    parts[undated]["date"] = pd.NaT
    for name, frame in parts.items():
        frame.to_csv(folder / name, index=False)
    expected = _single_weekly(model, folder, tmp_path / "single")
    assert [w["row_count"] for w in expected["windows"] if w["window"] == "undated"] == [1_500]
    _same(_map_reduce_weekly(model, folder, tmp_path / "p", 1), expected)


@pytest.mark.parametrize("window", ["daily", "weekly"])
def test_a_sentinel_date_is_a_window_of_its_own_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: str
) -> None:
    """9999-12-31 (a "no end" sentinel, which timestamp[us] holds) in the timestamp column: its window ends past
    datetime.date's range, and writing the result died with an OverflowError traceback on both paths. The row is
    a window of its own (too small to judge), its end unknown (null), the same on both paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in {"a.parquet": cur.iloc[:1_500], "b.parquet": cur.iloc[1_500:]}.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        dates = table.column("date").cast(pa.timestamp("us")).to_pylist()
        if name == "b.parquet":
            dates[0] = pd.Timestamp("9999-12-31").to_pydatetime()
        at = table.schema.get_field_index("date")
        pq.write_table(table.set_column(at, "date", pa.array(dates, pa.timestamp("us"))), folder / name)
    expected = _single_weekly(model, folder, tmp_path / "single", window=window)
    last = expected["windows"][-1]
    assert (last["start"], last["end"], last["row_count"]) == ("9999-12-27" if window == "weekly" else
                                                              "9999-12-31", None, 1)  # fmt: skip
    args = ["--data", str(folder), "--partials", str(tmp_path / "p"), "--model-dir", str(model),
            "--window", window, "--timestamp-column", "date", "--prediction-column", "prediction",
            "--min-window-rows", "50"]  # fmt: skip
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    for f in sorted(folder.glob("*.parquet")):
        mapper.map_files([str(f)])
    _same(_reduce_with_model(model, partial.read_all(tmp_path / "p")), expected)


def test_a_file_the_map_cannot_read_is_named(model: Path, tmp_path: Path) -> None:
    """A mini-batch of two files, the second with a date written as text that is no date: the map's error said
    "timestamp column 'date': cannot read as dates" without saying which of the mini-batch's files; it starts
    with the file now, as the single process names it (type_disagreement)."""
    from amlops.drift.monitor import MonitorError

    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    folder = tmp_path / "data"
    folder.mkdir()
    cur.iloc[:1_500].to_parquet(folder / "a.parquet")
    second = cur.iloc[1_500:].copy()
    second["date"] = second["date"].dt.strftime("%Y-%m-%d")
    second.iloc[7, second.columns.get_loc("date")] = "not a date"
    second.to_parquet(folder / "b.parquet")
    args = ["--data", str(folder), "--partials", str(tmp_path / "p"), "--model-dir", str(model),
            "--window", "weekly", "--timestamp-column", "date", "--prediction-column", "prediction"]  # fmt: skip
    mapper = monitor_map.build_mapper(monitor_map._parser("t").parse_args(args))
    with pytest.raises(MonitorError) as caught:
        mapper.map_files([str(folder / "a.parquet"), str(folder / "b.parquet")])
    message = str(caught.value)
    assert "\n" not in message
    expected = f"{folder / 'b.parquet'}: timestamp column 'date': cannot read as dates"
    assert message.startswith(expected), message


@pytest.mark.parametrize("empty", ["a.csv", "b.csv"])
def test_empty_text_cells_of_csv_are_nulls_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    """pandas writes a null as an empty cell. Arrow reads an empty cell of a text column as "" by default: the
    CSV counted unseen category "" (drift, out-of-bounds) where the same frame in Parquet counts nulls, and a file
    whose promo cells are all empty (typed null alone) read nulls in the map but "" in the single process.
    Nulls on both paths, as in Parquet."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    cur.loc[cur.index % 10 == 0, "store"] = None
    parts = {"a.csv": cur.iloc[:1_500].copy(), "b.csv": cur.iloc[1_500:].copy()}
    parts[empty]["promo"] = None
    folder = tmp_path / "data"
    folder.mkdir()
    for name, frame in parts.items():
        frame.to_csv(folder / name, index=False)
    expected = _single_weekly(model, folder, tmp_path / "single")
    summary = {name: f["summary"] for name, f in expected["overall"]["features"].items()}
    assert (summary["store"]["null_count"], summary["store"]["unseen_count"]) == (300, 0)
    assert (summary["promo"]["null_count"], summary["promo"]["unseen_count"]) == (1_500, 0)
    _same(_map_reduce_weekly(model, folder, tmp_path / "p", 1), expected)


@pytest.mark.parametrize("ids", ["text", "numbers"])
def test_labels_without_an_id_are_refused(tmp_path: Path, ids: str) -> None:
    """Label rows whose id cell is empty: null ids, which the duplicate check cannot see (groupby leaves nulls
    out). They were dropped as "repeated row(s) (same id, same label)" although their labels differ (with text
    ids an empty cell was the id "" and refused as a conflicting duplicate, before empty text cells were nulls)."""
    from amlops.drift.monitor import MonitorError, load_labels

    frame = pd.DataFrame({"row_id": [1, 2, 3, None, None], "units_sold": [1.0, 2.0, 3.0, 4.0, 5.0]})
    if ids == "text":
        frame["row_id"] = frame["row_id"].map(lambda v: None if pd.isna(v) else f"id-{v:.0f}")
    frame.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(MonitorError) as caught:
        load_labels(str(tmp_path / "labels.csv"), "row_id", "units_sold")
    assert str(caught.value) == (
        f"{tmp_path / 'labels.csv'}: 2 row(s) have no 'row_id'; a label without an id cannot be joined: "
        "drop those rows or fill their id"
    )


@pytest.mark.parametrize("per_batch", [1, 3])
def test_a_file_without_rows_or_columns_is_skipped_on_both_paths(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_batch: int
) -> None:
    """An empty frame written for a day without data (`pd.DataFrame().to_parquet`: no rows, no columns) lacks the
    timestamp and every feature, but has no row to leave undated or empty: refusing the folder for it (as a file
    with rows is refused) was a false alarm. Both paths skip it and give the other files' result."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cur = make_frame(3_000, seed=2)
    cur["flag"] = (cur.index % 4 == 0).astype(np.int64)
    folder = tmp_path / "data"
    folder.mkdir()
    cur.iloc[:1_500].to_parquet(folder / "a.parquet")
    pd.DataFrame().to_parquet(folder / "b.parquet")
    cur.iloc[1_500:].to_parquet(folder / "c.parquet")
    expected = _single_weekly(model, folder, tmp_path / "single")
    assert expected["current"]["row_count"] == 3_000
    _same(_map_reduce_weekly(model, folder, tmp_path / "p", per_batch), expected)
