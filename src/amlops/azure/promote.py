"""`amlops promote --to ENV`: the source workspace's champion, through the AML registry, into the target.

1. share: the champion version is copied from the source workspace into the registry (`models.share`, a
   server-side copy; the registry keeps its own immutable copy);
2. create: the registry's copy is registered in the target workspace under the same name and version, with the
   source's lineage and gate tags, `promoted.from` naming the registry asset, and the champion role tag that
   `amlops.registry` reads, so `amlops deploy --env <target>` deploys it.

Each step is skipped when already done (same asset in the registry, same `promoted.from` in the target),
so re-running a promotion is safe; a different asset under the same name and version is refused, never
overwritten.

`stage` runs one step alone, so each runs under the identity that holds its roles: `share` needs the source
workspace and the registry (dev's CI identity), `copy` the registry and the target workspace (prod's), and
neither identity needs a role in the other environment.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops import console
from amlops.azure import client as azclient
from amlops.azure.deploy import champion_version, get_or_none
from amlops.azure.errors import azure_errors
from amlops.console import UserError

if TYPE_CHECKING:
    from amlops.config import Settings

PROMOTED_FROM = "promoted.from"
STAGES = ("all", "share", "copy")


def _source_env(settings: Settings, env: str, from_env: str | None) -> str | None:
    """The explicit source, else `dev` when it exists and is not the target, else the base `azure.*` keys."""
    if from_env:
        return from_env
    if "dev" in settings.azure.environments and env != "dev":
        return "dev"
    return None


def _carried_tags(tags: dict[str, Any]) -> dict[str, str]:
    """Lineage and gate tags travel with the model; roles do not (a role belongs to one registry)."""
    from amlops import registry

    return {k: str(v) for k, v in tags.items() if not k.startswith(registry.ROLE_TAG_PREFIX)}


# Keys the service writes on the assets it creates (e.g. `azureml.datastoreId` on job runs,
# `azureml.mlIndexAssetName` set by azure-ai-ml's `_index_operations.py`): they describe the source workspace's
# copy, not the model, and a create that carries them is asking the target to accept another asset's
# bookkeeping. Issue 13 #6; the `_azureml.` form appears in run properties (e.g. `_azureml.ComputeTargetType`).
_RESERVED_PROPERTY_PREFIXES = ("azureml.", "_azureml.")


def _carried_properties(properties: dict[str, Any]) -> dict[str, str]:
    """User properties travel with the model; service-reserved `azureml.*` keys stay behind."""
    return {k: str(v) for k, v in properties.items() if not k.lower().startswith(_RESERVED_PROPERTY_PREFIXES)}


def _model_dir(root: Path) -> Path:
    """The folder holding MLmodel in what `models.download` wrote (it nests under the model name)."""
    found = sorted(root.rglob("MLmodel"), key=lambda p: len(p.parts))
    if not found:
        raise UserError("the registry copy has no MLmodel file: only MLflow models can be promoted")
    return found[0].parent


def promote_to(
    env: str,
    settings: Settings,
    version: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
    from_env: str | None = None,
    stage: str = "all",
) -> str:
    """Copy the source workspace's champion (or `version`) to `env` via the registry; returns its asset id.

    `stage="share"` stops once the model is in the registry and returns the registry asset id;
    `stage="copy"` starts from the registry (`version` required) and touches no source workspace.
    """
    from azure.ai.ml.entities import Model

    from amlops import registry as roles

    if stage not in STAGES:
        raise UserError(f"unknown promotion stage {stage!r} (one of {', '.join(STAGES)})")
    if stage == "copy" and not version:
        raise UserError("promotion stage copy needs the VERSION that stage share put in the registry")
    source = _source_env(settings, env, from_env)
    az_src = azclient.target(settings, source)
    az_dst = azclient.target(settings, env)
    if (az_src.subscription_id, az_src.resource_group, az_src.workspace) == (
        az_dst.subscription_id,
        az_dst.resource_group,
        az_dst.workspace,
    ):
        raise UserError(f"source and target are the same workspace ({az_dst.workspace}): pass another --to")
    registry_name = az_dst.registry or az_src.registry
    if not registry_name:
        raise azclient.missing("registry", env)
    name = settings.model_name
    if stage == "copy":
        with azure_errors(az_dst, env):
            reg = azclient.registry_client(registry_name)
            model = reg.models.get(name=name, version=str(version))
        version = str(version)
    else:
        model, reg, version = _share(settings, source, az_src, registry_name, name, version)
    registry_id = f"azureml://registries/{registry_name}/models/{name}/versions/{version}"
    if stage == "share":
        return registry_id
    now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    role_tag = roles.ROLE_TAG_PREFIX + roles.CHAMPION
    with azure_errors(az_dst, env):
        dst = azclient.ml_client(settings, env)
        existing = get_or_none(dst.models.get, name=name, version=version)
        if existing is not None:
            if (existing.tags or {}).get(PROMOTED_FROM) != registry_id:
                raise UserError(
                    f"workspace {az_dst.workspace} already has {name}:{version} that did not come from "
                    f"{registry_id}; nothing was changed"
                )
            if not (existing.tags or {}).get(role_tag):
                # Promoted before and the role moved on since: give it back (a tag update, no new upload).
                existing.tags = {**(existing.tags or {}), role_tag: now}
                dst.models.create_or_update(existing)
            console.info(f"{name}:{version} from {registry_id} is the champion in {az_dst.workspace}")
            return f"azureml:{name}:{version}"
        tags = {
            **_carried_tags(dict(model.tags or {})),
            PROMOTED_FROM: registry_id,
            "promoted.from_workspace": str(az_src.workspace),
            "promoted.reason": reason or "",
            "promoted.actor": actor or "",
            role_tag: now,
        }
        with tempfile.TemporaryDirectory(prefix="amlops-promote-") as tmp:
            console.info(f"copying {registry_id} into workspace {az_dst.workspace}")
            reg.models.download(name=name, version=version, download_path=tmp)
            dst.models.create_or_update(
                Model(
                    name=name,
                    version=version,
                    type="mlflow_model",
                    path=str(_model_dir(Path(tmp))),
                    description=model.description or f"{name} promoted from {az_src.workspace}",
                    tags=tags,
                    properties=_carried_properties(dict(model.properties or {})),
                )
            )
    console.info(
        f"[green]{name}:{version} is the champion in {az_dst.workspace}[/] "
        f"(deploy: amlops deploy --env {env})"
    )
    return f"azureml:{name}:{version}"


def _share(
    settings: Settings, source: str | None, az_src: Any, registry_name: str, name: str, version: str | None
) -> tuple[Any, Any, str]:
    """Step 1: the source's champion (or `version`) into the registry; (source model, registry client, version)."""
    with azure_errors(az_src, source):
        src = azclient.ml_client(settings, source)
        version = str(version or champion_version(src, settings, az_src))
        model = src.models.get(name=name, version=version)
        reg = azclient.registry_client(registry_name)
        in_registry = get_or_none(reg.models.get, name=name, version=version)
        if in_registry is None:
            console.info(
                f"sharing {name}:{version} from workspace {az_src.workspace} to registry {registry_name}"
            )
            src.models.share(
                name, version, share_with_name=name, share_with_version=version, registry_name=registry_name
            )
            in_registry = reg.models.get(name=name, version=version)
        elif (in_registry.tags or {}).get("data.digest") != (model.tags or {}).get("data.digest"):
            raise UserError(
                f"registry {registry_name} already has {name}:{version} from other data "
                f"(data.digest differs); promote another version or clean the registry"
            )
        else:
            console.info(f"{name}:{version} is already in registry {registry_name}")
    return model, reg, version
