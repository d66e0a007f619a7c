"""`deploy_champion`: batch endpoint + MLflow deployment payloads, smoke job before the default switch,
idempotency (a second run sends no create), refusal without a champion, endpoint names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from azure_helpers import MODEL, seed_model, serve_run_history
from fakeazure import LOCATION, WS, WS_PATH, FakeAzure, Recorded, Reply, arm_error

from amlops.azure import deploy
from amlops.config import AzureSettings, Settings
from amlops.console import UserError

EP = f"{WS_PATH}/batchEndpoints"


@pytest.fixture
def smoke(tmp_path: Path) -> Path:
    folder = tmp_path / "smoke"
    folder.mkdir()
    (folder / "rows.csv").write_text("date,store,item\n2026-11-01,1,7\n")
    return folder


def serve_batch(fake: FakeAzure, job_status: str = "Completed") -> list[Recorded]:
    """The endpoint's data plane: an invocation creates a batch job (visible through ARM) in `job_status`."""
    invocations: list[Recorded] = []

    def invoke(req: Recorded) -> Reply:
        invocations.append(req)
        name = f"batchjob-{len(invocations)}"
        fake.put_resource(
            f"{WS_PATH}/jobs/{name}",
            {
                "properties": {
                    "jobType": "Pipeline",
                    "status": job_status,
                    "experimentName": "smoke",
                    "jobs": {},
                    "inputs": {},
                    "outputs": {},
                    "settings": {},
                }
            },
        )
        return Reply(
            200, {"id": f"{WS_PATH}/jobs/{name}", "name": name, "properties": {"status": "NotStarted"}}
        )

    fake.on("POST", rf"\.{LOCATION}\.inference\.ml\.azure\.com/jobs$", invoke)
    serve_run_history(fake)

    def scoring_uri(req: Recorded) -> Reply:
        stored = fake._finish(req.path, req.json())
        name = stored["name"]
        stored["properties"]["scoringUri"] = f"https://{name}.{LOCATION}.inference.ml.azure.com/jobs"
        fake.arm[req.path.lower()] = stored
        return Reply(200, stored)

    fake.on("PUT", r"/batchEndpoints/[^/]+$", scoring_uri)
    return invocations


def creates(fake: FakeAzure) -> list[Recorded]:
    return fake.calls("PUT", r"/batchEndpoints/")


def test_first_deploy_creates_endpoint_and_deployment_then_switches_after_smoke(
    fake: FakeAzure, settings: Settings, smoke: Path
) -> None:
    seed_model(fake, "1")
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    invocations = serve_batch(fake)
    result = deploy.deploy_champion(settings, smoke_input=smoke)

    ep = deploy.endpoint_name(MODEL, settings.azure)
    assert result.endpoint == ep and result.deployment == "demand-forecaster-v2"
    assert result.model == f"{MODEL}:2" and result.changed and result.smoke_job == "batchjob-1"
    puts = creates(fake)
    assert [p.path for p in puts] == [
        f"{EP}/{ep}",
        f"{EP}/{ep}/deployments/demand-forecaster-v2",
        f"{EP}/{ep}",
    ]
    first, dep, switch = (p.json() for p in puts)
    assert first["location"] == LOCATION
    assert first["properties"]["authMode"].lower() == "aadtoken"  # Entra ID tokens, no keys
    assert not first["properties"].get("defaults")
    props = dep["properties"]
    # An MLflow model: no scoring script, no environment; the champion's ARM id; the cluster from the config.
    assert props["model"] == {"referenceType": "Id", "assetId": f"{WS_PATH}/models/{MODEL}/versions/2"}
    assert "codeConfiguration" not in props and "environmentId" not in props
    assert props["compute"] == f"{WS_PATH}/computes/cpu-cluster"
    assert props["outputAction"] == "AppendRow" and props["outputFileName"] == "predictions.csv"
    assert props["miniBatchSize"] == 10 and props["retrySettings"]["maxRetries"] == 3
    assert dep["tags"] == {"amlops.model": MODEL, "amlops.version": "2"}
    assert switch["properties"]["defaults"] == {"deploymentName": "demand-forecaster-v2"}
    # The smoke job ran against the new deployment by name, before the switch.
    [call] = invocations
    assert call.headers["azureml-model-deployment"] == "demand-forecaster-v2"
    assert call.headers["Authorization"].startswith("Bearer ")
    smoke_input = call.json()["properties"]["inputData"]["UriFolder"]
    assert smoke_input["jobInputType"] == "UriFolder"
    assert re.fullmatch(
        r"azureml://datastores/workspaceblobstore/paths/LocalUpload/[0-9a-f]{64}/smoke/", smoke_input["uri"]
    )
    assert fake.requests.index(call) < fake.requests.index(switch_req := puts[2])
    assert switch_req.method == "PUT"
    assert any(k.endswith("/smoke/rows.csv") for k in fake.blobs)


