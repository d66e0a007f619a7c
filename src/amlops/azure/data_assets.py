"""Register a local data snapshot as a versioned AML data asset (`uri_folder` or `mltable`).

The version is derived from the snapshot's content digest, so registering the same snapshot twice is a no-op
(one GET, no upload) and a changed snapshot can never overwrite an existing version. The digest is also a tag
(`data.digest`), the same lineage key the models carry, so a model's training data is one lookup away.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from amlops import console
from amlops.azure import client as azclient
from amlops.azure.errors import azure_errors
from amlops.console import UserError

if TYPE_CHECKING:
    from amlops.config import Settings

Kind = Literal["uri_folder", "mltable"]
DIGEST_TAG = "data.digest"
# Caches and editor droppings say nothing about the content; leaving them out keeps digests stable.
_IGNORED = {"__pycache__", ".DS_Store", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def snapshot_digest(path: Path) -> str:
    """`sha256:<hex>` over every file's relative path and bytes, in sorted order (stable across machines)."""
    outer = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.name if file == path else file.relative_to(path).as_posix()
        parts = Path(rel).parts
        if any(part in _IGNORED or part.endswith((".egg-info", ".pyc")) for part in parts):
            continue
        inner = hashlib.sha256()
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                inner.update(block)
        outer.update(rel.encode("utf-8") + b"\0" + inner.hexdigest().encode("ascii") + b"\n")
    return "sha256:" + outer.hexdigest()


def version_for(digest: str) -> str:
    """The asset version for a digest: its first 12 hex digits (2^48 values; a clash is caught, not
    trusted)."""
    return digest.split(":", 1)[-1][:12]


def register_snapshot(
    path: str | Path,
    name: str,
    settings: Settings,
    env: str | None = None,
    version: str | None = None,
    kind: Kind = "uri_folder",
) -> str:
    """Upload `path` and register it as data asset `name`; returns `azureml:<name>:<version>`."""
    from azure.ai.ml.entities import Data
    from azure.core.exceptions import ResourceNotFoundError

    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise UserError(f"{path}: not a folder (a data snapshot is a folder of files)")
    if kind not in ("uri_folder", "mltable"):
        raise UserError(f"kind {kind!r}: expected uri_folder or mltable")
    if kind == "mltable" and not (folder / "MLTable").is_file():
        raise UserError(f"{folder}: no MLTable file; add one or register it as uri_folder")
    if not _NAME.match(name):
        raise UserError(f"data asset name {name!r}: use letters, digits, '-', '_' or '.'")
    if not any(p.is_file() for p in folder.rglob("*")):
        raise UserError(f"{folder}: the folder is empty")

    digest = snapshot_digest(folder)
    version = version or version_for(digest)
    asset_id = f"azureml:{name}:{version}"
    az = azclient.target(settings, env)
    with azure_errors(az, env):
        ml = azclient.ml_client(settings, env)
        try:
            existing = ml.data.get(name=name, version=version)
        except ResourceNotFoundError:
            existing = None
        if existing is not None:
            found = (existing.tags or {}).get(DIGEST_TAG)
            if found != digest:
                raise UserError(
                    f"data asset {name}:{version} already exists with different content "
                    f"({DIGEST_TAG} {found or 'missing'}, this snapshot {digest}); choose another --version"
                )
            console.info(f"data asset {asset_id} is already registered (same digest); nothing uploaded")
            return asset_id
        console.info(f"uploading {folder} to workspace {az.workspace} as data asset {asset_id}")
        data = Data(
            name=name,
            version=version,
            type=kind,
            path=str(folder),
            description=f"amlops snapshot of {folder.name}",
            tags={DIGEST_TAG: digest, "data.source": folder.name},
        )
        created = ml.data.create_or_update(data)
    console.info(f"registered {asset_id} at {created.path}")
    return asset_id
