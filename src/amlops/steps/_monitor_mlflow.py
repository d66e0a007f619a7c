"""The monitor's MLflow record: one run per monitoring job with the verdict as tags, every window's metrics and
the result/report files. Kept apart from the step so that every caller publishes the same record (the monitor
step; a reduce step that merges mini-batch results calls `log_to_mlflow` the same way).

Cost: the metrics go in batches of 1000 (`MlflowClient.log_batch`, MLflow's documented per-request limit for
metrics, mlflow/utils/validation.py MAX_METRICS_PER_BATCH), one store round trip each instead of one per metric;
the per-window series stay metrics with `step` = window number (the UI plots them as series, tests read their
history).

On the local runner's SQLite store the run is written directly (amlops.mlflow_local.log_run_sqlite): the same
rows MLflow writes, without importing MLflow and SQLAlchemy in the step (about 2.5 s of CPU of a 1M-row step).
Any other store, or a SQLite schema not known, goes through MLflow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from amlops.drift.result import RESULT_FILE

if TYPE_CHECKING:
    from amlops.drift.result import MonitorResult

REPORT_FILE = "report.html"
_BATCH = 1000


def mlflow_metrics(result: MonitorResult) -> list[tuple[str, float, int]]:
    """(key, value, step) triples: per window (step = window number) and the verdict (step 0)."""
    from amlops.drift.metrics import PERFORMANCE_METRICS

    rows: list[tuple[str, float, int]] = []
    v = result.verdict
    rows.append(("drift_detected", float(v.drift_detected), 0))
    rows.append(("drifted_feature_count", float(len(v.drifted_features)), 0))
    rows.append(("drifted_window_count", float(v.drifted_window_count), 0))
    rows.append(("data_quality_finding_count", float(len(v.data_quality_findings)), 0))
    windows = result.windows or [result.overall]
    for step, w in enumerate(windows):
        rows.append(("window_row_count", float(w.row_count), step))
        for name, f in w.features.items():
            for metric, entry in f.metrics.items():
                if entry.value is not None:
                    rows.append((f"{_key(name)}.{metric}", float(entry.value), step))
        if w.prediction_drift:
            for metric, entry in w.prediction_drift.metrics.items():
                if entry.value is not None:
                    rows.append((f"prediction.{metric}", float(entry.value), step))
        est = w.estimated_performance
        if est is not None:
            for metric in ("mae", "rmse"):
                value = getattr(est, metric)
                if value is not None:
                    rows.append((f"estimated_{metric}", float(value), step))
        if w.performance:
            for metric in PERFORMANCE_METRICS:
                value = getattr(w.performance, metric)
                if value is not None:
                    rows.append((metric, float(value), step))
    return rows


def log_to_mlflow(result: MonitorResult, out: Path) -> None:
    """One finished run in MLFLOW_EXPERIMENT_NAME: straight into a local SQLite store when it is one MLflow's
    schema we know (amlops.mlflow_local.log_run_sqlite, the same rows for ~2.5 s less CPU), else through MLflow."""
    from amlops.mlflow_local import context_tags, log_run_sqlite

    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", "amlops-monitor")
    name, note, tags = run_identity(result)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    files = {"monitor": [out / RESULT_FILE, out / REPORT_FILE]}
    if log_run_sqlite(uri, experiment, name, {**context_tags(note), **tags}, mlflow_metrics(result), files):
        return
    _log_with_mlflow(result, out, experiment, name, note, tags)


def run_identity(result: MonitorResult) -> tuple[str, str, dict[str, str]]:
    """(run name, description, amlops tags) of the monitor's run."""
    from amlops.tracking import run_name, run_note

    v = result.verdict
    note = run_note(
        f"Monitor: {v.status.replace('_', ' ')}: {v.summary}",
        {
            "windows judged": f"{v.evaluated_window_count} of {v.window_count or 1}",
            "rows": result.current.row_count,
        },
    )
    name = run_name(
        f"monitor {v.status.replace('_', ' ')}", pipeline_run=os.environ.get("AZUREML_RUN_ID", "")
    )
    tags = {
        "amlops.step": "monitor",
        "amlops.monitor.status": v.status,
        "amlops.monitor.first_drifted_window": v.first_drifted_window or "",
        "amlops.monitor.drifted_features": ",".join(v.drifted_features)[:4000],
    }
    return name, note, tags


def _log_with_mlflow(
    result: MonitorResult, out: Path, experiment: str, name: str, note: str, tags: dict[str, str]
) -> None:
    from amlops.mlflow_local import skip_azureml_plugins
    from amlops.steps import _mlflow_warm

    _mlflow_warm.wait()
    skip_azureml_plugins()
    import mlflow
    from mlflow.entities import Metric

    from amlops.tracking import start_run_args

    mlflow.set_experiment(experiment)
    active = mlflow.active_run()
    run = active or mlflow.start_run(**start_run_args(name, note))  # type: ignore[arg-type]
    try:
        mlflow.set_tags(tags)
        import time

        now = int(time.time() * 1000)
        metrics = [Metric(k, val, now, step) for k, val, step in mlflow_metrics(result)]
        client = mlflow.MlflowClient()
        for i in range(0, len(metrics), _BATCH):
            client.log_batch(run.info.run_id, metrics=metrics[i : i + _BATCH])
        mlflow.log_artifact(str(out / RESULT_FILE), artifact_path="monitor")
        mlflow.log_artifact(str(out / REPORT_FILE), artifact_path="monitor")
    finally:
        if active is None:
            mlflow.end_run()


def _key(name: str) -> str:
    """MLflow metric keys allow letters, digits and _-. /: anything else becomes _."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)
