"""Shared fixtures. Services (Azurite, an MLflow server) are started by `make test` (tools/with_services.py),
which exports their addresses; run alone, tests that need them are skipped — unless AMLOPS_REQUIRE_SERVICES=1,
as under `make test`, where a missing service is a failure."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

# pytest-xdist workers start with COLUMNS=80 and LINES=24 in their environment (a serial run has neither): rich
# would then draw the CLI's tables 80 columns wide (amlops/console.py reads COLUMNS once, at import), and a test
# reading a table would pass or fail depending on the worker count. Drop them before anything imports amlops.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)

import pytest
from filelock import FileLock

from amlops.config import Settings

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")


SharedCache = Callable[[str, Callable[[Path], None]], Path]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> SharedCache:
    """`shared_cache(name, build)`: the folder `name`, built by `build(folder)` once per test run (see
    _shared_folder): for session fixtures that cost seconds, which every xdist worker would otherwise repeat."""
    return functools.partial(_shared_folder, tmp_path_factory)


def _shared_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """A folder built once per test run and shared by every pytest-xdist worker (the FileLock pattern of
    pytest-xdist's docs, "Making session-scoped fixtures execute only once"): the first worker to ask builds it
    under a lock, the others wait and reuse it. A serial run builds it in its own temporary folder.

    `build(folder)` fills an empty folder; the result is read-only by contract (tests copy what they change), so
    sharing it cannot couple tests."""
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker's basetemp is <run>/popen-gwN: <run> is this run's alone (pytest numbers runs), so a
    # cache there never outlives the code that built it. A serial run keeps it in its own basetemp.
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = root / f"shared-{name}"
    with FileLock(str(target) + ".lock"):
        # Built in place (what it holds may record its own absolute path: an MLflow store does); the marker, written
        # last, tells a finished folder from one a failed build left behind.
        if not (target / ".built").is_file():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            (target / ".built").touch()
    return target


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
