"""MLflow on a local store without the costs that only a remote one needs: the Azure ML plugin's import and a
new SQLite store's schema migrations.

Plugins. `import mlflow` registers every installed store plugin and loads it on the spot
(mlflow/tracking/registry.py, `StoreRegistry.register_entrypoints`: `entrypoint.load()` for each entry point of
the group; the same in the artifact-repository and request-header registries). azureml-mlflow's loaders import
azure-storage-blob, aiohttp, msrest and azure-identity: about 1.1 s of CPU in every process that imports MLflow,
paid by each pipeline step. They serve `azureml://` URIs only (its entry_points.txt: the `azureml` scheme of
`mlflow.tracking_store`, `mlflow.model_registry_store`, `mlflow.artifact_repository`, plus a request-header
provider for its HTTP calls). When the tracking and registry URIs are local (sqlite, file, a path), nothing in
the process can reach them, so `skip_azureml_plugins` hides those entry points from MLflow's registries before
MLflow is imported. A process whose URI is `azureml://` (an Azure ML job) keeps them: the check reads the URIs.

New SQLite stores. A new database runs MLflow's whole alembic history (~100 migrations, seconds of CPU) the first
time a store opens it. `seed_sqlite` copies a database that MLflow itself migrated once (kept per MLflow version
in the user's cache folder) into place instead; MLflow then finds every table at the head revision
(`_all_tables_exist`, `_verify_schema` in mlflow/store/db/utils.py) and adds its default experiment, as it does
for any existing store. The template holds the schema only, never an experiment or a run.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_PLUGIN_PREFIX = "azureml."
_LOCAL_SCHEMES = ("sqlite:", "file:", "mysql", "postgresql", "mssql")
_original_entry_points: Callable[..., Any] | None = None


def is_local(uri: str | None) -> bool:
    """A store this process reaches without a remote MLflow plugin: SQLAlchemy URIs, `file:` and paths."""
    if not uri:
        return True  # MLflow's default: ./mlruns
    return uri.startswith(_LOCAL_SCHEMES) or "://" not in uri


def _filtered_entry_points(**params: Any) -> Any:
    assert _original_entry_points is not None
    found = _original_entry_points(**params)
    group = str(params.get("group") or "")
    if not group.startswith("mlflow."):
        return found
    return importlib.metadata.EntryPoints(ep for ep in found if not ep.value.startswith(_PLUGIN_PREFIX))


def skip_azureml_plugins(*uris: str | None) -> bool:
    """Before the process imports MLflow: hide azureml-mlflow's entry points from MLflow's plugin registries when
    every URI given (tracking, registry; default: the MLFLOW_* variables) is local. True when they are hidden.
    Only `mlflow.*` groups are filtered; other packages' entry points are untouched."""
    global _original_entry_points
    if os.environ.get("AMLOPS_MLFLOW_PLUGINS") == "all":
        return False
    if not uris:
        uris = (os.environ.get("MLFLOW_TRACKING_URI"), os.environ.get("MLFLOW_REGISTRY_URI"))
    if not all(is_local(u) for u in uris):
        return False
    if _original_entry_points is None:
        _original_entry_points = importlib.metadata.entry_points
        importlib.metadata.entry_points = _filtered_entry_points  # type: ignore[assignment]
    return True


# ------------------------------------------------------------------------------------------ SQLite template
def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "amlops"


def _template_path() -> Path:
    version = importlib.metadata.version("mlflow-skinny")
    return _cache_root() / f"mlflow-{version}-empty.db"


