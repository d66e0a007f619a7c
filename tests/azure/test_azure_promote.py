"""`promote_to`: share the dev champion into the AML registry, then register the registry's copy in prod."""

from __future__ import annotations

import pytest
from azure_helpers import MODEL, seed_model, seed_workspace
from fakeazure import LOCATION, WS, WS_PATH, FakeAzure, Recorded, Reply

from amlops.azure.client import ml_client
from amlops.azure.deploy import champion_version
from amlops.azure.promote import promote_to
from amlops.config import Settings
from amlops.console import UserError

REGISTRY = "reg-amlops"
REG_SUB = "00000000-0000-0000-0000-0000000000aa"
REG_RG = "rg-amlops-shared"
REG_PATH = (
    f"/subscriptions/{REG_SUB}/resourceGroups/{REG_RG}"
    f"/providers/Microsoft.MachineLearningServices/registries/{REGISTRY}"
)
MFE = f"{LOCATION}.api.azureml.ms"
PROD = "mlw-amlops-prod"
PROD_PATH = WS_PATH.replace(WS, PROD)
REG_BLOB = "https://stregamlops.blob.core.windows.net/reg-container"
FILES = {
    "MLmodel": b"flavors:\n  python_function: {loader_module: mlflow.sklearn}\n",
    "model.skops": b"\x00model",
    "reference_profile.json": b"{}",
}


@pytest.fixture
def envs(settings: Settings) -> Settings:
    settings.azure.registry = REGISTRY
    settings.azure.environments = {
        "dev": {"workspace": WS},
        "prod": {"workspace": PROD, "compute": "cpu-prod"},
    }
    return settings


def serve_registry(fake: FakeAzure) -> list[Recorded]:
    """The registry: discovery, the import (server-side copy of a workspace model), SAS for downloads."""
    imports: list[Recorded] = []
    fake.on(
        "GET",
        rf"registries/{REGISTRY}/discovery$",
        Reply(
            200,
            {
                "registryName": REGISTRY,
                "primaryRegion": LOCATION,
                "primaryRegionResourceProviderUri": f"https://{MFE}/",
                "subscriptionId": REG_SUB,
                "resourceGroup": REG_RG,
            },
        ),
    )

    def do_import(req: Recorded) -> Reply:
        imports.append(req)
        body = req.json()["properties"]
        name, version = body["destinationName"], body["destinationVersion"]
        source = body["sourceAssetId"].rsplit("/versions/", 1)
        src = fake.arm[f"{WS_PATH}/models/{name}/versions/{version}".lower()]["properties"]
        assert source[1] == version
        folder = f"{REG_BLOB}/models/{name}/{version}/model"
        for file, data in FILES.items():  # the service copies the files into the registry's storage
            fake.blobs[f"{folder.removeprefix('https://')}/{file}"] = data
        resource = f"/mferp/managementfrontend{REG_PATH}/models/{name}/versions/{version}"
        fake.put_resource(
            resource,
            {
                "properties": {
                    "modelType": "mlflow_model",
                    "modelUri": folder,
                    "tags": dict(src["tags"]),
                    "flavors": src["flavors"],
                    "properties": {},
                }
            },
        )
        # A long-running operation: 202 and a Location to poll, which answers 200 with no body when done.
        operation = f"https://{MFE}/mferp/managementfrontend{REG_PATH}/operationResults/import-{len(imports)}"
        return Reply(202, headers={"Location": operation, "Retry-After": "0"})

    fake.on("POST", rf"registries/{REGISTRY}/import$", do_import)
    fake.on("GET", r"/operationResults/import-\d+$", Reply(200))

    def sas(req: Recorded) -> Reply:
        return Reply(
            200,
            {
                "blobReferenceForConsumption": {
                    "blobUri": req.json()["blobUri"],
                    "credential": {"credentialType": "SAS", "sasUri": f"{REG_BLOB}?sv=2024-01-01&sig=fake"},
                }
            },
        )

    fake.on("POST", rf"registries/{REGISTRY}/datarefs/[^/]+/versions/[^/]+$", sas)
    return imports


def prod_models(fake: FakeAzure) -> list[Recorded]:
    return fake.calls("PUT", rf"/workspaces/{PROD}/models/")


