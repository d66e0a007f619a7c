"""Publish every `components/*.yml` to the workspace (or an AML registry) with a content-derived version.

The version is `<YAML version>.<12 hex of the content hash>`, where the content is the YAML text, the code
folder it ships and its environment. Publishing unchanged components sends no create, and a change to any
of the three gives a new version instead of silently replacing what pipelines and studio users already use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops import console
from amlops.azure import client as azclient
from amlops.azure.data_assets import snapshot_digest
from amlops.azure.errors import azure_errors
from amlops.console import UserError

if TYPE_CHECKING:
    from amlops.config import Settings


@dataclass(frozen=True)
class PublishedComponent:
    name: str
    version: str
    created: bool  # False: that exact version was already there
    source: Path


def component_files(settings: Settings) -> list[Path]:
    folder = settings.path("components")
    files = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
    if not files:
        raise UserError(f"{folder}: no component YAML files")
    return files


def _environment_identity(environment: Any) -> str:
    """An environment reference as text; an inline/file environment by the SDK's content hash (its
    version)."""
    if environment is None:
        return ""
    if isinstance(environment, str):
        return environment
    if getattr(environment, "_is_anonymous", False) or getattr(environment, "is_anonymous", False):
        return f"anonymous:{environment.version}"
    return f"{environment.name}:{environment.version}"


def content_version(path: Path, component: Any) -> str:
    """`<yaml version>.<hash>` over the YAML bytes, the code folder's files and the environment identity."""
    digest = hashlib.sha256(path.read_bytes())
    code = getattr(component, "code", None)
    if isinstance(code, str) and not code.startswith(("azureml:", "http://", "https://")):
        code_path = (path.parent / code).resolve()
        if code_path.exists():
            digest.update(snapshot_digest(code_path).encode())
    digest.update(_environment_identity(getattr(component, "environment", None)).encode())
    base = str(component.version or "1")
    return f"{base}.{digest.hexdigest()[:12]}"


def publish_components(
    settings: Settings, env: str | None = None, registry: str | None = None
) -> list[PublishedComponent]:
    """Register each component that is not there yet at its content version; returns what was done."""
    from azure.ai.ml import load_component
    from azure.core.exceptions import ResourceNotFoundError

    az = azclient.target(settings, env)
    loaded = []
    for path in component_files(settings):
        try:
            component = load_component(path)
        except Exception as exc:  # the SDK raises several types for bad YAML; all mean "fix the file"
            raise UserError(f"{path}: not a valid component: {' '.join(str(exc).split())[:300]}") from exc
        loaded.append((path, component, content_version(path, component)))

    where = f"registry {registry}" if registry else f"workspace {az.workspace}"
    results: list[PublishedComponent] = []
    with azure_errors(az, env):
        ml = azclient.registry_client(registry) if registry else azclient.ml_client(settings, env)
        for path, component, version in loaded:
            try:
                ml.components.get(name=component.name, version=version)
                results.append(PublishedComponent(str(component.name), version, False, path))
                console.info(f"  {component.name}:{version} already in {where}")
                continue
            except ResourceNotFoundError:
                pass
            component.version = version
            created = ml.components.create_or_update(component)
            results.append(PublishedComponent(str(created.name), str(created.version), True, path))
            console.info(f"  {created.name}:{created.version} published to {where}")
    return results
