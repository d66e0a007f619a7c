"""MLflow wiring shared by the runner and the CLI: environment for steps, experiments with a known artifact root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from amlops.config import Settings


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


def ensure_experiment(settings: Settings, experiment: str | None = None) -> str:
    """Create the experiment with the configured artifact root if missing (else MLflow would use ./mlruns of cwd)."""
    name = experiment or settings.experiment
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
