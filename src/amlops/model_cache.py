"""Downloaded models: one cache for every caller (scoring, the loop's champion, the local runner's `models:/`
inputs, the reference profile).

Keyed by what identifies the artifact, not by its name: the registry URI, the model name and version, and the
version's run id, source URI and creation time. A registry that was reset or switched (a new SQLite database,
the same name and version, another model) gives another key, so a stale folder is never served for it.

Verified on every hit: after a complete download a manifest (`.amlops-cache.json`) is written last, listing each
file with its size and the sha256 of `MLmodel`; an entry without one (a download that died), or whose files no
longer match it (truncated, deleted, another MLmodel), is downloaded again.

Atomic: a download goes to a temporary folder beside the entry and is renamed into place; two processes fetching
the same model both end with the same complete entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amlops.config import Settings

MANIFEST = ".amlops-cache.json"
MLMODEL = "MLmodel"
_FORMAT = 1


class ModelCacheError(ValueError):
    """A model that cannot be fetched (unknown version, no MLmodel, download failure); one line."""


def cache_dir(settings: Settings) -> Path:
    return settings.state_path / "models"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _key(identity: dict[str, str]) -> str:
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _files(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _manifest(folder: Path, identity: dict[str, str]) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "identity": identity,
        "mlmodel": _digest(folder / MLMODEL),
        "files": _files(folder),
    }


def is_complete(folder: Path, identity: dict[str, str] | None = None) -> bool:
    """The entry has its manifest, every listed file at its size, and the MLmodel it was downloaded with."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format") != _FORMAT or (
            identity is not None and manifest.get("identity") != identity
        ):
            return False
        files: dict[str, int] = manifest["files"]
        for name, size in files.items():
            if (folder / name).stat().st_size != size:
                return False
        return bool(_digest(folder / MLMODEL) == manifest["mlmodel"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _model_root(folder: Path) -> Path | None:
    """The folder holding MLmodel in what a download wrote (it may nest under the artifact's name)."""
    found = sorted(folder.rglob(MLMODEL), key=lambda p: len(p.parts))
    return found[0].parent if found else None


def _discard(path: Path) -> None:
    """Remove a folder by first renaming it out of the way, so no reader sees it half-deleted."""
    if not path.exists():
        return
    aside = path.with_name(f".{path.name}.stale-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        path.rename(aside)
    except OSError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def fetch(
    source: str,
    identity: dict[str, str],
    folder: Path,
    *,
    label: str,
    tracking_uri: str | None,
    what: str = "",
) -> Path:
    """The complete local copy of the MLflow model at `source`, cached under `folder` by `identity`."""
    import mlflow

    what = what or label
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per file is noise here
    dest = folder / f"{label}-{_key(identity)}"
    if is_complete(dest, identity):
        return dest
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=folder))
    try:
        try:
            got = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(tmp), tracking_uri=tracking_uri
            )
        except mlflow.exceptions.MlflowException as exc:
            raise ModelCacheError(f"{what}: cannot download {source} ({str(exc).splitlines()[0]})") from None
        except OSError as exc:
            raise ModelCacheError(f"{what}: cannot download {source} ({exc})") from None
        root = _model_root(Path(got)) or _model_root(tmp)
        if root is None:
            raise ModelCacheError(f"{what}: no {MLMODEL} file at {source}")
        # Written last: its presence says the download completed.
        (root / MANIFEST).write_text(json.dumps(_manifest(root, identity), indent=1) + "\n", encoding="utf-8")
        if dest.exists():
            if is_complete(dest, identity):  # another process finished first: keep theirs
                return dest
            _discard(dest)  # truncated or from an interrupted download of an older release
        try:
            root.rename(dest)
        except OSError:
            if not is_complete(dest, identity):  # lost a rename race to an incomplete entry: say so
                raise ModelCacheError(f"{what}: cannot place the download at {dest}") from None
        return dest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _registry_uri(client: Any) -> str:
    return str(getattr(client, "_registry_uri", "") or "")


def registered_model(settings: Settings, name: str, version: str, client: Any = None) -> Path:
    """The model folder of `name` v`version` in the configured registry, cached under the state folder."""
    from amlops import registry

    client = client if client is not None else registry.client_for(settings)
    return registered_model_at(client, name, version, cache_dir(settings), settings.tracking_uri)


def registered_model_at(client: Any, name: str, version: str, cache: Path, tracking_uri: str | None) -> Path:
    from amlops import registry

    try:
        mv = registry.get_version(client, name, version)
        source = client.get_model_version_download_uri(name, str(version))
    except registry.RegistryError as exc:
        raise ModelCacheError(str(exc)) from None
    identity = {
        "registry": _registry_uri(client),
        "name": name,
        "version": str(version),
        "run_id": str(mv.run_id or ""),
        "source": str(mv.source or ""),
        "created": str(mv.creation_timestamp or ""),
    }
    return fetch(
        source,
        identity,
        cache / name,
        label=str(version),
        tracking_uri=tracking_uri,
        what=f"model {name} v{version}",
    )


def model_for_uri(settings: Settings, uri: str, client: Any = None) -> Path:
    """The local model folder for `models:/name/version`, `models:/name@role` (resolved through the role
    tags where the registry has no aliases), `runs:/<run id>/<path>`, or a local folder (returned as is)."""
    from amlops import registry

    client = client if client is not None else registry.client_for(settings)
    return model_for_uri_at(client, uri, cache_dir(settings), settings.tracking_uri)


def model_for_uri_at(client: Any, uri: str, cache: Path, tracking_uri: str | None) -> Path:
    from amlops import registry

    if uri.startswith("models:/"):
        rest = uri[len("models:/") :]
        if "@" in rest:
            name, role = rest.split("@", 1)
            found = registry.resolve_role(client, name, role)
            if found is None:
                raise ModelCacheError(f"model {name!r} has no {role}")
            return registered_model_at(client, name, found[0], cache, tracking_uri)
        if "/" in rest:
            name, version = rest.rsplit("/", 1)
            return registered_model_at(client, name, version, cache, tracking_uri)
        raise ModelCacheError(f"{uri}: expected models:/<name>/<version> or models:/<name>@<role>")
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].partition("/")
        identity = {"tracking": str(tracking_uri or ""), "run_id": run_id, "path": path}
        return fetch(uri, identity, cache / "runs", label=run_id[:12], tracking_uri=tracking_uri)
    local = Path(uri.removeprefix("file://"))
    if not (local / MLMODEL).is_file():
        raise ModelCacheError(f"{uri}: not an MLflow model folder (no {MLMODEL})")
    return local
