"""The monitoring step passes the model's feature importance on beside result.json, so that both loops (local,
and Azure ML, which downloads only the step's output) weigh drift by the same importance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amlops.monitoring import read_importance
from amlops.steps import monitor as step

from .conftest import make_frame


def test_model_importance_lands_beside_the_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    reference = tmp_path / "reference.parquet"
    current = tmp_path / "current.parquet"
    make_frame(5_000, seed=1).to_parquet(reference)
    make_frame(3_000, seed=2).to_parquet(current)
    # A model folder as the train step leaves it: the reference profile and the importance.
    model = tmp_path / "model"
    built = tmp_path / "built"
    step.monitor(str(current), str(built), reference_data=str(reference), window="all")
    model.mkdir()
    (model / step.PROFILE_FILE).write_bytes((built / step.PROFILE_FILE).read_bytes())
    (model / step.IMPORTANCE_FILE).write_text(json.dumps({"price": 0.7, "promotion": 0.3}))

    out = tmp_path / "out"
    step.monitor(str(current), str(out), model_dir=str(model), window="all")
    assert read_importance(out) == {"price": 0.7, "promotion": 0.3}

    (model / step.IMPORTANCE_FILE).unlink()  # a model without one: nothing passed on, nothing invented
    again = tmp_path / "again"
    step.monitor(str(current), str(again), model_dir=str(model), window="all")
    assert read_importance(again) is None
