"""A local asset registry, so `azureml:<name>:<version>` and `azureml:<name>@latest` in pipeline YAML resolve on
this machine as they do in a workspace.

`amlops data register --target local` copies a folder into `<state_dir>/assets/data/<name>/<version>/` (data asset
versions are immutable in Azure ML: Microsoft Learn "Create data assets", how-to-create-data-assets); `amlops
components publish --target local` records each component file under `<state_dir>/assets/components/<name>/
<version>.json`. The reference forms are those of reference-yaml-job-pipeline / reference-yaml-data:
`azureml:<name>:<version>` and `azureml:<name>@latest` (azure-ai-ml's `load_job` strips the `azureml:` prefix from
input paths, so `<name>:<version>` is accepted too). `latest` is the version registered last.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from amlops.errors import UserError

_REF = re.compile(r"^(?:azureml:)?(?P<name>[\w.-]+)(?::(?P<version>[\w.-]+)|@(?P<label>[\w.-]+))$")


def registry_root(settings: Any) -> Path:
    return Path(settings.state_path) / "assets"


def parse_ref(ref: str) -> tuple[str, str | None] | None:
    """(name, version) of an asset reference, version None for @latest; None when `ref` is not one."""
    match = _REF.match(ref)
    if match is None:
        return None
    if match.group("label") not in (None, "latest"):
        raise UserError(
            f"azureml:{match.group('name')}@{match.group('label')}: only the @latest label exists"
        )
    return match.group("name"), match.group("version")


def _versions(folder: Path) -> list[tuple[float, str]]:
    """(registration time, version), oldest first."""
    found = []
    for meta in folder.glob("*.json"):
        data = json.loads(meta.read_text(encoding="utf-8"))
        found.append((float(data.get("created", 0)), str(data["version"])))
    return sorted(found)


def register_data(
    settings: Any, source: Path, name: str, version: str, kind: str = "uri_folder"
) -> tuple[str, bool]:
    """Copy `source` in as data asset `name:version`; (reference, created). An existing version with other
    content is refused, as Azure ML refuses to change a registered version."""
    folder = registry_root(settings) / "data" / name
    meta = folder / f"{version}.json"
    target = folder / version
    if meta.is_file():
        return f"azureml:{name}:{version}", False
    folder.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        target.mkdir(parents=True)
        shutil.copy2(source, target / source.name)
    record = {"name": name, "version": version, "type": kind, "source": str(source), "created": time.time()}
    meta.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return f"azureml:{name}:{version}", True


def _record(settings: Any, kind: str, ref: str) -> tuple[Path, dict[str, Any]] | None:
    """(record file, record) of `azureml:<name>:<version>` or `@latest` in the local registry's `kind` folder."""
    parsed = parse_ref(ref)
    if parsed is None:
        return None
    name, version = parsed
    folder = registry_root(settings) / kind / name
    if version is None:
        versions = _versions(folder) if folder.is_dir() else []
        if not versions:
            return None
        version = versions[-1][1]
    meta = folder / f"{version}.json"
    if not meta.is_file():
        return None
    return meta, json.loads(meta.read_text(encoding="utf-8"))


def resolve_data(settings: Any, ref: str) -> tuple[Path, str] | None:
    """(local folder, type) of a registered data asset, or None when the local registry lacks it."""
    found = _record(settings, "data", ref)
    if found is None:
        return None
    meta, data = found
    path = meta.with_suffix("")  # the version's folder beside its record
    if data.get("type") == "uri_file":
        files = [p for p in path.iterdir() if p.is_file()]
        path = files[0] if len(files) == 1 else path
    return path, str(data.get("type", "uri_folder"))


def publish_component(settings: Any, path: Path, name: str, version: str) -> bool:
    """Record component file `path` as `name:version`; False when that version is already there."""
    folder = registry_root(settings) / "components" / name
    meta = folder / f"{version}.json"
    if meta.is_file():
        return False
    folder.mkdir(parents=True, exist_ok=True)
    record = {"name": name, "version": version, "path": str(path.resolve()), "created": time.time()}
    meta.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return True


def resolve_component(settings: Any, ref: str) -> Path | None:
    """The component file a registered reference names, or None when the local registry lacks it."""
    found = _record(settings, "components", ref)
    if found is None:
        return None
    meta, record = found
    path = Path(record["path"])
    if not path.is_file():
        raise UserError(
            f"azureml:{meta.parent.name}:{meta.stem} was published from {path}, which no longer exists; publish "
            "again"
        )
    return path


def resolve_plan_assets(settings: Any, plan: Any) -> None:
    """Replace each `azureml:<name>:<version>` data input of `plan` with its local copy; refuse, before any step
    runs, one the local registry lacks."""
    from amlops.runner.plan import PathValue

    for step in plan.steps:
        for key, value in list(step.inputs.items()):
            if not isinstance(value, PathValue) or not value.path.startswith("azureml:"):
                continue
            if value.path.startswith("azureml://"):
                continue
            found = resolve_data(settings, value.path)
            if found is None:
                name = (parse_ref(value.path) or (value.path, None))[0]
                raise UserError(
                    f"{plan.source.name}: job {step.name!r} input {key!r}: {value.path!r} is an Azure ML asset that "
                    f"the local asset registry lacks; register a folder as it (amlops data register <folder> "
                    f"--name {name} --target local), pass a local path with --set, or run with --target azure"
                )
            path, kind = found
            step.inputs[key] = PathValue(str(path), value.type or kind)