def test_second_deploy_with_the_same_champion_sends_no_create(
    fake: FakeAzure, settings: Settings, smoke: Path
) -> None:
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    invocations = serve_batch(fake)
    settings.azure.smoke_input = str(smoke)
    deploy.deploy_champion(settings)
    before = len(fake.requests)
    again = deploy.deploy_champion(settings)

    assert not again.changed and again.smoke_job is None
    after = fake.requests[before:]
    assert {r.method for r in after} == {"GET"}, [repr(r) for r in after if r.method != "GET"]
    assert len(invocations) == 1


def test_new_champion_adds_a_deployment_and_moves_the_default(
    fake: FakeAzure, settings: Settings, smoke: Path
) -> None:
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    serve_batch(fake)
    deploy.deploy_champion(settings, smoke_input=smoke)
    seed_model(fake, "3", champion_since="2026-11-26T08:00:00.000000Z")  # the registry moved the role
    before = len(fake.requests)
    result = deploy.deploy_champion(settings, smoke_input=smoke)

    ep = result.endpoint
    puts = [r for r in fake.requests[before:] if r.method == "PUT" and "/batchEndpoints/" in r.path]
    assert [p.path for p in puts] == [f"{EP}/{ep}/deployments/demand-forecaster-v3", f"{EP}/{ep}"]
    assert puts[1].json()["properties"]["defaults"] == {"deploymentName": "demand-forecaster-v3"}
    # The previous deployment stays for a rollback (a default switch); nothing was deleted.
    assert not [r for r in fake.requests[before:] if r.method == "DELETE"]


def test_failed_smoke_job_keeps_the_old_default(fake: FakeAzure, settings: Settings, smoke: Path) -> None:
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    serve_batch(fake, job_status="Failed")
    with pytest.raises(UserError, match="smoke job failed, so demand-forecaster-v2 was not made the default"):
        deploy.deploy_champion(settings, smoke_input=smoke)
    assert not any((p.json()["properties"].get("defaults") or {}) for p in creates(fake))


def test_refuses_without_a_champion(fake: FakeAzure, settings: Settings) -> None:
    seed_model(fake, "1")  # registered, never promoted
    with pytest.raises(
        UserError, match=rf"model '{MODEL}' has no champion in workspace {WS}: nothing to deploy"
    ):
        deploy.deploy_champion(settings)
    assert not fake.writes()


def test_refuses_a_model_that_is_not_mlflow(fake: FakeAzure, settings: Settings) -> None:
    seed_model(fake, "4", champion_since="2026-11-20T08:00:00.000000Z", model_type="custom_model")
    with pytest.raises(UserError, match="needs an MLflow model"):
        deploy.deploy_champion(settings)
    assert not creates(fake)


def test_missing_compute_is_named(fake: FakeAzure, settings: Settings) -> None:
    settings.azure.compute = None
    with pytest.raises(UserError, match=r"^azure\.compute is not set"):
        deploy.deploy_champion(settings)
    assert fake.requests == []


def test_quota_error_on_deployment_is_advice(fake: FakeAzure, settings: Settings) -> None:
    seed_model(fake, "2", champion_since="2026-11-20T08:00:00.000000Z")
    serve_batch(fake)
    fake.on(
        "PUT",
        r"/deployments/[^/]+$",
        arm_error(
            400,
            "QuotaExceeded",
            "Not enough quota available for Standard_DS3_v2 in SubscriptionId x. Current usage/limit: 8/10.",
        ),
    )
    with pytest.raises(UserError, match=r"^quota exceeded \(QuotaExceeded\): request more quota"):
        deploy.deploy_champion(settings)


NAME_RULE = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")


@pytest.mark.parametrize(
    "model", ["demand-forecaster", "Demand_Forecaster.v2", "9-lives", "x" * 80, "--a--b--"]
)
def test_endpoint_names_are_valid_stable_and_unique_per_workspace(model: str) -> None:
    dev, prod, other = (
        AzureSettings.model_validate({"subscription_id": sub, "resource_group": "rg", "workspace": ws})
        for sub, ws in (("s1", "mlw-dev"), ("s1", "mlw-prod"), ("s2", "mlw-dev"))
    )
    names = {deploy.endpoint_name(model, az) for az in (dev, prod, other)}

    assert len(names) == 3
    for name in names:
        assert 3 <= len(name) <= 32 and NAME_RULE.match(name), name
    assert deploy.endpoint_name(model, dev) == deploy.endpoint_name(model, dev.model_copy())
    dep = deploy.deployment_name(model, "12345")
    assert 3 <= len(dep) <= 32 and NAME_RULE.match(dep) and dep.endswith("-v12345")


def test_missing_smoke_input_fails_before_any_request(
    fake: FakeAzure, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=r"--smoke-input .*nope\.csv: not found"):
        deploy.deploy_champion(settings, smoke_input=tmp_path / "nope.csv")
    assert fake.requests == []
