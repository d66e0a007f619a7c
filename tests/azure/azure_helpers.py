"""Helpers shared by the Azure tests (not fixtures): seeded workspace resources and models.

Kept out of conftest.py so tests import them by a unique module name (several test folders have a conftest).
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fakeazure import (
    CONTAINER,
    LOCATION,
    STORAGE_ACCOUNT,
    WS_GUID,
    WS_PATH,
    FakeAzure,
    Reply,
)

FIXTURES = Path(__file__).parent / "fixtures"


def seed_workspace(fake: FakeAzure, path: str = WS_PATH, guid: str = WS_GUID) -> None:
    """The workspace and its default blob datastore, as `amlops infra deploy` leaves them."""
    fake.put_resource(
        path,
        {
            "location": LOCATION,
            "properties": {
                "workspaceId": guid,
                "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
                "mlFlowTrackingUri": f"azureml://{LOCATION}.api.azureml.ms/mlflow/v1.0{path}",
            },
        },
    )
    fake.put_resource(
        path + "/datastores/workspaceblobstore",
        {
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": STORAGE_ACCOUNT,
                "containerName": CONTAINER,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "isDefault": True,
                "credentials": {"credentialsType": "AccountKey"},
            },
        },
    )
    key = base64.b64encode(b"not-a-real-key-" * 2).decode()
    fake.on(
        "POST",
        r"/datastores/workspaceblobstore/listSecrets$",
        Reply(200, {"secretsType": "AccountKey", "key": key}),
    )


MODEL = "demand-forecaster"


def seed_model(
    fake: FakeAzure,
    version: str,
    *,
    champion_since: str | None = None,
    path: str = WS_PATH,
    model_type: str = "mlflow_model",
    name: str = MODEL,
) -> None:
    """A registered model version as MLflow leaves it in the workspace. `champion_since` sets the role tag
    that amlops.registry writes (`role.champion` = when the role was assigned)."""
    tags = {"data.digest": f"sha256:{version * 8}", "git.commit": "abc123"}
    if champion_since:
        tags["role.champion"] = champion_since
    fake.put_resource(
        f"{path}/models/{name}/versions/{version}",
        {
            "properties": {
                "modelType": model_type,
                "modelUri": f"azureml://jobs/train_{version}/outputs/artifacts/paths/model/",
                "tags": tags,
                "properties": {},
                "flavors": {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}},
            },
        },
    )


def serve_run_history(fake: FakeAzure, steps: dict[str, str] | None = None) -> None:
    """Run history (found through the workspace's discovery URL): the child runs of any pipeline job."""
    api = f"https://{LOCATION}.api.azureml.ms"
    fake.on("GET", rf"{LOCATION}\.api\.azureml\.ms/discovery$", Reply(200, {"api": api, "history": api}))
    runs = [
        {
            "runId": f"child_{name}",
            "displayName": name,
            "status": status,
            "runType": "azureml.StepRun",
            "properties": {},
            "tags": {},
        }
        for name, status in (steps or {}).items()
    ]
    fake.on("GET", r"/runs/[^/]+/children$", Reply(200, {"value": runs}))
