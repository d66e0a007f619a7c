"""URL-addressed storage through fsspec: local paths, and `abfs://` / `az://` on Azure Blob (adlfs) or Azurite.

Credentials, in order: `AZURE_STORAGE_CONNECTION_STRING` (Azurite, dev), else `DefaultAzureCredential` for the
account named in the URL (`abfs://container@account.dfs.core.windows.net/path`) or in `AZURE_STORAGE_ACCOUNT_NAME`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

BLOB_SCHEMES = {"abfs", "abfss", "az", "wasb", "wasbs"}


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def storage_options(url: str) -> dict[str, Any]:
    scheme = urlparse(url).scheme
    if scheme not in BLOB_SCHEMES:
        return {}
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        return {"connection_string": conn}
    host = urlparse(url).netloc
    account = (
        host.split("@", 1)[1].split(".", 1)[0]
        if "@" in host
        else os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
    )
    if not account:
        raise ValueError(
            f"{url}: no storage account: use abfs://<container>@<account>.dfs.core.windows.net/<path> "
            "or set AZURE_STORAGE_ACCOUNT_NAME (or AZURE_STORAGE_CONNECTION_STRING)"
        )
    return {"account_name": account, "anon": False}


def _normalize(url: str) -> str:
    """adlfs wants abfs://container/path; the account in `container@account.host` goes to storage options."""
    parsed = urlparse(url)
    if parsed.scheme in BLOB_SCHEMES and "@" in parsed.netloc:
        container = parsed.netloc.split("@", 1)[0]
        return f"abfs://{container}{parsed.path}"
    if parsed.scheme in {"az", "abfss", "wasb", "wasbs"}:
        return f"abfs://{parsed.netloc}{parsed.path}"
    return url


def filesystem(location: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a local path or URL."""
    import fsspec

    if not is_url(location):
        path = location[len("file://") :] if location.startswith("file://") else location
        return fsspec.filesystem("file"), str(Path(path).resolve())
    fs, path = fsspec.core.url_to_fs(_normalize(location), **storage_options(location))
    return fs, path


def exists(location: str) -> bool:
    fs, path = filesystem(location)
    return bool(fs.exists(path))


def download(location: str, dest: Path) -> Path:
    """Copy a file or folder at `location` to `dest` (a folder is copied into dest, keeping relative paths)."""
    fs, path = filesystem(location)
    if not fs.exists(path):
        raise FileNotFoundError(f"{location}: not found")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fs.isdir(path):
        dest.mkdir(parents=True, exist_ok=True)
        for remote in fs.find(path):
            rel = remote[len(path.rstrip("/")) + 1 :]
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(target))
        return dest
    fs.get_file(path, str(dest))
    return dest


def upload(source: Path, location: str) -> None:
    """Copy a local file or folder to `location` (folder contents land under it)."""
    fs, path = filesystem(location)
    if source.is_dir():
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            remote = f"{path.rstrip('/')}/{file.relative_to(source).as_posix()}"
            parent = remote.rsplit("/", 1)[0]
            fs.makedirs(parent, exist_ok=True)
            fs.put_file(str(file), remote)
    else:
        parent = path.rsplit("/", 1)[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        fs.put_file(str(source), path)


def open_file(location: str, mode: str = "rb") -> Any:
    fs, path = filesystem(location)
    return fs.open(path, mode)
