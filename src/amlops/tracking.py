"""MLflow wiring shared by the runner and the CLI: environment for steps, experiments with a known artifact root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from amlops.config import Settings
from amlops.errors import UserError

# An unreachable tracking server must fail in seconds, not after MLflow's retries (7 with backoff, 120 s timeout
# each: MLFLOW_HTTP_REQUEST_MAX_RETRIES / MLFLOW_HTTP_REQUEST_TIMEOUT in mlflow/environment_variables.py).
PROBE_TIMEOUT = 5.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
_reachable: set[str] = set()


def mlflow_env(settings: Settings, experiment: str | None = None) -> dict[str, str]:
    """The variables a step needs to log where AML would: tracking/registry URI and experiment name."""
    env = {
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.registry_uri,
        "MLFLOW_EXPERIMENT_NAME": experiment or settings.experiment,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    return env


def _marker(settings: Settings, name: str) -> Path | None:
    """A local note that the experiment exists, so a run does not pay MLflow's import (seconds) to check again.

    Only for SQLite stores: the note records the database file's inode, so a deleted database invalidates it.
    """
    uri = settings.tracking_uri
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///") :])
    if not db.exists():
        return None
    key = hashlib.sha256(f"{uri}|{name}|{db.stat().st_ino}".encode()).hexdigest()[:16]
    return settings.state_path / "experiments" / key


def check_store(settings: Settings) -> None:
    """Refuse, in one line, a tracking store that MLflow would misuse or wait on: an empty or truncated SQLite file
    (MLflow would silently create a new, empty registry in an empty file, and fail deep in a query on a truncated
    one), or an HTTP server that does not answer within PROBE_TIMEOUT seconds. Called wherever a client is made."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        check_sqlite(Path(uri[len("sqlite:///") :]))
    elif uri.startswith(("http://", "https://")) and uri not in _reachable:
        probe_server(uri)
        _reachable.add(uri)


def check_sqlite(db: Path) -> None:
    """A missing file is a new store (fine); an existing one must be a whole SQLite database. The header's page
    size (bytes 16-17) and page count (28-31, valid when bytes 24-27 equal 92-95) give its full length
    (https://www.sqlite.org/fileformat2.html#the_database_header)."""
    if not db.exists():
        return
    if db.is_dir():
        raise UserError(f"MLflow store {db} is a folder, not an SQLite database file")
    size = db.stat().st_size
    if size == 0:
        raise UserError(
            f"MLflow store {db} is empty (0 bytes): refusing to start a new registry over it "
            "(restore it from a backup, or delete the file to start afresh)"
        )
    with db.open("rb") as fh:
        header = fh.read(100)
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise UserError(
            f"MLflow store {db} is not an SQLite database (corrupt or overwritten): restore it from a backup"
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if pages and header[24:28] == header[92:96] and size < pages * page_size:
        raise UserError(
            f"MLflow store {db} is truncated ({size} of {pages * page_size} bytes): restore it from a backup"
        )


def probe_server(uri: str, timeout: float = PROBE_TIMEOUT) -> None:
    """One quick request to the server; any HTTP answer counts as reachable (the client reports HTTP errors)."""
    import requests

    try:
        requests.get(f"{uri.rstrip('/')}/health", timeout=timeout)
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise UserError(
            f"MLflow tracking server {uri} is unreachable ({reason} within {timeout:g}s): start it or fix "
            "mlflow.tracking_uri in amlops.yaml"
        ) from None


def ensure_experiment(settings: Settings, experiment: str | None = None) -> str:
    """Create the experiment with the configured artifact root if missing (else MLflow would use ./mlruns of cwd)."""
    name = experiment or settings.experiment
    check_store(settings)
    marker = _marker(settings, name)
    if marker is not None and marker.is_file():
        return marker.read_text(encoding="utf-8").strip()
    experiment_id = _ensure_experiment(settings, name)
    marker = _marker(settings, name)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(experiment_id, encoding="utf-8")
    return experiment_id


def _ensure_experiment(settings: Settings, name: str) -> str:
    import logging

    import mlflow
    from mlflow.tracking import MlflowClient

    # Schema creation/migration notices from the SQLite store are noise on a user's terminal.
    for logger in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri, registry_uri=settings.registry_uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    artifact_location = None
    if settings.mlflow.artifact_root or not uri.startswith(("http://", "https://", "databricks", "azureml")):
        root = settings.artifact_root
        if "://" not in root:
            Path(root).mkdir(parents=True, exist_ok=True)
            artifact_location = Path(root).resolve().as_uri()
        else:
            artifact_location = root.rstrip("/")
    try:
        return str(client.create_experiment(name, artifact_location=artifact_location))
    except mlflow.exceptions.MlflowException:
        # Another process created it between our lookup and create.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def git_commit(start: Path) -> str:
    """The code commit for lineage: `AMLOPS_GIT_COMMIT`, else `git rev-parse HEAD` (+`-dirty`), else `unknown`."""
    explicit = os.environ.get("AMLOPS_GIT_COMMIT")
    if explicit:
        return explicit
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=start, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=start,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head
