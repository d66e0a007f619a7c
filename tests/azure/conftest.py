"""Fixtures for the Azure target tests: a fake Azure at the HTTP boundary, a fake credential, settings."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).parent))

from azure_helpers import seed_workspace
from fakeazure import (
    LOCATION,
    RG,
    SUB,
    WS,
    FakeAzure,
    FakeCredential,
)

from amlops.config import Settings


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAzure]:
    """Every HTTP request of the SDK (ARM, data plane, blob) lands here; the credential is fake."""
    azure = FakeAzure()
    seed_workspace(azure)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", lambda _self, req, **_kw: azure.send(req))
    import amlops.azure.client as azclient

    monkeypatch.setattr(azclient, "default_credential", FakeCredential)
    for key in list(os.environ):
        if key.startswith("AMLOPS_"):
            monkeypatch.delenv(key)
    yield azure


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings.model_validate({})
    s.base_dir = tmp_path
    s.azure.subscription_id = SUB
    s.azure.resource_group = RG
    s.azure.workspace = WS
    s.azure.location = LOCATION
    s.azure.compute = "cpu-cluster"
    return s
