"""`publish_components`: content-derived versions, the component PUT payload, no create when unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from azure_helpers import FIXTURES
from fakeazure import LOCATION, WS_PATH, FakeAzure, Recorded, Reply

from amlops.azure.components import publish_components
from amlops.config import Settings

REGISTRY = "reg-amlops"
REG_RG = "rg-amlops-shared"
REG_SUB = "00000000-0000-0000-0000-0000000000aa"
REG_PATH = (
    f"/subscriptions/{REG_SUB}/resourceGroups/{REG_RG}"
    f"/providers/Microsoft.MachineLearningServices/registries/{REGISTRY}"
)


@pytest.fixture
def project(tmp_path: Path, settings: Settings) -> Settings:
    """A copy of the fixture components/ and src/ under the settings' base folder."""
    for folder in ("components", "src"):
        shutil.copytree(FIXTURES / folder, tmp_path / folder)
    return settings


def component_puts(fake: FakeAzure, where: str = WS_PATH) -> list[Recorded]:
    return [
        r for r in fake.calls("PUT", r"/components/amlops_test_[a-z]+/versions/") if r.path.startswith(where)
    ]


def test_publish_registers_each_component_with_a_content_version(fake: FakeAzure, project: Settings) -> None:
    published = publish_components(project)

    assert [p.name for p in published] == ["amlops_test_prep", "amlops_test_train"]
    assert all(p.created for p in published)
    puts = {r.path.rsplit("/", 3)[-3]: r for r in component_puts(fake)}
    for item in published:
        put = puts[item.name]
        assert put.path == f"{WS_PATH}/components/{item.name}/versions/{item.version}"
        assert item.version.startswith("1.") and len(item.version) == 2 + 12
        spec = put.json()["properties"]["componentSpec"]
        assert spec["name"] == item.name
        assert spec["version"] == item.version
        assert spec["type"] == "command"
        assert spec["code"].startswith(f"azureml:{WS_PATH}/codes/")
        assert spec["environment"].startswith(f"azureml:{WS_PATH}/environments/CliV2AnonymousEnvironment/")
        assert put.json()["properties"].get("isAnonymous") in (False, None)
    train = puts["amlops_test_train"].json()["properties"]["componentSpec"]
    assert train["inputs"]["seed"] == {"type": "integer", "default": "42"}
    assert train["inputs"]["target"]["optional"] is True
    assert train["outputs"]["model"] == {"type": "mlflow_model"}


def test_publishing_again_sends_no_create(fake: FakeAzure, project: Settings) -> None:
    publish_components(project)
    before = len(fake.requests)
    again = publish_components(project)

    assert not any(p.created for p in again)
    assert {r.method for r in fake.requests[before:]} == {"GET"}


def test_a_code_change_gives_a_new_version(fake: FakeAzure, project: Settings, tmp_path: Path) -> None:
    first = {p.name: p.version for p in publish_components(project)}
    (tmp_path / "src" / "demo" / "step.py").write_text("print('changed')\n")
    second = {p.name: p.version for p in publish_components(project)}

    assert all(first[name] != second[name] for name in first)
    assert len(component_puts(fake)) == 4


def test_publish_to_a_registry(fake: FakeAzure, project: Settings) -> None:
    mfe = f"https://{LOCATION}.api.azureml.ms/"
    fake.on(
        "GET",
        rf"registries/{REGISTRY}/discovery$",
        Reply(
            200,
            {
                "registryName": REGISTRY,
                "primaryRegion": LOCATION,
                "primaryRegionResourceProviderUri": mfe,
                "subscriptionId": REG_SUB,
                "resourceGroup": REG_RG,
            },
        ),
    )
    published = publish_components(project, registry=REGISTRY)

    puts = [r for r in fake.requests if r.method == "PUT" and "/components/amlops_test_" in r.path]
    assert {r.host for r in puts} == {f"{LOCATION}.api.azureml.ms"}
    assert {r.path.split("/components/")[0] for r in puts} == {f"/mferp/managementfrontend{REG_PATH}"}
    assert {p.name for p in published} == {"amlops_test_prep", "amlops_test_train"}
