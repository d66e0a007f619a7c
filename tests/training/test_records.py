"""The gate verdict and the registration record are typed (amlops.records): read by attribute, shape kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amlops.records import GateVerdict, Registration
from amlops.steps.register import RegisterError, _read_verdict

VERDICT = {
    "passed": True,
    "summary": "gate passed: mae 3.1 vs champion v1 3.5 (+11.43%)",
    "reasons": [],
    "notes": ["x"],
    "metric": "mae",
    "challenger": {"metrics": {"mae": 3.1, "rmse": 4.0, "mape": 0.2}},
    "champion": {"version": "1", "uri": "models:/m/1", "metrics": {"mae": 3.5, "rmse": 4.4, "mape": 0.25}},
    "improvement": 0.1143,
    "interval": {"low": 0.05, "high": 0.17, "confidence": 0.95, "method": "block bootstrap", "samples": 1000},
    "thresholds": {"max_mae": None},
    "holdout": {"start": "2024-04-01", "end": "2024-04-28", "days": 28, "rows": 2688},
    "data_digest": "sha256:abc",
    "evaluated_at": "2026-11-30T06:00:00+00:00",
    "config": {"metric": "mae", "seed": 42},
}


def test_verdict_reads_by_attribute_and_keeps_its_shape(tmp_path: Path) -> None:
    (tmp_path / "verdict.json").write_text(json.dumps(VERDICT))
    verdict = _read_verdict(tmp_path)
    assert verdict.passed and verdict.champion_version == "1"
    assert verdict.interval is not None and verdict.interval.low == 0.05
    assert verdict.to_json_dict() == VERDICT  # unknown keys (thresholds, config) kept, nothing added


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"passed": "yes"}, "passed"),
        ({"challenger": None}, "challenger"),
        ({"holdout": {"days": 1}}, "holdout"),
    ],
)
def test_a_broken_verdict_fails_closed_naming_the_field(tmp_path: Path, change: dict, field: str) -> None:
    (tmp_path / "verdict.json").write_text(json.dumps({**VERDICT, **change}))
    with pytest.raises(RegisterError, match=rf"verdict.json: not a gate verdict: {field}"):
        _read_verdict(tmp_path)


def test_registration_role_and_promotion() -> None:
    record = Registration.model_validate(
        {
            "model_name": "m",
            "version": "3",
            "is_champion": False,
            "champion": "2",
            "promotion": {"status": "champion_changed", "gate_champion": "1", "champion_at_promotion": "2"},
        }
    )
    assert record.role == "challenger" and record.promotion is not None
    assert record.promotion.status == "champion_changed" and record["champion"] == "2"
    assert GateVerdict.model_validate(VERDICT).champion_version == "1"
