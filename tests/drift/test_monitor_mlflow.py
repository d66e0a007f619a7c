"""The monitor's MLflow run written straight into a local SQLite store is the run MLflow itself writes.

`amlops.mlflow_local.log_run_sqlite` skips MLflow's import (seconds of CPU per step) by writing MLflow's rows
itself. These tests read both records back through MlflowClient and compare them, prove the direct path works
with MLflow unimportable, and plant each case it must hand back to MLflow (an unknown schema, a remote artifact
store, a missing experiment, a failing copy) to check that nothing half-written is left.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from amlops import mlflow_local
from amlops.drift.result import MonitorResult
from amlops.steps import _mlflow_warm
from amlops.steps import monitor as step
from amlops.steps._monitor_mlflow import log_to_mlflow, mlflow_metrics

from .conftest import make_frame

EXPERIMENT = "monitor-direct-test"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[MonitorResult, Path]:
    """A weekly monitor result (several windows: metric series with steps) and its output folder."""
    root = tmp_path_factory.mktemp("direct-data")
    make_frame(6_000, seed=1).to_parquet(root / "reference.parquet")
    make_frame(6_000, seed=2, drift_from_day=14).to_parquet(root / "current.parquet")
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        result = step.monitor(
            str(root / "current.parquet"),
            root / "out",
            reference_data=str(root / "reference.parquet"),
            window="weekly",
            timestamp_column="date",
            id_column="row_id",
            prediction_column="prediction",
            label_column="units_sold",
        )
    finally:
        mp.undo()
    return result, root / "out"


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local store as the runner leaves it: seeded schema, the experiment created by MLflow."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert mlflow_local.seed_sqlite(uri)
    MlflowClient(tracking_uri=uri).create_experiment(
        EXPERIMENT, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("AMLOPS_MLFLOW_DIRECT", raising=False)
    monkeypatch.setattr(_mlflow_warm, "_thread", None)
    return uri


def _runs(uri: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp is not None
    return list(client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"]))


def _record(uri: str, run: Any) -> dict[str, Any]:
    """Everything a reader of the run sees, less what differs between any two runs (ids, times)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    rid = run.info.run_id
    history = {
        key: sorted((m.step, m.value) for m in client.get_metric_history(rid, key))
        for key in run.data.metrics
    }
    files = {a.path for a in client.list_artifacts(rid, "monitor")}
    local = Path(run.info.artifact_uri.removeprefix("file://"))
    return {
        "name": run.info.run_name,
        "status": run.info.status,
        "lifecycle": run.info.lifecycle_stage,
        "user": run.info.user_id,
        "artifact_uri_tail": run.info.artifact_uri.rsplit("/", 2)[-2:] == [rid, "artifacts"],
        "tags": run.data.tags,
        "latest": run.data.metrics,
        "history": history,
        "files": files,
        "contents": {f: (local / f).read_bytes() for f in sorted(files)},
        "ended": run.info.end_time is not None and run.info.end_time >= run.info.start_time,
    }


def test_direct_run_is_the_run_mlflow_writes(
    published: tuple[MonitorResult, Path], store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, out = published
    assert mlflow_local.direct_ready(store, EXPERIMENT)
    monkeypatch.setenv("AMLOPS_MLFLOW_DIRECT", "0")  # the reference record: through MLflow
    log_to_mlflow(result, out)
    monkeypatch.delenv("AMLOPS_MLFLOW_DIRECT")
    log_to_mlflow(result, out)
    via_mlflow, direct = _runs(store)
    a, b = _record(store, via_mlflow), _record(store, direct)
    assert a == b
    # The record is the monitor's, not two empty ones that happen to agree.
    assert b["tags"]["amlops.monitor.status"] == "drift" and b["tags"]["mlflow.runName"] == "monitor drift"
    assert b["tags"]["mlflow.note.content"].startswith("Monitor: drift")
    assert b["files"] == {"monitor/result.json", "monitor/report.html"}
    series = b["history"]["x1.normalized_wasserstein_distance"]
    assert len(series) == 4 and series[-1][1] > 0.1 > series[0][1]
    assert len(b["latest"]) == len({k for k, _, _ in mlflow_metrics(result)})


def test_direct_path_needs_no_mlflow(
    published: tuple[MonitorResult, Path], store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, out = published
    _mlflow_warm.start("unused")
    assert _mlflow_warm._thread is None  # nothing to warm: the step will not import MLflow
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # any `import mlflow` now raises ImportError
    log_to_mlflow(result, out)
    monkeypatch.undo()
    (run,) = _runs(store)
    assert run.data.tags["amlops.monitor.status"] == "drift" and run.data.metrics["drift_detected"] == 1.0


def _count(uri: str, table: str) -> int:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _direct(uri: str, out: Path, experiment: str = EXPERIMENT) -> str | None:
    files = {"monitor": [out / "result.json", out / "report.html"]}
    return mlflow_local.log_run_sqlite(uri, experiment, "monitor drift", {"k": "v"}, [("m", 1.0, 0)], files)


def _plant_schema(uri: str) -> None:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'a_newer_head'")


def _plant_remote_artifacts(uri: str) -> None:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as conn:
        conn.execute(
            "UPDATE experiments SET artifact_location = 'wasbs://c@acct.blob.core.windows.net/x' WHERE name = ?",
            (EXPERIMENT,),
        )


@pytest.mark.parametrize("plant", [_plant_schema, _plant_remote_artifacts], ids=["schema", "remote-store"])
def test_a_store_it_does_not_know_goes_to_mlflow(
    published: tuple[MonitorResult, Path], store: str, plant: Any, tmp_path: Path
) -> None:
    _, out = published
    assert _direct(store, out) is not None  # the unplanted store is taken
    runs = _count(store, "runs")
    plant(store)
    assert not mlflow_local.direct_ready(store, EXPERIMENT)
    assert _direct(store, out) is None
    assert _count(store, "runs") == runs


def test_a_missing_experiment_or_file_writes_nothing(
    published: tuple[MonitorResult, Path], store: str, tmp_path: Path
) -> None:
    _, out = published
    assert _direct(store, out, experiment="no-such-experiment") is None
    missing = tmp_path / "gone"
    missing.mkdir()
    (missing / "result.json").write_text("{}")  # report.html is missing: the copy fails midway
    assert _direct(store, missing) is None
    assert _count(store, "runs") == 0 and _count(store, "metrics") == 0 and _count(store, "tags") == 0
    assert not any((tmp_path / "artifacts").glob("*/artifacts")), "a half-copied run folder was left behind"


def test_the_installed_mlflow_schema_is_known(store: str) -> None:
    """Fails on an MLflow upgrade that changes the schema: check the rows written in mlflow_local against the new
    SqlRun/SqlTag/SqlMetric/SqlLatestMetric models, then add the head to KNOWN_SCHEMAS."""
    with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
        (head,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert head in mlflow_local.KNOWN_SCHEMAS
