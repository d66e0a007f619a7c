"""Start MLflow while a step computes: its import and tracking-store set-up cost a step ~2 s of CPU.

A step run by the runner logs to MLflow (MLFLOW_TRACKING_URI is set, as in an Azure ML job), and on the local
SQLite store that means importing mlflow (which loads every tracking-store plugin, azureml-mlflow with
azure-storage-blob and aiohttp among them) and SQLAlchemy's models and alembic before the first call. Measured
(bench/whole_bench.py): that is most of what a step run by the runner pays over the same command run
directly. None of it depends on the step's result, so a background thread pays it while the step reads and
computes (numpy and Arrow release the GIL in their loops); `wait()` before logging keeps the store built once.
"""

from __future__ import annotations

import os
import threading

_thread: threading.Thread | None = None


def _warm(uri: str, experiment: str) -> None:
    try:
        from amlops.mlflow_local import skip_azureml_plugins

        skip_azureml_plugins()
        import mlflow

        # Builds and caches the tracking store (mlflow's registry keeps one per URI: the step's own calls get
        # this one) without creating an experiment or a run.
        mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    except Exception:  # the step's own logging reports what is wrong, in the step's thread
        return


def start(default_experiment: str) -> None:
    """Warm MLflow up in the background when the step will log (MLFLOW_TRACKING_URI set). Call it after the
    step's own heavy imports (pandas, pyarrow), so the two threads never import the same module at once."""
    global _thread
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if _thread is not None or not uri:
        return
    experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME", default_experiment)
    from amlops.mlflow_local import direct_ready

    if direct_ready(
        uri, experiment
    ):  # the run is written without MLflow (amlops.mlflow_local.log_run_sqlite)
        return
    _thread = threading.Thread(target=_warm, args=(uri, experiment), name="amlops-mlflow-warm", daemon=True)
    _thread.start()


def wait() -> None:
    """Before the first MLflow call: the store is then built (or the warm-up failed and the call will say why)."""
    if _thread is not None:
        _thread.join()
