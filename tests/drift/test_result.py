"""The typed monitor result: result.json keeps its shape through the model (Azure jobs and CI read the file)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.profile import build_profile
from amlops.drift.result import MetricEntry, MonitorResult
from amlops.steps import monitor as step

from .conftest import make_frame


@pytest.fixture(scope="module")
def step_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A result.json as the step writes it: weekly windows, labels, prediction drift, an all-null column."""
    root = tmp_path_factory.mktemp("result")
    reference = make_frame(8_000, seed=1)
    current = make_frame(6_000, seed=2, drift_from_day=14)
    current["qty"] = np.nan  # no values now: metrics without a value and without a statistic
    profile = build_profile(
        reference,
        ["x0", "x1", "price", "qty"],
        ["store", "promo"],
        target="units_sold",
        prediction="prediction",
        metadata={"performance": {"mae": 0.4, "mape": float("nan")}, "feature_importance": {"x1": 0.7}},
    )
    profile.to_json(root / "profile.json")
    current.to_parquet(root / "current.parquet")
    current[["row_id", "units_sold"]].to_csv(root / "labels.csv", index=False)
    code = step.main(
        [
            "--current",
            str(root / "current.parquet"),
            "--reference-profile",
            str(root / "profile.json"),
            "--labels",
            str(root / "labels.csv"),
            "--window",
            "weekly",
            "--timestamp-column",
            "date",
            "--id-column",
            "row_id",
            "--prediction-column",
            "prediction",
            "--label-column",
            "units_sold",
            "--output",
            str(root / "out"),
        ]
    )
    assert code == 0
    return root / "out" / "result.json"


def test_result_json_round_trips_byte_for_byte(step_output: Path) -> None:
    text = step_output.read_text(encoding="utf-8")
    result = MonitorResult.read(step_output.parent)
    assert result.to_json() + "\n" == text
    assert result.to_json_dict() == json.loads(text)
    # What the step added and what only some entries carry survived as they were.
    raw = json.loads(text)
    assert (
        raw["current"]["source"].endswith("current.parquet")
        and result.current.source == raw["current"]["source"]
    )
    qty = raw["overall"]["features"]["qty"]["metrics"]["two_sample_kolmogorov_smirnov_test"]
    assert qty == {"value": None, "threshold": 0.05, "exceeded": False}  # no statistic key
    assert "statistic" in raw["overall"]["features"]["x1"]["metrics"]["two_sample_kolmogorov_smirnov_test"]
    assert (
        "distribution" in raw["overall"]["features"]["x1"]
        and "distribution" not in raw["windows"][0]["features"]["x1"]
    )
    assert raw["windows"][0]["performance"]["reference"] == {"mae": 0.4, "mape": None}  # NaN in the profile


def test_fields_are_read_by_attribute(step_output: Path) -> None:
    result = MonitorResult.read(step_output)
    assert result.verdict.status == "drift" and result.verdict.first_drifted_window == "2024-W03"
    assert result.overall.features["x1"].deciding.exceeded
    assert [w.window for w in result.judged_windows] == [w.window for w in result.windows]
    assert result.windows[0].performance is not None and result.windows[0].performance.reference == {
        "mae": 0.4,
        "mape": None,
    }
    # Dict-style reading stays possible for readers written against the plain dict.
    assert result["verdict"]["status"] == "drift" and result["schema"] == "amlops.monitor_result"
    with pytest.raises(KeyError):
        result["nope"]


def test_keys_of_a_newer_result_are_kept(step_output: Path) -> None:
    raw = json.loads(step_output.read_text(encoding="utf-8"))
    raw["verdict"]["future_flag"] = True
    raw["windows"][0]["features"]["x1"]["metrics"]["jensen_shannon_distance"]["p95"] = 0.3
    assert MonitorResult.model_validate(raw).to_json_dict() == raw


def test_a_key_written_where_it_was_absent_is_caught(
    step_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted fault: without 'absent stays absent', a value-less metric would gain `statistic: null`."""
    monkeypatch.setattr(MetricEntry, "_omit_unless_set", frozenset())
    text = step_output.read_text(encoding="utf-8")
    assert MonitorResult.read(step_output).to_json() + "\n" != text


def test_run_monitor_returns_the_model() -> None:
    frame = pd.DataFrame({"v": np.arange(1_000, dtype=float)})
    result = run_monitor([pa.Table.from_pandas(frame)], build_profile(frame, ["v"], []), MonitorOptions())
    assert isinstance(result, MonitorResult)
    assert result.verdict.status == "no_drift" and result.windows == []
    assert "source" not in result.to_json_dict()["current"]  # only the step knows the source