def test_promote_shares_then_creates_in_the_target(fake: FakeAzure, envs: Settings) -> None:
    seed_workspace(fake, PROD_PATH, guid="99999999-2222-3333-4444-555555555555")
    seed_model(fake, "1", champion_since="2026-10-01T08:00:00.000000Z")
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    imports = serve_registry(fake)
    asset = promote_to("prod", envs, reason="passed the gate in dev", actor="ci")

    assert asset == f"azureml:{MODEL}:2"
    [share] = imports
    assert share.host == MFE
    assert share.json()["properties"] == {
        "referenceType": "Id",
        "destinationName": MODEL,
        "destinationVersion": "2",
        "sourceAssetId": f"azureml://locations/{LOCATION}/workspaces/11111111-2222-3333-4444-555555555555"
        f"/models/{MODEL}/versions/2",
    }
    # The registry's files were downloaded and uploaded into prod's default datastore ...
    uploaded = {k.rsplit("/", 1)[-1]: v for k, v in fake.blobs.items() if "/LocalUpload/" in k}
    assert uploaded == FILES
    # ... and registered there under the same name and version: MLflow model, lineage, the champion role.
    [put] = prod_models(fake)
    assert put.path == f"{PROD_PATH}/models/{MODEL}/versions/2"
    props = put.json()["properties"]
    assert props["modelType"] == "mlflow_model"
    assert "/workspaceblobstore/paths/LocalUpload/" in props["modelUri"]
    tags = props["tags"]
    assert tags["promoted.from"] == f"azureml://registries/{REGISTRY}/models/{MODEL}/versions/2"
    assert tags["data.digest"] == "sha256:" + "2" * 8 and tags["git.commit"] == "abc123"
    assert tags["promoted.reason"] == "passed the gate in dev" and tags["promoted.actor"] == "ci"
    assert tags["role.champion"] > "2026-11-20"
    # amlops.registry now resolves prod's champion to the promoted version (what `deploy --env prod` uses).
    assert champion_version(ml_client(envs, "prod"), envs, envs.azure_for("prod")) == "2"
    # Nothing was written in dev.
    assert not [r for r in fake.writes() if f"/workspaces/{WS}/" in r.path]


def test_promoting_again_sends_no_create(fake: FakeAzure, envs: Settings) -> None:
    seed_workspace(fake, PROD_PATH, guid="99999999-2222-3333-4444-555555555555")
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    serve_registry(fake)
    promote_to("prod", envs, reason="r", actor="a")
    before = len(fake.requests)
    promote_to("prod", envs, reason="r", actor="a")

    writes = [r for r in fake.requests[before:] if r in fake.writes()]
    assert writes == []


def test_same_version_from_elsewhere_is_refused(fake: FakeAzure, envs: Settings) -> None:
    seed_workspace(fake, PROD_PATH, guid="99999999-2222-3333-4444-555555555555")
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    seed_model(fake, "2", path=PROD_PATH)  # prod trained its own v2
    serve_registry(fake)
    with pytest.raises(UserError, match=f"{PROD} already has {MODEL}:2 that did not come from"):
        promote_to("prod", envs, reason="r", actor="a")
    assert not prod_models(fake)


def test_needs_a_registry(fake: FakeAzure, envs: Settings) -> None:
    envs.azure.registry = None
    with pytest.raises(UserError, match=r"^azure\.environments\.prod\.registry is not set"):
        promote_to("prod", envs)
    assert fake.requests == []


def test_refuses_without_a_champion_in_the_source(fake: FakeAzure, envs: Settings) -> None:
    seed_model(fake, "1")
    serve_registry(fake)
    with pytest.raises(UserError, match=f"has no champion in workspace {WS}"):
        promote_to("prod", envs)
    assert not fake.writes()


def test_same_workspace_is_refused(fake: FakeAzure, envs: Settings) -> None:
    envs.azure.environments["prod"] = {"workspace": WS}
    with pytest.raises(UserError, match="source and target are the same workspace"):
        promote_to("prod", envs)


def test_share_and_copy_stages_touch_only_their_own_environment(fake: FakeAzure, envs: Settings) -> None:
    """CI runs `share` as dev's identity and `copy` as prod's: neither stage may reach the other workspace."""
    seed_workspace(fake, PROD_PATH, guid="99999999-2222-3333-4444-555555555555")
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    imports = serve_registry(fake)

    shared = promote_to("prod", envs, reason="r", actor="ci", stage="share")
    assert shared == f"azureml://registries/{REGISTRY}/models/{MODEL}/versions/2"
    assert len(imports) == 1
    assert not [r for r in fake.requests if f"/workspaces/{PROD}" in r.path]
    assert not prod_models(fake)

    before = len(fake.requests)
    copied = promote_to("prod", envs, version="2", reason="r", actor="ci", stage="copy")
    assert copied == f"azureml:{MODEL}:2"
    assert not [r for r in fake.requests[before:] if f"/workspaces/{WS}/" in r.path]
    [put] = prod_models(fake)
    tags = put.json()["properties"]["tags"]
    assert tags["promoted.from"] == shared and tags["data.digest"] == "sha256:" + "2" * 8
    assert tags["promoted.from_workspace"] == WS and "role.champion" in tags


def test_copy_stage_needs_the_shared_version(fake: FakeAzure, envs: Settings) -> None:
    with pytest.raises(UserError, match="stage copy needs the VERSION"):
        promote_to("prod", envs, stage="copy")
    assert fake.requests == []


def test_service_reserved_properties_stay_behind(fake: FakeAzure, envs: Settings) -> None:
    """The source version carries properties the service wrote (`azureml.*`): only the user's travel."""
    seed_workspace(fake, PROD_PATH, guid="99999999-2222-3333-4444-555555555555")
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    fake.arm[f"{WS_PATH}/models/{MODEL}/versions/2".lower()]["properties"]["properties"] = {
        "azureml.datastoreId": f"{WS_PATH}/datastores/workspaceblobstore",
        "AzureML.artifactPrefix": "ExperimentRun/dcid.train_2/model",
        "_azureml.ComputeTargetType": "amlcompute",
        "training.rows": "1800",
    }
    serve_registry(fake)
    promote_to("prod", envs, reason="r", actor="a")

    [put] = prod_models(fake)
    assert put.json()["properties"]["properties"] == {"training.rows": "1800"}
