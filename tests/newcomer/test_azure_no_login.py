"""Without a login, an Azure command says one line and claims nothing ("submitting…") before the credential works.

No request leaves this machine: the credentials here are fakes, or the real DefaultAzureCredential with every
source that could reach a network endpoint (managed identity's 169.254.169.254, workload identity, the CLIs,
the token caches) excluded, and every HTTP adapter replaced by one that fails the test.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import amlops.azure.client as azclient
from amlops.azure.jobs import submit_pipeline
from amlops.config import Settings
from amlops.console import UserError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any HTTP request fails the test; no AZURE_* variable can make a credential available."""

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a test tried to reach the network")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", refuse)
    for key in list(os.environ):
        if key.startswith(("AZURE_", "IDENTITY_ENDPOINT", "MSI_", "AMLOPS_")):
            monkeypatch.delenv(key)
    level = logging.getLogger("azure.identity").level
    yield
    logging.getLogger("azure.identity").setLevel(level)


def _offline_default_credential() -> Any:
    """The real DefaultAzureCredential, as default_credential() builds it, but only with the environment
    credential (no network: it is unavailable without AZURE_* variables)."""
    from azure.identity import DefaultAzureCredential

    azclient.quiet_identity_log()
    return DefaultAzureCredential(
        exclude_interactive_browser_credential=True,
        exclude_managed_identity_credential=True,
        exclude_workload_identity_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_cli_credential=True,
        exclude_developer_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_broker_credential=True,
    )


def _workspace_settings(tmp_path: Path) -> Settings:
    s = Settings(base_dir=tmp_path)
    s.azure.subscription_id = "00000000-0000-0000-0000-000000000000"
    s.azure.resource_group = "rg-test"
    s.azure.workspace = "mlw-test"
    s.azure.compute = "cpu"
    return s


def _dumped(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The SDK's multi-line list of attempted credentials, as logged (stderr when no handler is configured)."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("azure.identity")]


def test_no_login_is_one_line_without_the_sdk_dump(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(azclient, "default_credential", _offline_default_credential)
    with pytest.raises(UserError) as info:
        azclient.ml_client(_workspace_settings(tmp_path))
    message = str(info.value)
    assert "\n" not in message and message.startswith("no Azure credential available: run `az login`")
    err = capsys.readouterr().err
    assert "failed to retrieve a token" not in err and "Attempted credentials" not in err, err
    assert _dumped(caplog) == []


def test_the_sdk_dump_is_what_quiet_identity_log_removes(caplog: pytest.LogCaptureFixture) -> None:
    """The planted fault: with azure.identity's log level back at its default the dump is on stderr, so the
    check above can fail."""
    credential = _offline_default_credential()
    logging.getLogger("azure.identity").setLevel(logging.NOTSET)
    with pytest.raises(UserError):
        azclient.checked_credential(credential)
    assert any("failed to retrieve a token" in m for m in _dumped(caplog))


def test_nothing_is_submitting_before_the_credential_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from azure.core.exceptions import ClientAuthenticationError

    class NoLogin:
        def get_token(self, *_: Any, **__: Any) -> Any:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    monkeypatch.setattr(azclient, "default_credential", NoLogin)
    with pytest.raises(UserError, match="no Azure credential available"):
        submit_pipeline(REPO / "pipelines" / "training.yml", {}, _workspace_settings(tmp_path), wait=False)
    captured = capsys.readouterr()
    assert "submitting" not in captured.out + captured.err
