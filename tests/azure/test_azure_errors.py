"""Azure failures at the HTTP boundary become one line of advice (UserError), whatever SDK call hit them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure_helpers import FIXTURES
from fakeazure import RG, WS, FakeAzure, Reply, arm_error

import amlops.azure.client as azclient
from amlops.azure.data_assets import register_snapshot
from amlops.azure.errors import advice
from amlops.azure.jobs import submit_pipeline
from amlops.config import Settings
from amlops.console import UserError

PIPELINE = FIXTURES / "pipelines" / "training.yml"


def one_line(info: pytest.ExceptionInfo[UserError]) -> str:
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_no_credential(fake: FakeAzure, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class NoLogin:
        def get_token(self, *_: Any, **__: Any) -> Any:
            raise ClientAuthenticationError(
                "DefaultAzureCredential failed to retrieve a token from the included credentials.\n"
                "Attempted credentials:\n\tEnvironmentCredential: ... unavailable\n\tAzureCliCredential: ..."
            )

    monkeypatch.setattr(azclient, "default_credential", NoLogin)
    with pytest.raises(UserError) as info:
        submit_pipeline(PIPELINE, {}, settings, wait=False)
    assert one_line(info).startswith("no Azure credential available: run `az login`")
    assert fake.requests == []  # the token is fetched before anything is sent


def test_rejected_token(fake: FakeAzure, settings: Settings) -> None:
    fake.on(
        "PUT", r"/environments/", arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")
    )
    with pytest.raises(UserError) as info:
        submit_pipeline(PIPELINE, {}, settings, wait=False)
    assert one_line(info).startswith(
        "Azure rejected the credential (401 InvalidAuthenticationToken): run `az login`"
    )


def test_missing_workspace(fake: FakeAzure, settings: Settings, tmp_path: Path) -> None:
    gone = arm_error(
        404,
        "ResourceNotFound",
        (
            f"The Resource 'Microsoft.MachineLearningServices/workspaces/{WS}' "
            f"under resource group '{RG}' was not found."
        ),
    )
    for method in ("GET", "PUT", "POST"):
        fake.on(method, rf"/workspaces/{WS}", gone)
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "a.csv").write_text("x\n1\n")
    with pytest.raises(UserError) as info:
        register_snapshot(tmp_path / "snap", "demand", settings)
    message = one_line(info)
    assert message.startswith(f"workspace '{WS}' (resource group '{RG}') not found in subscription")
    assert "run `amlops infra deploy`" in message


def test_missing_compute(fake: FakeAzure, settings: Settings) -> None:
    fake.on(
        "PUT",
        r"/jobs/[^/]+$",
        arm_error(400, "UserError", "Compute cpu-cluster does not exist in the workspace."),
    )
    with pytest.raises(UserError) as info:
        submit_pipeline(PIPELINE, {}, settings, wait=False)
    assert one_line(info).startswith("compute cpu-cluster not found in the workspace: set azure.compute")


def test_quota(fake: FakeAzure, settings: Settings) -> None:
    fake.on(
        "PUT",
        r"/jobs/[^/]+$",
        arm_error(
            409,
            "OperationNotAllowed",
            "Operation results in exceeding quota limits of Core. Maximum allowed: 4.",
        ),
    )
    with pytest.raises(UserError) as info:
        submit_pipeline(PIPELINE, {}, settings, wait=False)
    assert one_line(info).startswith("quota exceeded (OperationNotAllowed): request more quota")


def test_storage_authorisation(fake: FakeAzure, settings: Settings, tmp_path: Path) -> None:
    fake.on(
        "PUT",
        r"\.blob\.core\.windows\.net/",
        Reply(403, body=b"", headers={"x-ms-error-code": "AuthorizationPermissionMismatch"}),
    )
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "a.csv").write_text("x\n1\n")
    with pytest.raises(UserError) as info:
        register_snapshot(tmp_path / "snap", "demand", settings)
    assert one_line(info).startswith(
        f"not authorised on the storage account of workspace '{WS}' (resource group '{RG}') "
        "(AuthorizationPermissionMismatch): ask for the Storage Blob Data Contributor role"
    )


def test_unknown_errors_pass_through() -> None:
    assert advice(RuntimeError("something else")) is None
