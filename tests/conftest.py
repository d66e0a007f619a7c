"""Shared fixtures. Services (Azurite, an MLflow server) are started by `make test` (tools/with_services.py),
which exports their addresses; run alone, tests that need them are skipped — unless AMLOPS_REQUIRE_SERVICES=1,
as under `make test`, where a missing service is a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amlops.config import Settings

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _service(var: str, what: str) -> str:
    value = os.environ.get(var)
    if value:
        return value
    if os.environ.get("AMLOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required under make test but {var} is not set")
    pytest.skip(f"{what} not running ({var} unset); run through `make test`")


@pytest.fixture(scope="session")
def azurite_connection_string() -> str:
    """Connection string of the Azurite blob service started by make test."""
    return _service("AMLOPS_TEST_AZURITE_CONNECTION_STRING", "Azurite")


@pytest.fixture(scope="session")
def mlflow_server_uri() -> str:
    """http:// URI of the MLflow tracking server started by make test."""
    return _service("AMLOPS_TEST_MLFLOW_URI", "MLflow server")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings rooted in a temporary folder: SQLite MLflow, runs and storage all under tmp_path."""
    return Settings(base_dir=tmp_path)


@pytest.fixture
def repo() -> Path:
    return REPO


_MLFLOW_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_RUN_ID",
)


@pytest.fixture(autouse=True)
def _isolate_mlflow_globals():
    """mlflow.set_tracking_uri() is process-global and also writes MLFLOW_TRACKING_URI into os.environ; without
    this, one test's store would leak into the next (the CLI runs one command per process, tests do not)."""
    import sys

    saved = {k: os.environ.get(k) for k in _MLFLOW_ENV}
    yield
    if "mlflow" in sys.modules:
        import mlflow
        from mlflow.tracking import fluent
        from mlflow.tracking._model_registry import utils as registry_utils

        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None restores the default lookup
        registry_utils._registry_uri = None  # no public reset exists
        fluent._active_experiment_id = None
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
