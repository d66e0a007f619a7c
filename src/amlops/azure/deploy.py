"""`amlops deploy --env ENV`: the champion MLflow model on a batch endpoint, smoke-tested, then the default.

Order matters: the new deployment is created next to the serving one, a smoke job runs against it by name,
and only when that succeeds does it become the endpoint's default, so a broken model never takes traffic.
Every step is skipped when already in place, so a second run with the same champion sends no create.

MLflow models need no scoring script or environment: Azure ML builds both from the model's MLmodel file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops import console
from amlops.azure import client as azclient
from amlops.azure.errors import azure_errors
from amlops.azure.jobs import wait_for_job
from amlops.console import UserError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from amlops.config import AzureSettings, Settings

NAME_MAX = 32  # Azure ML limit for endpoint and deployment names


@dataclass(frozen=True)
class DeployResult:
    endpoint: str
    deployment: str
    model: str  # name:version
    changed: bool  # False: everything was already in place, nothing was sent but reads
    smoke_job: str | None


def _slug(text: str) -> str:
    """Letters, digits and single hyphens, starting with a letter (endpoint/deployment name rules)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug if slug[:1].isalpha() else f"m-{slug}".rstrip("-")


def endpoint_name(model_name: str, az: AzureSettings) -> str:
    """`<model>-<6 hex>`, at most 32 characters.

    Batch endpoint names are unique per Azure region across all customers, so the suffix hashes the
    workspace's full identity (subscription, resource group, workspace; a workspace lives in one region):
    the same workspace always gets the same name, and two workspaces (dev, prod, another team) never collide.
    """
    identity = f"{az.subscription_id}/{az.resource_group}/{az.workspace}".lower()
    suffix = hashlib.sha256(identity.encode()).hexdigest()[:6]
    base = _slug(model_name)[: NAME_MAX - len(suffix) - 1].rstrip("-")
    return f"{base}-{suffix}"


def deployment_name(model_name: str, version: str) -> str:
    """`<model>-v<version>`, at most 32 characters: one deployment per model version, so a rollback is a
    default switch."""
    tail = f"-v{_slug(version).removeprefix('m-')}"
    return f"{_slug(model_name)[: NAME_MAX - len(tail)].rstrip('-')}{tail}"


def _model_ref(model: Any) -> tuple[str, str] | None:
    """(name, version) of a deployment's model, whatever form the service returned it in."""
    text = model if isinstance(model, str) else getattr(model, "id", None) or ""
    found = re.search(r"models/([^/]+)/versions/([^/]+)$", str(text))
    if found:
        return found.group(1), found.group(2)
    found = re.match(r"^(?:azureml:)?([^:/]+):([^:/]+)$", str(text))
    return (found.group(1), found.group(2)) if found else None


def _default_deployment(endpoint: Any) -> str | None:
    defaults = endpoint.defaults
    if isinstance(defaults, dict):  # an entity built here; from the service it is a REST object
        return defaults.get("deployment_name")
    return getattr(defaults, "deployment_name", None) if defaults else None


