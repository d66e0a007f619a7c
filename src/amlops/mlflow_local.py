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
