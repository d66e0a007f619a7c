"""MLflow wiring shared by the runner and the CLI: environment for steps, experiments with a known artifact root."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.config import Settings
from amlops.errors import UserError

# An unreachable tracking server must fail in seconds, not after MLflow's retries (7 with backoff, 120 s timeout
# each: MLFLOW_HTTP_REQUEST_MAX_RETRIES / MLFLOW_HTTP_REQUEST_TIMEOUT in mlflow/environment_variables.py).
PROBE_TIMEOUT = 5.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
_reachable: set[str] = set()

if TYPE_CHECKING:
    from mlflow.data.dataset import Dataset

_UNSUPPORTED_CODES = {"ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED", "FEATURE_DISABLED"}
_UNSUPPORTED_WORDS = ("not supported", "not implemented", "unsupported", "not available")
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"}
_NOT_FOUND_WORDS = ("not found", "does not exist", "doesn't exist")
_MAX_TAG_VALUE = 5000


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


def _sqlite_has_experiment(uri: str, experiment_id: str, name: str) -> bool:
    """Whether the SQLite store holds this experiment under this name (stdlib sqlite3: no MLflow import)."""
    import sqlite3

    db = uri[len("sqlite:///") :]
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT name FROM experiments WHERE experiment_id = ? AND lifecycle_stage = 'active'",
                (int(experiment_id),),
            ).fetchone()
    except (sqlite3.Error, ValueError):
        return False
    return row is not None and row[0] == name


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
    from amlops.mlflow_local import skip_azureml_plugins

    skip_azureml_plugins(settings.tracking_uri, settings.registry_uri)  # before anything imports MLflow
    check_store(settings)
    marker = _marker(settings, name)
    if marker is not None and marker.is_file():
        noted = marker.read_text(encoding="utf-8").strip()
        if _sqlite_has_experiment(settings.tracking_uri, noted, name):
            return noted
        # A reset registry can reuse the deleted database's inode: the note is stale, ask MLflow again.
    experiment_id = _ensure_experiment(settings, name)
    marker = _marker(settings, name)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(experiment_id, encoding="utf-8")
    return experiment_id


def _ensure_experiment(settings: Settings, name: str) -> str:
    import logging

    from amlops.mlflow_local import seed_sqlite, skip_azureml_plugins

    uri = settings.tracking_uri
    skip_azureml_plugins(uri, settings.registry_uri)
    seed_sqlite(uri)
    import mlflow
    from mlflow.tracking import MlflowClient

    # Schema creation/migration notices from the SQLite store are noise on a user's terminal.
    for logger in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(logger).setLevel(logging.WARNING)
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


# ------------------------------------------------------------------------------------------- server support
def unsupported_by_server(exc: BaseException) -> bool:
    """True when an MLflow error says the server lacks the API (as opposed to: the thing asked for is absent).

    Azure ML's MLflow endpoint answers a route it lacks with 404 and an empty body, which the client raises as
    ENDPOINT_NOT_FOUND (Azure/azure-sdk-for-python#44896: `/api/2.0/mlflow/logged-models`), and a request it
    rejects with INVALID_PARAMETER_VALUE and an Azure `ValidationError` body (mlflow/mlflow#8008). MLflow's own
    server uses INVALID_PARAMETER_VALUE for "Registered model alias X not found." too: only the words tell
    the two apart."""
    if isinstance(exc, NotImplementedError | AttributeError):
        return True
    code = str(getattr(exc, "error_code", "") or "")
    if code in _UNSUPPORTED_CODES:
        return True
    message = str(exc).lower()
    if code in _NOT_FOUND_CODES:
        return not any(word in message for word in _NOT_FOUND_WORDS)
    if any(word in message for word in _UNSUPPORTED_WORDS):
        return True
    # A bare 404/405/501 that is not an MLflow "not found" answer: the route itself is missing.
    status = getattr(exc, "get_http_status_code", None)
    return bool(callable(status) and status() in (404, 405, 501))


def pandas_dataset(df: Any, **kwargs: Any) -> Any:
    """`mlflow.data.from_pandas(df, **kwargs)` with its schema built column by column where that gives MLflow's
    own answer. Why: MLflow infers a text column's type and whether it is required value by value in Python
    (mlflow/types/utils.py `_infer_colspec_type`, `_infer_required`): 2.2-2.6 s of a 52k-row train step. The
    schema goes into `PandasDataset.schema`, a functools.cached_property, by its instance slot; if MLflow ever
    makes it a plain property the slot is ignored and MLflow infers it as before (slower, same record)."""
    from mlflow.data.pandas_dataset import from_pandas

    dataset = from_pandas(df, **kwargs)
    schema = column_schema(df)
    if schema is not None:
        dataset.__dict__["schema"] = schema
    return dataset


def column_schema(df: Any) -> Any:
    """MLflow's schema of a DataFrame (mlflow.types.utils._infer_schema), with the two per-value passes done by
    pandas for the column kinds where both agree: text columns (pandas' string dtype, or object columns pandas
    infers as "string") and float64, integer,
    bool and datetime64 columns (a null is NaN/None/NA/NaT, which `isna` finds). Other columns go through MLflow's
    own functions. None when MLflow's helpers are not there (its inference then runs unchanged)."""
    import numpy as np
    import pandas as pd

    try:
        from mlflow.types import ColSpec, DataType, Schema
        from mlflow.types.utils import _infer_pandas_column, _infer_required
    except ImportError:
        return None
    specs: list[Any] = []
    for name in df.columns:
        col = df[name]
        text = isinstance(col.dtype, pd.StringDtype) or (
            col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) == "string"
        )
        if text:
            kind, required = DataType.string, not bool(col.isna().any())
        elif col.dtype == np.float64 or col.dtype.kind in "iub" or col.dtype.kind == "M":
            kind, required = _infer_pandas_column(col), not bool(col.isna().any())
        else:
            kind, required = _infer_pandas_column(col), _infer_required(col)
        specs.append(ColSpec(type=kind, name=name, required=required))
    return Schema(specs)


def log_input(dataset: Dataset, context: str) -> bool:
    """`mlflow.log_input` where the tracking server has the datasets API; where it does not (Azure ML's
    support matrix, https://learn.microsoft.com/azure/machine-learning/how-to-track-experiments-mlflow, has no
    datasets), the dataset's name, digest and source go to run tags, which every server keeps. True when the
    dataset was logged as an MLflow input."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.log_input(dataset, context=context)
        return True
    except MlflowException as exc:
        if not unsupported_by_server(exc):
            raise
        logging.getLogger(__name__).info(
            "tracking server has no datasets API (%s); dataset kept as run tags", str(exc).splitlines()[0]
        )
    source = json.dumps(dataset.source.to_dict(), sort_keys=True, default=str)
    mlflow.set_tags(
        {
            "dataset.name": dataset.name,
            "dataset.digest": dataset.digest,
            "dataset.context": context,
            "dataset.source_type": dataset.source._get_source_type(),
            "dataset.source": source[:_MAX_TAG_VALUE],
        }
    )
    return False


# --- what the MLflow UI shows ------------------------------------------------------------------------------
# The UI lists runs by name and shows a run's description from this tag (mlflow/utils/mlflow_tags.py:
# MLFLOW_RUN_NOTE = "mlflow.note.content"); the model-version page shows `description`.
RUN_NOTE_TAG = "mlflow.note.content"


def run_name(step: str, model: str | None = None, version: str | None = None, pipeline_run: str = "") -> str:
    """A run name people can scan in the UI: `train demand-forecaster (20261130-064547-622402)`,
    `score demand-forecaster v3 (…)`; MLflow's own default is two random words."""
    name = step
    if model:
        name += f" {model}" + (f" v{version}" if version else "")
    run = pipeline_run.split("_", 1)[0]  # AZUREML_RUN_ID is <pipeline run>_<step> under the local runner
    return f"{name} ({run})" if run else name


def run_note(title: str, facts: dict[str, object]) -> str:
    """A run's description (Markdown, rendered by the UI): a title line, then one `- key: value` per fact."""
    lines = [title, ""] + [f"- **{k}**: {v}" for k, v in facts.items() if v not in (None, "")]
    return "\n".join(lines)


def event_note(event: dict[str, object]) -> str:
    """One line for a promotion or rollback event, for a model-version description or a readable tag beside
    the raw `event.*` JSON: `2026-11-30 06:46 UTC: v2 promoted to champion (was v1) by pipeline:… — reason`."""
    when = str(event.get("time") or "")[:16].replace("T", " ")
    action = {"promote": "promoted to champion", "rollback": "restored as champion (rollback)"}.get(
        str(event.get("action")), str(event.get("action"))
    )
    was = f" (was v{event['previous']})" if event.get("previous") else ""
    by = f" by {event['actor']}" if event.get("actor") else ""
    reason = f": {event['reason']}" if event.get("reason") else ""
    return f"{when} UTC: v{event.get('version')} {action}{was}{by}{reason}".strip()


def log_scoring_run(
    settings: Settings,
    experiment: str,
    *,
    model: str,
    version: str,
    data: str,
    predictions: str,
    rows: int,
    files: int,
    pipeline_run: str,
) -> str:
    """A run for a local scoring job in its experiment, as Azure ML makes one for every job: named after the
    model version, tagged with it and linked to the pipeline run. Returns the run id."""
    experiment_id = ensure_experiment(settings, experiment)  # first: it prepares the MLflow import
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)
    tags = {
        "amlops.step": "score",
        "model.name": model,
        "model.version": str(version),
        "pipeline.run_id": pipeline_run,
        RUN_NOTE_TAG: run_note(
            f"Batch scoring with {model} v{version}",
            {"input": data, "predictions": predictions, "rows": f"{rows:,}", "files": files},
        ),
    }
    run = client.create_run(
        experiment_id, run_name=run_name("score", model, version, pipeline_run), tags=tags
    )
    client.log_metric(run.info.run_id, "rows", float(rows))
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def pipeline_experiment(pipeline: Path, default: str) -> str:
    """The `experiment_name` of a pipeline YAML (where Azure ML files its jobs), else `default`."""
    import yaml

    try:
        data = yaml.safe_load(pipeline.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return default
    name = data.get("experiment_name") if isinstance(data, dict) else None
    return str(name) if name else default


def start_run_args(name: str, note: str = "") -> dict[str, object]:
    """Arguments for `mlflow.start_run` in a step: a readable name and description locally. Inside an Azure ML job
    (`MLFLOW_RUN_ID` set: the job's own run is resumed) Azure ML has named the run after the job, and renaming
    it would hide the job's name in the studio, so only the description is added there."""
    args: dict[str, object] = {"description": note} if note else {}
    if not os.environ.get("MLFLOW_RUN_ID"):
        args["run_name"] = name
    return args
