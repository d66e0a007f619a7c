"""The streaming monitor: verdicts, windows, edge cases, data quality and performance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from amlops.drift.monitor import MonitorError, MonitorOptions, run_monitor
from amlops.drift.profile import ReferenceProfile, build_profile

from .conftest import CATEGORICAL, NUMERIC


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _weekly(**kw: object) -> MonitorOptions:
    return MonitorOptions(window="weekly", timestamp_column="date", **kw)  # type: ignore[arg-type]


def test_drift_is_named_with_its_first_window(
    drifted_frame: pd.DataFrame, reference_profile: ReferenceProfile
) -> None:
    batches = _table(drifted_frame).to_batches(max_chunksize=2_500)  # many chunks, windows across them
    result = run_monitor(batches, reference_profile, _weekly())
    v = result["verdict"]
    assert v["status"] == "drift"
    assert set(v["drifted_features"]) == {"x1", "price", "promo"}
    assert v["first_drifted_window"] == "2024-W03"  # day 14 of a series starting Monday 2024-01-01
    windows = {w["window"]: w for w in result["windows"]}
    assert list(windows) == ["2024-W01", "2024-W02", "2024-W03", "2024-W04"]
    assert windows["2024-W01"]["start"] == "2024-01-01" and windows["2024-W01"]["end"] == "2024-01-08"
    assert not windows["2024-W02"]["drift_detected"] and windows["2024-W04"]["drift_detected"]
    assert sum(w["row_count"] for w in result["windows"]) == len(drifted_frame)
    # Most drifted first in each window's feature table.
    assert list(windows["2024-W04"]["features"])[:3] == windows["2024-W04"]["drifted_features"]


def test_clean_data_reports_no_drift(clean_frame: pd.DataFrame, reference_profile: ReferenceProfile) -> None:
    result = run_monitor([_table(clean_frame)], reference_profile, _weekly())
    assert result["verdict"]["status"] == "no_drift"
    assert result["verdict"]["drifted_features"] == []
    assert result["verdict"]["first_drifted_window"] is None
    assert not result["verdict"]["prediction_drift"]


def test_daily_and_row_windows(drifted_frame: pd.DataFrame, reference_profile: ReferenceProfile) -> None:
    daily = run_monitor(
        [_table(drifted_frame)], reference_profile, MonitorOptions(window="daily", timestamp_column="date")
    )
    assert len(daily["windows"]) == 28
    assert daily["windows"][0]["window"] == "2024-01-01"
    counts = drifted_frame["date"].dt.date.value_counts().sort_index()
    assert [w["row_count"] for w in daily["windows"]] == counts.tolist()
    rows = run_monitor(
        _table(drifted_frame).to_batches(3_000), reference_profile, MonitorOptions(window="5000")
    )
    assert [w["row_count"] for w in rows["windows"]] == [5_000, 5_000, 4_000]
    assert rows["windows"][1]["window"] == "rows 5000-9999"


def test_small_windows_are_not_judged(
    drifted_frame: pd.DataFrame, reference_profile: ReferenceProfile
) -> None:
    result = run_monitor(
        [_table(drifted_frame.iloc[:40])], reference_profile, MonitorOptions(min_window_rows=50)
    )
    assert result["overall"]["status"] == "insufficient_rows"
    assert result["verdict"]["status"] == "insufficient_data"
    assert not result["verdict"]["drift_detected"]


def test_undated_rows_get_their_own_window(
    clean_frame: pd.DataFrame, reference_profile: ReferenceProfile
) -> None:
    frame = clean_frame.copy()
    frame.loc[frame.index[:700], "date"] = pd.NaT
    result = run_monitor([_table(frame)], reference_profile, _weekly())
    assert result["windows"][-1]["window"] == "undated"
    assert result["windows"][-1]["row_count"] == 700


def test_edge_cases_give_defined_values_and_findings() -> None:
    rng = np.random.default_rng(0)
    n = 2_000
    ref = pd.DataFrame(
        {
            "constant": np.full(n, 5.0),
            "normal": rng.normal(size=n),
            "all_null_now": rng.normal(size=n),
            "cat": rng.choice(["a", "b", "c"], n),
        }
    )
    profile = build_profile(ref, ["constant", "normal", "all_null_now"], ["cat"])
    cur = pd.DataFrame(
        {
            "constant": np.r_[np.full(n - 10, 5.0), np.full(10, 6.0)],
            "normal": np.r_[
                rng.normal(size=n - 30), np.full(10, np.nan), np.full(10, np.inf), np.full(10, -np.inf)
            ],
            "all_null_now": np.full(n, np.nan),
            "cat": np.r_[rng.choice(["a", "b", "c"], n - 200), np.full(200, "zzz-unseen")],
        }
    )
    result = run_monitor([_table(cur)], profile, MonitorOptions(min_window_rows=1))
    f = result["overall"]["features"]
    # Constant reference: distance relative to its value, out-of-range values found.
    assert f["constant"]["metrics"]["normalized_wasserstein_distance"]["value"] == pytest.approx(
        10 * 1.0 / n / 5.0
    )
    assert f["constant"]["data_quality"]["out_of_bounds_rate"]["value"] == pytest.approx(10 / n)
    # NaN counts as null, +-inf as a type error; neither enters the distribution.
    assert f["normal"]["summary"]["null_count"] == 10 and f["normal"]["summary"]["type_error_count"] == 20
    assert f["normal"]["data_quality"]["data_type_error_rate"]["exceeded"]
    assert f["normal"]["summary"]["count"] == n - 30
    # All-null current column: no distance (null), a null-rate finding, no drift claimed.
    assert f["all_null_now"]["metrics"]["normalized_wasserstein_distance"]["value"] is None
    assert f["all_null_now"]["data_quality"]["null_value_rate"]["value"] == 1.0
    assert not f["all_null_now"]["drifted"]
    # Unseen category: out-of-bounds finding, drift in the distribution.
    assert f["cat"]["summary"]["unseen_count"] == 200
    assert f["cat"]["data_quality"]["out_of_bounds_rate"]["exceeded"]
    findings = {(x["feature"], x["metric"]) for x in result["verdict"]["data_quality_findings"]}
    assert {
        ("all_null_now", "null_value_rate"),
        ("normal", "data_type_error_rate"),
        ("cat", "out_of_bounds_rate"),
    } <= findings


def test_single_row_and_all_null_reference() -> None:
    ref = pd.DataFrame({"v": [np.nan] * 5 + [1.0] * 0, "w": [1.0, 2.0, 3.0, 4.0, 5.0]})
    profile = build_profile(ref, ["v", "w"], [])
    result = run_monitor([pa.table({"v": [2.0], "w": [9.0]})], profile, MonitorOptions(min_window_rows=1))
    v, w = result["overall"]["features"]["v"], result["overall"]["features"]["w"]
    assert v["metrics"]["normalized_wasserstein_distance"]["value"] is None  # nothing to compare with
    assert w["metrics"]["normalized_wasserstein_distance"]["value"] == pytest.approx(
        6.0 / np.std([1, 2, 3, 4, 5])
    )
    assert w["data_quality"]["out_of_bounds_rate"]["value"] == 1.0


def test_text_in_a_numeric_column_is_a_type_error(
    reference_profile: ReferenceProfile, clean_frame: pd.DataFrame
) -> None:
    frame = clean_frame.copy()
    frame["x0"] = frame["x0"].astype(str)
    frame.loc[frame.index[:50], "x0"] = "n/a"
    result = run_monitor([_table(frame)], reference_profile, MonitorOptions())
    x0 = result["overall"]["features"]["x0"]
    assert x0["summary"]["type_error_count"] == 50
    assert x0["data_quality"]["data_type_error_rate"]["exceeded"]
    assert not x0["drifted"]


def test_integers_beyond_what_a_double_holds_exactly_are_compared(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An int64 feature past 2**53 (a hashed key, a nanosecond time) is compared at the nearest double, as
    numpy would: it stopped the whole monitor ("Integer value … not in range", naming no column)."""
    rng = np.random.default_rng(0)
    big = rng.integers(2**60, 2**61, 4_000, dtype=np.int64)
    ref = pd.DataFrame({"big": big[:2_000], "when": pd.to_datetime(big[:2_000] // 4, unit="ns")})
    profile = build_profile(ref, ["big", "when"], [])
    same = pa.table({"big": big[2_000:], "when": pa.array(big[2_000:] // 4, pa.timestamp("ns"))})
    shifted = pa.table({"big": big[2_000:] + 2**59, "when": pa.array(big[2_000:] // 4, pa.timestamp("ns"))})
    assert run_monitor([same], profile, MonitorOptions())["overall"]["drifted_features"] == []
    assert run_monitor([shifted], profile, MonitorOptions())["overall"]["drifted_features"] == ["big"]


def test_performance_with_late_labels(
    tmp_path,
    drifted_frame: pd.DataFrame,  # type: ignore[no-untyped-def]
    reference_profile: ReferenceProfile,
) -> None:
    labels = drifted_frame[["row_id", "units_sold"]].sample(frac=0.5, random_state=0)
    current = drifted_frame.drop(columns=["units_sold"])
    from amlops.drift.monitor import load_labels

    path = tmp_path / "labels.parquet"
    labels.to_parquet(path)
    series = load_labels(str(path), "row_id", "units_sold")
    opts = _weekly(id_column="row_id", prediction_column="prediction", label_column="units_sold")
    result = run_monitor([_table(current)], reference_profile, opts, labels=series)
    perf = result["verdict"]["performance"]
    joined = labels.merge(drifted_frame[["row_id", "prediction"]], on="row_id")
    err = (joined["units_sold"] - joined["prediction"]).abs()
    assert perf["count"] == len(labels)
    assert perf["mae"] == pytest.approx(err.mean())
    assert perf["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    assert perf["mape"] == pytest.approx((err / joined["units_sold"].abs()).mean())
    # Per window too, and the prediction column was compared with the reference's predictions.
    assert all(w["performance"]["count"] > 0 for w in result["windows"])
    assert result["overall"]["prediction_drift"]["reference_role"] == "prediction"


def test_bad_inputs_raise_one_clear_error(
    reference_profile: ReferenceProfile, clean_frame: pd.DataFrame, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MonitorError, match="window"):
        run_monitor([_table(clean_frame)], reference_profile, MonitorOptions(window="fortnightly"))
    with pytest.raises(MonitorError, match="timestamp column"):
        run_monitor([_table(clean_frame)], reference_profile, MonitorOptions(window="weekly"))
    with pytest.raises(MonitorError, match="none of the profile's features"):
        run_monitor([pa.table({"other": [1, 2]})], reference_profile, MonitorOptions())
    with pytest.raises(MonitorError, match="not found"):
        run_monitor(str(tmp_path / "nothing.parquet"), reference_profile, MonitorOptions())
    with pytest.raises(MonitorError, match="unknown metric"):
        run_monitor([_table(clean_frame)], reference_profile, MonitorOptions(thresholds={"nope": 1.0}))


def test_reads_folders_of_parquet_and_csv(
    tmp_path,
    clean_frame: pd.DataFrame,  # type: ignore[no-untyped-def]
    reference_profile: ReferenceProfile,
) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    clean_frame.iloc[:7_000].to_parquet(folder / "a.parquet")
    clean_frame.iloc[7_000:].to_parquet(folder / "b.parquet")
    from_parquet = run_monitor(str(folder), reference_profile, _weekly(chunk_rows=3_000))
    assert from_parquet["current"]["row_count"] == len(clean_frame)
    csv = tmp_path / "data.csv"
    clean_frame.to_csv(csv, index=False)
    from_csv = run_monitor(str(csv), reference_profile, _weekly())
    assert from_csv["verdict"]["status"] == "no_drift"
    for name in NUMERIC + CATEGORICAL:
        a = from_parquet["overall"]["features"][name]["metrics"]
        b = from_csv["overall"]["features"][name]["metrics"]
        key = "normalized_wasserstein_distance" if name in NUMERIC else "jensen_shannon_distance"
        assert a[key]["value"] == pytest.approx(b[key]["value"], abs=1e-9)


def test_threads_do_not_change_results(
    drifted_frame: pd.DataFrame, reference_profile: ReferenceProfile
) -> None:
    batches = _table(drifted_frame).to_batches(4_000)
    one = run_monitor(batches, reference_profile, _weekly(threads=1))
    two = run_monitor(batches, reference_profile, _weekly(threads=3))
    for a, b in zip(one["windows"], two["windows"], strict=True):
        assert a["features"] == b["features"]


def test_label_ids_of_another_type_still_join(
    drifted_frame: pd.DataFrame, reference_profile: ReferenceProfile
) -> None:
    labels = drifted_frame[["row_id", "units_sold"]].iloc[:1000]
    series = pd.Series(labels["units_sold"].to_numpy(), index=pd.Index(labels["row_id"].astype(str)))
    opts = MonitorOptions(id_column="row_id", prediction_column="prediction", label_column="units_sold")
    result = run_monitor(
        [_table(drifted_frame.drop(columns=["units_sold"]))], reference_profile, opts, labels=series
    )
    assert result["verdict"]["performance"]["count"] == 1000
