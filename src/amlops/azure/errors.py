"""Common Azure failures turned into one line of advice (`UserError`), instead of a page of SDK traceback.

Covered: no credential (`az login`), authentication and authorisation (401/403, AuthorizationFailed), quota,
a missing compute target, a missing workspace / resource group / subscription, and an unreachable service.
Anything else propagates unchanged: an unknown error is better seen in full than misdescribed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from amlops.console import UserError

if TYPE_CHECKING:
    from amlops.config import AzureSettings

_QUOTA_CODES = {"QuotaExceeded", "InsufficientQuota", "QuotaExceededError", "ResourceQuotaExceeded"}
_AUTHZ_CODES = {"AuthorizationFailed", "LinkedAuthorizationFailed", "Forbidden"}
_STORAGE_AUTHZ_CODES = {
    "AuthorizationPermissionMismatch",
    "AuthorizationFailure",
    "KeyBasedAuthenticationNotPermitted",
}
_MISSING_SCOPE_CODES = {
    "WorkspaceNotFound",
    "ResourceGroupNotFound",
    "SubscriptionNotFound",
    "InvalidSubscriptionId",
}
_COMPUTE_MISSING = re.compile(
    r"compute[^.]*?(not found|does not exist|could not be found|cannot be found)|ComputeNotFound",
    re.IGNORECASE,
)
_WORKSPACE_MISSING = re.compile(
    r"workspaces/[^/\s']+'? under resource group|workspace (was )?not found|WorkspaceNotFound", re.IGNORECASE
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes: azure-ai-ml wraps HTTP errors in its own (AssetException, ...)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _code_and_message(exc: BaseException) -> tuple[str, str, int | None]:
    code = str(getattr(exc, "error_code", "") or "")  # azure-storage-blob puts the service's code here
    error = getattr(exc, "error", None)
    if not code and error is not None:
        code = str(getattr(error, "code", "") or "")
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", None) or exc)
    if not code:
        found = re.match(r"\(([A-Za-z]+)\)", message)
        code = found.group(1) if found else ""
    return code, message, status if isinstance(status, int) else None


def _first_line(message: str) -> str:
    """The service's message without the SDK's `(Code) ... Code: ... Message: ...` repetition."""
    text = re.sub(r"^\([A-Za-z]+\)\s*", "", message.strip())
    text = text.split("\nCode:", 1)[0].split(" Code: ", 1)[0]
    return " ".join(text.split())[:300]


def advice(exc: BaseException, az: AzureSettings | None = None, env: str | None = None) -> str | None:
    """One line of advice for a known Azure failure, or None when the error is not one we recognise."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    ws = f"workspace {az.workspace!r} (resource group {az.resource_group!r})" if az else "the workspace"
    env_flag = f" --env {env}" if env else ""
    for err in _chain(exc):
        if isinstance(err, UserError):
            return str(err)
        code, message, status = _code_and_message(err)
        text = _first_line(message)
        if isinstance(err, ClientAuthenticationError) and status is None:
            # Raised by the credential itself: no token could be obtained at all.
            return (
                "no Azure credential available: run `az login` (or set AZURE_CLIENT_ID / AZURE_TENANT_ID / "
                "AZURE_CLIENT_SECRET, or use a managed or workload identity)"
            )
        if not isinstance(err, HttpResponseError):
            if _is_sdk_validation(err):
                return f"azure-ai-ml: {text}"
            if isinstance(err, ServiceRequestError):
                return f"cannot reach Azure ({text}): check the network, proxy and private endpoint settings"
            if _COMPUTE_MISSING.search(message):
                return _compute_advice(az, env_flag, text)
            continue
        if status == 401 or isinstance(err, ClientAuthenticationError):
            return (
                f"Azure rejected the credential (401 {code or 'Unauthorized'}): run `az login` again, "
                f"and check the tenant of subscription {az.subscription_id if az else ''}".rstrip()
            )
        if code in _STORAGE_AUTHZ_CODES:
            return (
                f"not authorised on the storage account of {ws} ({code}): ask for the Storage Blob Data "
                "Contributor role on it (uploads and downloads use your identity)"
            )
        if status == 403 or code in _AUTHZ_CODES:
            return (
                f"not authorised on {ws} ({code or '403'}): ask for the AzureML Data Scientist "
                f"(or Contributor) role on the workspace. Azure said: {text}"
            )
        if code in _QUOTA_CODES or "quota" in message.lower():
            return (
                f"quota exceeded ({code or status}): request more quota for this VM family in the Azure "
                f"portal (Quotas), or use a smaller instance type or fewer nodes. Azure said: {text}"
            )
        if _COMPUTE_MISSING.search(message):
            return _compute_advice(az, env_flag, text)
        if code in _MISSING_SCOPE_CODES or (status == 404 and _WORKSPACE_MISSING.search(message)):
            return (
                f"{ws} not found in subscription {az.subscription_id if az else '?'} ({code or 404}): "
                f"run `amlops infra deploy{env_flag}` or check azure.workspace / azure.resource_group"
            )
    return None


def _is_sdk_validation(err: BaseException) -> bool:
    from azure.ai.ml.exceptions import ValidationException

    return isinstance(err, ValidationException)


def _compute_advice(az: AzureSettings | None, env_flag: str, text: str) -> str:
    name = az.compute if az and az.compute else "(azure.compute is not set)"
    return (
        f"compute {name} not found in the workspace: set azure.compute to the cluster created by "
        f"`amlops infra deploy{env_flag}` (or create one). Azure said: {text}"
    )


@contextmanager
def azure_errors(az: AzureSettings | None = None, env: str | None = None) -> Iterator[None]:
    """Run Azure calls; re-raise recognised failures as a one-line UserError (the original kept as cause)."""
    try:
        yield
    except UserError:
        raise
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        message = advice(exc, az, env)
        if message is None:
            raise
        raise UserError(message) from exc
