"""The map-reduce monitoring pipeline on the local runner, and when `amlops monitor` chooses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amlops import monitoring
from amlops.config import Settings
from amlops.drift.estimate import fit_error_estimator
from amlops.drift.multivariate import fit_pca
from amlops.drift.profile import build_profile
from amlops.job_inputs import Target, monitoring_inputs, monitoring_mapreduce_inputs

from .conftest import CATEGORICAL, NUMERIC, make_frame


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mr-pipeline")
    model = root / "model"
    model.mkdir()
    ref = make_frame(20_000, seed=1)
    build_profile(ref, NUMERIC, CATEGORICAL, target="units_sold", prediction="prediction").to_json(
        model / "reference_profile.json"
    )
    # As `amlops train` leaves a model: with an error estimator and a multivariate PCA (both merge now).
    holdout = make_frame(4_000, seed=5)
    fit_error_estimator(
        holdout, holdout["prediction"].to_numpy(), holdout["units_sold"].to_numpy(), NUMERIC, CATEGORICAL
    ).save(model)
    fit_pca(ref, NUMERIC).save(model)
    current = root / "current"
    current.mkdir()
    frame = make_frame(8_000, seed=2, drift_from_day=14)
    for i in range(4):
        frame.iloc[i * 2_000 : (i + 1) * 2_000].to_parquet(current / f"day-{i}.parquet", row_group_size=600)
    return model, current


def _settings(tmp_path: Path, rows: int) -> Settings:
    settings = Settings(base_dir=tmp_path)
    settings.monitor.mapreduce_rows = rows
    settings.monitor.chunk_rows = 500
    settings.monitor.min_window_rows = 100
    return settings


def _inputs(settings: Settings, model: Path, current: Path, **kw: str) -> dict[str, str]:
    inputs, _note = monitoring_inputs(
        settings, str(current), model=str(model), window=kw.pop("window", "weekly")
    )
    return inputs


def test_the_size_setting_picks_the_pipeline(model_and_data: tuple[Path, Path], tmp_path: Path) -> None:
    model, current = model_and_data
    big = _settings(tmp_path, 8_000)
    chosen = monitoring_mapreduce_inputs(big, _inputs(big, model, current))
    assert chosen is not None and chosen["max_concurrency_per_instance"].isdigit()
    assert "reference_data" not in chosen and chosen["model"] == str(model)
    assert monitoring_mapreduce_inputs(_settings(tmp_path, 8_001), _inputs(big, model, current)) is None
    assert monitoring_mapreduce_inputs(_settings(tmp_path, 0), _inputs(big, model, current)) is None
    # Row-count windows need each row's global position: single process.
    assert monitoring_mapreduce_inputs(big, _inputs(big, model, current, window="1000")) is None
    # A size this machine cannot read: single process (the user may run the map-reduce pipeline by name).
    remote = {**_inputs(big, model, current), "current_data": "azureml:new-data:3"}
    assert monitoring_mapreduce_inputs(big, remote, Target.azure) is None
    path, _ = monitoring.choose_pipeline(big, _inputs(big, model, current))
    assert path.name == "monitoring_mapreduce.yml"


def test_a_model_with_label_free_checks_goes_map_reduce_too(
    model_and_data: tuple[Path, Path], tmp_path: Path
) -> None:
    """Its error estimate and multivariate check merge exactly (amlops.drift.estimate.BottomK), so size alone
    decides: such a model is no longer kept on the single process."""
    model, current = model_and_data
    assert (model / "error_estimator.json").is_file() and (model / "multivariate.json").is_file()
    big = _settings(tmp_path, 8_000)
    assert monitoring_mapreduce_inputs(big, _inputs(big, model, current)) is not None


@pytest.mark.slow
def test_local_runner_map_reduce_equals_single_process(
    model_and_data: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both pipelines on the local runner (parallel driver with 2 workers vs one command step): same result.json."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    model, current = model_and_data
    settings = _settings(tmp_path, 1)
    inputs = _inputs(settings, model, current)
    mapreduce = monitoring.run_local(settings, inputs, quiet=True)
    assert mapreduce.run_dir is not None and "monitoring_mapreduce" in str(mapreduce.run_dir)
    assert len(list((mapreduce.run_dir / "map" / "partials").glob("*.partial.json"))) == 4
    single = monitoring.run_local(settings, inputs, pipeline=settings.pipeline_file("monitoring"), quiet=True)
    a, b = (json.loads((r.folder / "result.json").read_text(encoding="utf-8")) for r in (single, mapreduce))
    a.pop("created_at"), b.pop("created_at")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert all(w.get("estimated_performance") and w.get("multivariate") for w in b["windows"])
    assert mapreduce.result.verdict.drift_detected and (mapreduce.folder / "report.html").is_file()
