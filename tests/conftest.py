"""Shared fixtures. Services (Azurite, an MLflow server) are started by `make test` (tools/with_services.py),
which exports their addresses; run alone, tests that need them are skipped — unless AMLOPS_REQUIRE_SERVICES=1,
as under `make test`, where a missing service is a failure."""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# --- Scheduling of the test workers (make test: -n auto --dist loadfile) -------------------------------------------
# With two workers the wall time is at least max(total / 2, longest unit): a heavy file scheduled last runs alone
# while the other worker idles. So the units go out longest first (classic LPT scheduling), one at a time as a worker
# frees up, instead of xdist's default order (files with the most tests first, each worker prefetching two).
DURATIONS = Path(__file__).with_name("durations.json")
# Files whose tests share no module-scoped fixture and each cost tens of seconds: scheduled test by test, so two of
# them can run on two workers at once. Every other file stays one unit (its module fixtures run once).
SPREAD = frozenset(
    {
        "tests/newcomer/test_first_session.py",
    }
)
# A file missing from durations.json (new since the last refresh): its cost guessed from its tests.
GUESS_PER_TEST, GUESS_PER_SLOW_TEST = 0.5, 20.0


def _seconds_by_file() -> dict[str, float]:
    """Seconds per test file of a past run (tests/durations.py writes it from a --junitxml report)."""
    try:
        return {str(k): float(v) for k, v in json.loads(DURATIONS.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError):
        return {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, order the collection longest file first: the scheduler hands units out in this order. Every
    worker computes the same order (xdist checks that all collections are equal)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    known = _seconds_by_file()
    guessed: dict[str, float] = {}
    for item in items:
        file = item.nodeid.split("::", 1)[0]
        guessed[file] = guessed.get(file, 0.0) + (
            GUESS_PER_SLOW_TEST if item.get_closest_marker("slow") else GUESS_PER_TEST
        )
    cost = {file: known.get(file, guess) for file, guess in guessed.items()}
    items.sort(key=lambda item: -cost[item.nodeid.split("::", 1)[0]])  # stable: a file's own order is kept


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadfile with the order of pytest_collection_modifyitems, SPREAD files split per test, and a unit
    given to a worker only when it is about to run out (see _longest_first_scheduler)."""
    if config.getvalue("dist") != "loadfile":
        return None
    config.option.loadscopereorder = False  # xdist would re-sort the units by their number of tests
    return _longest_first_scheduler()(config, log)


def _longest_first_scheduler() -> type:
    from xdist.scheduler import LoadFileScheduling

    class LongestFirst(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return nodeid if file in SPREAD else file

        def _reschedule(self, node: Any) -> None:
            # xdist's loadscope tops a worker up whenever it has 2 tests or fewer pending, so a worker busy with a
            # two-test file that takes a minute already holds the next unit, which the idle worker could have run.
            # A worker keeps its last test until it gets more work or shutdown (it needs the next item to tear down
            # fixtures), so one pending test means it is waiting: only then does it get the next unit.
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) > 1:
                return
            self._assign_work_unit(node)

    return LongestFirst


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


SERVICES_START_TIMEOUT_S = 300.0


def _service(var: str, what: str) -> str:
    value = os.environ.get(var)
    if value:
        _wait_for_services()
        return value
    if os.environ.get("AMLOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required under make test but {var} is not set")
    pytest.skip(f"{what} not running ({var} unset); run through `make test`")


def _wait_for_services() -> None:
    """tools/with_services.py starts the services beside the test run: wait until they answer (READY), fail with
    the reason if they could not start (FAILED)."""
    ready = os.environ.get("AMLOPS_TEST_SERVICES_READY")
    failed = os.environ.get("AMLOPS_TEST_SERVICES_FAILED")
    if not ready:
        return
    deadline = time.monotonic() + SERVICES_START_TIMEOUT_S
    while not Path(ready).exists():
        if failed and Path(failed).exists():
            pytest.fail(f"the test services did not start: {Path(failed).read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the test services did not answer within {SERVICES_START_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


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
