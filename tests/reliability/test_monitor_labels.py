"""Issue 15 #7 and the monitor's weak points: the late-label join says what it did, refuses what it cannot
decide, and data-quality findings are reported even when windows are too small to judge drift.

The reproducer of #7: late labels with repeated ids and different values (two weeks' exports whose ids restart)
were joined silently — one of the values kept — so the MAE was measured against the wrong truth and the loop
retrained. Now conflicting repeats are refused (naming the ids), identical repeats are dropped and reported."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from amlops.cli import app
from amlops.drift.monitor import MonitorError, MonitorOptions, load_labels, run_monitor
from amlops.drift.profile import ReferenceProfile, build_profile

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from drift.conftest import CATEGORICAL, NUMERIC, make_frame  # noqa: E402


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return build_profile(
        make_frame(5_000, seed=1), NUMERIC, CATEGORICAL, target="units_sold", prediction="prediction"
    )


@pytest.fixture(scope="module")
def current() -> pd.DataFrame:
    return make_frame(2_000, seed=2)


def _opts(**kw: object) -> MonitorOptions:
    return MonitorOptions(  # type: ignore[arg-type]
        window="all", id_column="row_id", prediction_column="prediction", label_column="units_sold", **kw
    )


def _labels(tmp_path: Path, frame: pd.DataFrame, name: str = "labels.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _run(current: pd.DataFrame, profile: ReferenceProfile, labels: pd.Series):  # type: ignore[no-untyped-def]
    table = pa.Table.from_pandas(current.drop(columns=["units_sold"]), preserve_index=False)
    return run_monitor([table], profile, _opts(), labels=labels)


def test_conflicting_duplicate_label_ids_are_refused(tmp_path: Path, current: pd.DataFrame) -> None:
    week1 = current[["row_id", "units_sold"]].iloc[:500]
    week2 = week1.assign(units_sold=week1["units_sold"] + 1000.0)  # ids restart: same ids, other truths
    path = _labels(tmp_path, pd.concat([week1, week2]))
    before = path.read_bytes()
    with pytest.raises(
        MonitorError, match=r"500 'row_id' value\(s\) appear more than once with different labels"
    ):
        load_labels(str(path), "row_id", "units_sold")
    assert path.read_bytes() == before


def test_identical_duplicates_are_dropped_and_reported(
    tmp_path: Path, current: pd.DataFrame, profile: ReferenceProfile
) -> None:
    labels = current[["row_id", "units_sold"]].iloc[:400]
    series = load_labels(
        str(_labels(tmp_path, pd.concat([labels, labels.iloc[:50]]))), "row_id", "units_sold"
    )
    result = _run(current, profile, series)
    assert result.verdict.performance.count == 400
    expected = (labels["units_sold"] - current["prediction"].iloc[:400]).abs().mean()
    assert result.verdict.performance.mae == pytest.approx(expected)  # the MAE of the true join
    report = result.model_extra["labels"]
    assert report["duplicate_rows_dropped"] == 50 and report["matched_ids"] == 400
    assert "labels: 50 repeated row(s) (same id, same label) were dropped" in result.model_extra["warnings"]
    # ... and the CLI summary says it, not only result.json.
    from amlops.commands.monitor import print_summary
    from amlops.console import out

    with out.capture() as captured:
        print_summary(result, tmp_path / "report.html")
    assert "warning: labels: 50 repeated row(s) (same id, same label) were dropped" in captured.get()


def test_labels_matching_no_id_are_a_warning(
    tmp_path: Path, current: pd.DataFrame, profile: ReferenceProfile
) -> None:
    other = pd.DataFrame({"row_id": np.arange(10) + 9_000_000_000, "units_sold": 1.0})
    series = load_labels(str(_labels(tmp_path, other)), "row_id", "units_sold")
    result = _run(current, profile, series)
    assert result.verdict.performance.count == 0 and result.verdict.performance.mae is None
    assert result.model_extra["labels"]["unmatched_ids"] == 10
    assert result.model_extra["warnings"] == [
        "labels: none of the 10 label id(s) matches an id of the current data: no performance"
    ]


def test_labels_that_do_not_parse_are_a_warning(
    tmp_path: Path, current: pd.DataFrame, profile: ReferenceProfile
) -> None:
    labels = current[["row_id", "units_sold"]].iloc[:100].astype({"units_sold": object})
    labels.iloc[:7, 1] = "n/a?"
    series = load_labels(str(_labels(tmp_path, labels)), "row_id", "units_sold")
    result = _run(current, profile, series)
    assert result.model_extra["labels"]["unparsed"] == 7
    assert "labels: 7 label value(s) are not numbers and were ignored" in result.model_extra["warnings"]
    assert result.verdict.performance.count == 93


def test_some_unmatched_and_repeated_current_ids_are_warnings(
    tmp_path: Path, current: pd.DataFrame, profile: ReferenceProfile
) -> None:
    labels = pd.concat(
        [current[["row_id", "units_sold"]].iloc[:100], pd.DataFrame({"row_id": [-1, -2], "units_sold": 1.0})]
    )
    series = load_labels(str(_labels(tmp_path, labels)), "row_id", "units_sold")
    doubled = pd.concat([current, current.iloc[:10]])  # ten ids twice in the current data
    result = _run(doubled, profile, series)
    warnings = result.model_extra["warnings"]
    assert "labels: 2 of 102 label id(s) match no current row" in warnings
    assert any(w.startswith("labels: 10 id(s) occur on several rows of the current data") for w in warnings)


def test_data_quality_is_reported_when_windows_are_too_small(profile: ReferenceProfile) -> None:
    small = make_frame(30, seed=5)
    small["x0"] = np.nan  # every value missing: a finding on 30 rows too
    table = pa.Table.from_pandas(small, preserve_index=False)
    result = run_monitor([table], profile, MonitorOptions(window="all", min_window_rows=1_000))
    assert result.verdict.status == "insufficient_data"
    findings = [(f.window, f.feature, f.metric, f.value) for f in result.verdict.data_quality_findings]
    assert findings == [("overall", "x0", "null_value_rate", 1.0)]


def test_monitor_cli_refuses_conflicting_labels_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, cur = make_frame(3_000, seed=1), make_frame(1_000, seed=2)
    ref.to_parquet(tmp_path / "reference.parquet")
    cur.drop(columns=["units_sold"]).to_parquet(tmp_path / "current.parquet")
    labels = cur[["row_id", "units_sold"]].iloc[:20]
    pd.concat([labels, labels.assign(units_sold=0.0)]).to_csv(tmp_path / "labels.csv", index=False)
    (tmp_path / "amlops.yaml").write_text(
        "experiment: t\nmonitor:\n  id_column: row_id\n  label_column: units_sold\n  window: all\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMLOPS_CONFIG", str(tmp_path / "amlops.yaml"))
    res = CliRunner().invoke(
        app,
        [
            "monitor",
            "--current",
            str(tmp_path / "current.parquet"),
            "--reference",
            str(tmp_path / "reference.parquet"),
            "--labels",
            str(tmp_path / "labels.csv"),
            "--out",
            str(tmp_path / "out"),
        ],
        env={"COLUMNS": "300"},
    )
    assert res.exit_code == 1, res.output
    assert "20 'row_id' value(s) appear more than once with different labels" in " ".join(res.output.split())
    assert not (tmp_path / "out" / "result.json").exists()  # no verdict from a join that cannot be right
