"""`MLClient(DefaultAzureCredential(), subscription, resource group, workspace)` from the settings.

The workspace comes from `Settings.azure_for(env)` (`azure.environments.<env>` over the base `azure.*` keys,
written by `amlops infra deploy`). A missing key is one line naming it and how to set it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amlops import __version__
from amlops.errors import UsageError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.core.credentials import TokenCredential

    from amlops.config import AzureSettings, Settings

WORKSPACE_KEYS = ("subscription_id", "resource_group", "workspace")


def config_key(key: str, env: str | None) -> tuple[str, str]:
    """(key as written in amlops.yaml, the environment variable that overrides it)."""
    if env is None:
        return f"azure.{key}", f"AMLOPS_AZURE__{key.upper()}"
    return f"azure.environments.{env}.{key}", f"AMLOPS_AZURE__ENVIRONMENTS__{env.upper()}__{key.upper()}"


def missing(key: str, env: str | None) -> UsageError:
    """A missing Azure setting: a configuration error (exit code 2), like any other bad setting."""
    name, variable = config_key(key, env)
    return UsageError(f"{name} is not set (run `amlops infra deploy --env {env or 'dev'}` or set {variable})")


def require(az: AzureSettings, key: str, env: str | None) -> str:
    """The value of `azure.<key>` for this environment, or a UserError naming the key."""
    value = getattr(az, key)
    if not value:
        raise missing(key, env)
    return str(value)


def target(settings: Settings, env: str | None) -> AzureSettings:
    """The Azure settings of `env` with the workspace keys checked (ConfigError for an unknown env)."""
    az = settings.azure_for(env)
    for key in WORKSPACE_KEYS:
        require(az, key, env)
    return az


# The audience every workspace call starts with (ARM); a token for it proves the credential works.
ARM_SCOPE = "https://management.azure.com/.default"


def default_credential() -> TokenCredential:
    """`az login`, a service principal (environment), workload identity (GitHub OIDC) or a managed identity.

    The interactive browser is left out so that CI never hangs waiting for a login nobody can complete.
    """
    from azure.identity import DefaultAzureCredential

    quiet_identity_log()
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def quiet_identity_log() -> None:
    """DefaultAzureCredential logs every credential it tried, at WARNING, before it raises (azure-identity 1.27
    `_credentials/chained.py`: `_LOGGER.warning(message)` then `raise ClientAuthenticationError`): fourteen
    lines on stderr ahead of our one-line advice (`errors.advice`), which says what to do. Errors stay on."""
    import logging

    logging.getLogger("azure.identity").setLevel(logging.ERROR)


def checked_credential(credential: TokenCredential) -> TokenCredential:
    """The credential, once it has produced a token: nothing may claim "submitting…" before the login is known
    to work. No credential is one line of advice (UserError), not the SDK's list of attempts. The token is
    cached by the credential, so the client's first request does not fetch another."""
    from azure.core.exceptions import ClientAuthenticationError

    from amlops.azure.errors import advice
    from amlops.console import UserError

    try:
        credential.get_token(ARM_SCOPE)
    except ClientAuthenticationError as exc:
        raise UserError(advice(exc) or "no Azure credential available: run `az login`") from None
    return credential


def ml_client(settings: Settings, env: str | None = None, **kwargs: Any) -> MLClient:
    """A workspace client for `env` with a credential that works; `kwargs` go to MLClient (and from there to
    azure-core pipelines)."""
    from azure.ai.ml import MLClient

    az = target(settings, env)
    return MLClient(
        checked_credential(default_credential()),
        subscription_id=az.subscription_id,
        resource_group_name=az.resource_group,
        workspace_name=az.workspace,
        user_agent=f"amlops/{__version__}",
        **kwargs,
    )


def registry_client(name: str, **kwargs: Any) -> MLClient:
    """A client for an AML registry (a top-level resource shared by workspaces; found by name)."""
    from azure.ai.ml import MLClient

    return MLClient(
        checked_credential(default_credential()),
        registry_name=name,
        user_agent=f"amlops/{__version__}",
        **kwargs,
    )


def cancel_command(job_name: str, az: AzureSettings) -> str:
    """The exact `az ml` command that cancels a running job (printed on Ctrl-C)."""
    return (
        f"az ml job cancel -n {job_name} -g {az.resource_group} -w {az.workspace} "
        f"--subscription {az.subscription_id}"
    )


@dataclass(frozen=True)
class ModelVersionView:
    """What `amlops.registry` reads from an MLflow ModelVersion: name, version, tags."""

    name: str
    version: str
    tags: dict[str, str]


class WorkspaceModelRegistry:
    """The slice of `MlflowClient` that `amlops.registry.resolve_role` uses, answered by azure-ai-ml.

    The AML model registry behind a workspace has no aliases: `get_model_version_by_alias` says so with
    NotImplementedError, and `amlops.registry` falls back to its `role.<role>` version tags. So the champion
    is decided by the one code path of DESIGN.md §5 whether the registry is MLflow or Azure ML, and no MLflow
    tracking plugin is needed: the calls go through the same MLClient (and credential) as everything else.
    """

    def __init__(self, ml: MLClient) -> None:
        self._ml = ml

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersionView:
        raise NotImplementedError("the Azure ML model registry has no aliases; roles are version tags")

    def search_model_versions(self, filter_string: str = "", *_: Any, **__: Any) -> list[ModelVersionView]:
        found = re.fullmatch(r"\s*name\s*=\s*'([^']+)'\s*", filter_string or "")
        if not found:
            raise ValueError(f"unsupported model search: {filter_string!r} (only name='<model>')")
        return [self._view(m) for m in self._ml.models.list(name=found.group(1))]

    def get_model_version(self, name: str, version: str) -> ModelVersionView:
        return self._view(self._ml.models.get(name=name, version=str(version)))

    @staticmethod
    def _view(model: Any) -> ModelVersionView:
        return ModelVersionView(
            str(model.name), str(model.version), {k: str(v) for k, v in (model.tags or {}).items()}
        )