def _head_matches(db: Path) -> bool:
    """The template was completed (its alembic row written last by the migration run)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0])


def _build_template(path: Path) -> None:
    """MLflow's own migrations on a fresh file (mlflow.store.db.utils: create_sqlalchemy_engine_with_retry,
    _initialize_tables — what SqlAlchemyStore runs on an empty database), then renamed into place."""
    import logging

    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine_with_retry

    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):  # a notice per migration
        logging.getLogger(name).setLevel(logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".mlflow-template-", suffix=".db", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        engine = create_sqlalchemy_engine_with_retry(f"sqlite:///{tmp}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def seed_sqlite(uri: str) -> bool:
    """Give a not-yet-existing local SQLite store its migrated schema by copying the template (built once per MLflow
    version). True when the file was seeded; False when it existed already, is not SQLite, or anything failed
    (MLflow then creates it the usual way)."""
    if not uri.startswith("sqlite:///") or os.environ.get("AMLOPS_MLFLOW_TEMPLATE") == "0":
        return False
    db = Path(uri[len("sqlite:///") :].split("?", 1)[0])  # SQLAlchemy's ?timeout=... is not part of the file
    if db.exists():
        return False
    try:
        template = _template_path()
        if not (template.is_file() and _head_matches(template)):
            _build_template(template)
        db.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{db.name}.", dir=db.parent)
        os.close(fd)
        try:
            shutil.copyfile(template, tmp)
            os.link(tmp, db)  # fails if another process created the store meanwhile: theirs stands
        finally:
            os.unlink(tmp)
    except Exception:  # an optimisation only: MLflow builds the store itself
        return False
    return True


# ------------------------------------------------------------------------------ a finished run, written directly
# A monitor step logs one finished run: tags, a few hundred metrics and two files. Through MLflow that costs
# about 2.5 s of CPU in a fresh step process (importing mlflow, ~1.6 s: its __init__ loads the genai, tracing
# and data packages; opening a SqlAlchemyStore, ~0.9 s: SQLAlchemy's ORM models and alembic) for ~20 ms of
# writing. On a local SQLite store whose schema is one we know, `log_run_sqlite` writes the same rows MLflow
# would in one transaction instead; anything it does not recognise returns None and the caller logs through
# MLflow as before. tests/drift/test_monitor_mlflow.py checks the record against MLflow's own, read back
# through MlflowClient, and fails when the installed MLflow's schema head is not in KNOWN_SCHEMAS.

# Alembic heads whose runs/tags/metrics/latest_metrics tables are the ones written below (MLflow 3.17:
# mlflow/store/db_migrations/versions; the columns are SqlRun, SqlTag, SqlMetric and SqlLatestMetric in
# mlflow/store/tracking/dbmodels/models.py).
KNOWN_SCHEMAS = frozenset({"6f8d9c3b2a1e"})
_MAX_KEY = 250  # mlflow/utils/validation.py: MAX_ENTITY_KEY_LENGTH
_MAX_TAG_VALUE = 8000  # mlflow/utils/validation.py: MAX_TAG_VAL_LENGTH


def direct_possible(uri: str | None) -> bool:
    """Whether `log_run_sqlite` may apply (a cheap check, no database read): an existing local SQLite store, no
    run to resume (MLFLOW_RUN_ID), not switched off with AMLOPS_MLFLOW_DIRECT=0."""
    if not uri or not uri.startswith("sqlite:///") or os.environ.get("AMLOPS_MLFLOW_DIRECT") == "0":
        return False
    if os.environ.get("MLFLOW_RUN_ID") or os.environ.get("MLFLOW_WORKSPACE"):
        return False
    return _sqlite_file(uri).is_file()


def direct_ready(uri: str | None, experiment: str) -> bool:
    """`direct_possible` and the store's schema is known and holds the experiment, read without a lock: the step
    then needs no MLflow at all (its warm-up is skipped). `log_run_sqlite` checks again under its lock."""
    if not direct_possible(uri):
        return False
    assert uri is not None
    try:
        with sqlite3.connect(f"file:{_sqlite_file(uri)}?mode=ro", uri=True, timeout=5) as conn:
            head = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            found = conn.execute(_EXPERIMENT_SQL, (experiment,)).fetchone()
    except sqlite3.Error:
        return False
    return bool(head and head[0] in KNOWN_SCHEMAS and found and _local_artifact_dir(found[1] or ""))


_EXPERIMENT_SQL = (
    "SELECT experiment_id, artifact_location FROM experiments "
    "WHERE name = ? AND lifecycle_stage = 'active' AND workspace = 'default'"
)


def _sqlite_file(uri: str) -> Path:
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def context_tags(note: str = "") -> dict[str, str]:
    """The tags `mlflow.start_run` adds from its default context providers (mlflow/tracking/context/:
    default_context.py user, source name and type; git_context.py the main file's repository;
    system_environment_context.py the MLFLOW_RUN_CONTEXT JSON), plus the description as `mlflow.note.content`."""
    import getpass
    import json
    import sys

    main = sys.argv[0] if sys.argv and sys.argv[0] else ""
    try:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()
    except Exception:  # getpass fails without a passwd entry; MLflow then says "unknown"
        user = "unknown"
    tags = {
        "mlflow.user": user,
        "mlflow.source.name": main or "<console>",
        "mlflow.source.type": "LOCAL",
    }
    if main:
        tags.update(_git_tags(main))
    if os.environ.get("MLFLOW_RUN_CONTEXT"):
        tags.update({str(k): str(v) for k, v in json.loads(os.environ["MLFLOW_RUN_CONTEXT"]).items()})
    if note:
        tags["mlflow.note.content"] = note
    return tags


def _git_tags(main_file: str) -> dict[str, str]:
    """mlflow.utils.git_utils with git itself instead of GitPython: the commit, the branch (none when detached)
    and the first remote's URL without credentials, of the repository holding the main file; nothing when the
    file's folder is git-ignored (get_git_commit's `repo.ignored` check)."""
    import subprocess
    from urllib.parse import urlsplit, urlunsplit

    # As git_utils: a file's folder, else the name itself (`-c` under `python -c`: no repository, no tags).
    folder = os.path.dirname(os.path.abspath(main_file)) if os.path.isfile(main_file) else main_file
    if not os.path.isdir(folder):
        return {}

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", folder, *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    head = git("rev-parse", "HEAD", "--abbrev-ref", "HEAD")
    if not head or git("check-ignore", "-q", folder) is not None:  # GitRunContext: no commit, no git tags
        return {}
    lines = head.splitlines()
    tags = {"mlflow.source.git.commit": lines[0]}
    if len(lines) > 1 and lines[1] != "HEAD":
        tags["mlflow.source.git.branch"] = lines[1]
    remotes = git("config", "--get-regexp", r"^remote\..*\.url$")
    if remotes:
        url = remotes.splitlines()[0].split(" ", 1)[-1]
        parts = urlsplit(url)
        if parts.scheme and "@" in parts.netloc:
            url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], *parts[2:]))
        tags["mlflow.source.git.repoURL"] = url
    return tags


def _local_artifact_dir(location: str) -> Path | None:
    """The folder of a `file:` or plain-path artifact location; None for a remote one (wasbs://, s3://, ...)."""
    from urllib.parse import unquote, urlsplit

    if location.startswith("file:"):
        parts = urlsplit(location)
        return Path(unquote(parts.path)) if parts.netloc in ("", "localhost") else None
    return Path(location) if "://" not in location else None


def log_run_sqlite(
    uri: str,
    experiment: str,
    run_name: str,
    tags: dict[str, str],
    metrics: list[tuple[str, float, int]],
    artifacts: dict[str, list[Path]],
) -> str | None:
    """Log a finished run into the local SQLite store at `uri` as MLflow's SqlAlchemyStore would (create_run,
    log_batch, log_artifact, set_terminated) and return its run id; None, with nothing written, when the store
    or the record is not one this handles (the caller then logs through MLflow). `tags` are the run's tags
    beside mlflow.runName; `metrics` (key, value, step) share one timestamp; `artifacts` maps an artifact path
    to the files copied there."""
    import math
    import time
    import uuid

    if not direct_possible(uri) or not run_name:
        return None
    every_tag = {**tags, "mlflow.runName": run_name}
    if any(len(k) > _MAX_KEY or len(v) > _MAX_TAG_VALUE for k, v in every_tag.items()):
        return None
    if any(len(k) > _MAX_KEY or not math.isfinite(v) for k, v, _ in metrics):
        return None
    try:
        conn = sqlite3.connect(_sqlite_file(uri), timeout=30, isolation_level=None)
    except sqlite3.Error:
        return None
    copied: Path | None = None
    try:
        conn.execute("BEGIN IMMEDIATE")  # the write lock now: no other writer between our read and insert
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        found = conn.execute(_EXPERIMENT_SQL, (experiment,)).fetchone()
        folder = _local_artifact_dir(found[1]) if found and found[1] else None
        if not head or head[0] not in KNOWN_SCHEMAS or folder is None:
            conn.execute("ROLLBACK")
            return None
        run_id = uuid.uuid4().hex
        now = int(time.time() * 1000)
        copied = folder / run_id
        for artifact_path, files in artifacts.items():
            target = copied / "artifacts" / artifact_path
            target.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copy2(f, target / f.name)  # LocalArtifactRepository.log_artifact: shutil.copy2
        _insert_run(conn, run_id, found, run_name, every_tag, metrics, now)
        conn.execute("COMMIT")
        copied = None
        return run_id
    except (sqlite3.Error, OSError):
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return None
    finally:
        conn.close()
        if copied is not None:
            shutil.rmtree(copied, ignore_errors=True)


def _insert_run(
    conn: sqlite3.Connection,
    run_id: str,
    experiment: tuple[int, str],
    run_name: str,
    tags: dict[str, str],
    metrics: list[tuple[str, float, int]],
    now: int,
) -> None:
    experiment_id, location = experiment
    artifact_uri = location.rstrip("/") + f"/{run_id}/artifacts"  # mlflow.utils.uri.append_to_uri_path
    conn.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
        "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id, deleted_time) "
        "VALUES (?, ?, 'UNKNOWN', '', '', ?, 'FINISHED', ?, ?, '', 'active', ?, ?, NULL)",
        (run_id, run_name, tags.get("mlflow.user", "unknown"), now, now, artifact_uri, experiment_id),
    )
    conn.executemany(
        "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", [(k, v, run_id) for k, v in tags.items()]
    )
    rows = sorted({(k, float(v), int(s)) for k, v, s in metrics})  # MLflow drops exact duplicates too
    conn.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
        [(k, v, now, run_id, s) for k, v, s in rows],
    )
    latest: dict[str, tuple[int, float]] = {}
    for k, v, s in rows:  # _update_latest_metrics_if_necessary: the largest (step, timestamp, value)
        if k not in latest or (s, v) > latest[k]:
            latest[k] = (s, v)
    conn.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
        [(k, v, now, s, run_id) for k, (s, v) in latest.items()],
    )