def get_or_none(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return fn(*args, **kwargs)
    except ResourceNotFoundError:
        return None


def champion_version(ml: MLClient, settings: Settings, az: AzureSettings) -> str:
    """The champion's version in the workspace's model registry (amlops.registry decides; refuse when
    none)."""
    from amlops import registry

    found = registry.resolve_champion(azclient.WorkspaceModelRegistry(ml), settings.model_name)
    if found is None:
        raise UserError(
            f"model {settings.model_name!r} has no champion in workspace {az.workspace}: nothing to deploy "
            "(train on Azure with `amlops run pipelines/training.yml --target azure`, "
            "or `amlops promote --to`)"
        )
    return str(found[0])


def _smoke(
    ml: MLClient, endpoint: str, deployment: str, path: Path, az: AzureSettings, env: str | None
) -> str:
    from azure.ai.ml import Input

    kind = "uri_folder" if path.is_dir() else "uri_file"
    console.info(f"smoke job on {deployment} with {path}")
    with azure_errors(az, env):
        job = ml.batch_endpoints.invoke(
            endpoint_name=endpoint,
            deployment_name=deployment,
            input=Input(type=kind, path=str(path.resolve())),
        )
    name = str(job.name)
    try:
        wait_for_job(ml, name, az, env=env)
    except UserError as exc:
        raise UserError(
            f"smoke job failed, so {deployment} was not made the default of {endpoint}: {exc}"
        ) from exc
    return name


def deploy_champion(
    settings: Settings, env: str | None = None, smoke_input: str | Path | None = None
) -> DeployResult:
    """Create or update the batch endpoint and the champion's deployment; smoke-test; make it the default."""
    from azure.ai.ml.constants import BatchDeploymentOutputAction
    from azure.ai.ml.entities import BatchEndpoint, BatchRetrySettings, ModelBatchDeployment
    from azure.ai.ml.entities import ModelBatchDeploymentSettings as Batch

    az = azclient.target(settings, env)
    compute = azclient.require(az, "compute", env)
    explicit_smoke = Path(smoke_input) if smoke_input else None
    configured_smoke = settings.path(az.smoke_input) if az.smoke_input else None
    for candidate, source in ((explicit_smoke, "--smoke-input"), (configured_smoke, "azure.smoke_input")):
        if candidate is not None and not candidate.exists():
            raise UserError(f"{source} {candidate}: not found")
    changed = False
    with azure_errors(az, env):
        ml = azclient.ml_client(settings, env)
        version = champion_version(ml, settings, az)
        model = ml.models.get(name=settings.model_name, version=version)
        if str(model.type) != "mlflow_model":
            raise UserError(
                f"{settings.model_name}:{version} is a {model.type} model; batch deployment without a "
                "scoring script needs an MLflow model (log it with mlflow.sklearn.log_model)"
            )
        ep_name = az.endpoint_name or endpoint_name(settings.model_name, az)
        dep_name = deployment_name(settings.model_name, version)
        tags = {"amlops.model": settings.model_name, "amlops.version": version}

        endpoint = get_or_none(ml.batch_endpoints.get, ep_name)
        if endpoint is None:
            console.info(f"creating batch endpoint {ep_name}")
            endpoint = BatchEndpoint(
                name=ep_name,
                description=f"amlops batch scoring of {settings.model_name}",
                tags={"amlops.model": settings.model_name},
            )
            ml.batch_endpoints.begin_create_or_update(endpoint).result()
            changed = True

        deployment = get_or_none(ml.batch_deployments.get, name=dep_name, endpoint_name=ep_name)
        if deployment is None or _model_ref(deployment.model) != (settings.model_name, version):
            console.info(f"deploying {settings.model_name}:{version} as {ep_name}/{dep_name} on {compute}")
            ml.batch_deployments.begin_create_or_update(
                ModelBatchDeployment(
                    name=dep_name,
                    endpoint_name=ep_name,
                    model=model.id,
                    compute=compute,
                    description=f"champion {settings.model_name} v{version}",
                    tags=tags,
                    settings=Batch(
                        mini_batch_size=10,
                        instance_count=1,
                        max_concurrency_per_instance=2,
                        output_action=BatchDeploymentOutputAction.APPEND_ROW,
                        output_file_name="predictions.csv",
                        retry_settings=BatchRetrySettings(max_retries=3, timeout=300),
                        logging_level="info",
                    ),
                )
            ).result()
            changed = True

        endpoint = ml.batch_endpoints.get(ep_name) if changed else endpoint
        current_default = _default_deployment(endpoint)
        switch = current_default != dep_name
        smoke_path = explicit_smoke or (configured_smoke if (changed or switch) else None)
        smoke_job = _smoke(ml, ep_name, dep_name, smoke_path, az, env) if smoke_path else None
        if (changed or switch) and smoke_path is None:
            console.warn("no smoke input (--smoke-input or azure.smoke_input): deployed without a smoke job")
        if switch:
            console.info(
                f"making {dep_name} the default deployment of {ep_name} (was {current_default or 'none'})"
            )
            endpoint.defaults = {"deployment_name": dep_name}
            ml.batch_endpoints.begin_create_or_update(endpoint).result()
            changed = True
    if not changed:
        console.info(
            f"{ep_name}/{dep_name} already serves champion {settings.model_name}:{version}; nothing to do"
        )
    else:
        console.info(f"[green]{ep_name}[/] serves {settings.model_name}:{version} (deployment {dep_name})")
    return DeployResult(ep_name, dep_name, f"{settings.model_name}:{version}", changed, smoke_job)
