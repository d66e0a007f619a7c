"""`submit_pipeline` (`amlops run --target azure`): job payload, uploads, status streaming, Ctrl-C."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from azure_helpers import FIXTURES, serve_run_history
from fakeazure import ARM, RG, SUB, WS, WS_PATH, FakeAzure, Recorded, Reply, arm_error

from amlops.azure import jobs
from amlops.azure.client import ml_client
from amlops.config import Settings
from amlops.console import UserError

PIPELINE = FIXTURES / "pipelines" / "training.yml"


def job_puts(fake: FakeAzure) -> list[Recorded]:
    return fake.calls("PUT", rf"{ARM}.*/workspaces/{WS}/jobs/[^/]+$")


class Clock:
    """The job's status over time: GET jobs/<name> answers the current one; each poll sleep moves time on."""

    def __init__(self, fake: FakeAzure, sequence: list[str]) -> None:
        self.sequence = sequence
        self.tick = 0
        self.sleeps: list[float] = []
        fake.on("GET", rf"/workspaces/{WS}/jobs/[^/]+$", self.answer)
        self.fake = fake

    def answer(self, req: Recorded) -> Reply:
        stored = self.fake.arm[req.path.lower()]
        stored["properties"]["status"] = self.sequence[min(self.tick, len(self.sequence) - 1)]
        return Reply(200, stored)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.tick += 1


def submit(settings: Settings, inputs: dict[str, str] | None = None, **kwargs: Any) -> jobs.SubmittedJob:
    return jobs.submit_pipeline(PIPELINE, inputs or {}, settings, **kwargs)


def test_pipeline_job_payload(fake: FakeAzure, settings: Settings) -> None:
    submitted = submit(settings, wait=False)

    [put] = job_puts(fake)
    assert put.path == f"{WS_PATH}/jobs/{submitted.name}"
    assert submitted.name.startswith("training-")
    body = put.json()["properties"]
    assert body["jobType"] == "Pipeline"
    assert body["experimentName"] == "amlops-test"
    assert body["settings"]["default_compute"] == f"{WS_PATH}/computes/cpu-cluster"
    # The pipeline inputs: the local folder was uploaded to the default datastore, primitives are literals.
    raw = body["inputs"]["raw_data"]
    assert raw["jobInputType"] == "uri_folder"
    assert raw["uri"].startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    assert raw["uri"].endswith("/raw/")
    assert body["inputs"]["seed"] == {"jobInputType": "literal", "value": "42"}
    assert body["outputs"]["model"]["jobOutputType"] == "mlflow_model"
    # The bindings between steps are kept as AML expressions, each step points at a registered component.
    steps = body["jobs"]
    assert set(steps) == {"prep", "train"}
    assert steps["prep"]["inputs"]["raw"]["value"] == "${{parent.inputs.raw_data}}"
    assert steps["train"]["inputs"]["data"]["value"] == "${{parent.jobs.prep.outputs.clean}}"
    assert steps["train"]["inputs"]["seed"]["value"] == "${{parent.inputs.seed}}"
    assert steps["train"]["outputs"]["model"]["value"] == "${{parent.outputs.model}}"
    for step in steps.values():
        assert "/components/azureml_anonymous/versions/" in step["componentId"]
    assert submitted.studio_url and submitted.name in submitted.studio_url


def test_components_code_and_data_are_uploaded(fake: FakeAzure, settings: Settings) -> None:
    submit(settings, wait=False)

    components = fake.calls("PUT", r"/components/azureml_anonymous/versions/")
    specs = {c.json()["properties"]["componentSpec"]["display_name"]: c.json() for c in components}
    assert set(specs) == {"Prep (test)", "Train (test)"}
    train = specs["Train (test)"]["properties"]["componentSpec"]
    assert train["command"].startswith("python -m demo.step --in ${{inputs.data}}")
    assert train["code"].startswith(f"azureml:{WS_PATH}/codes/")
    assert train["environment"].startswith(f"azureml:{WS_PATH}/environments/CliV2AnonymousEnvironment/")
    envs = fake.calls("PUT", r"/environments/CliV2AnonymousEnvironment/versions/")
    assert "pandas==3.1.0" in envs[0].json()["properties"]["condaFile"]
    # The code folder went to blob storage through the SAS the service handed out.
    blobs = [r.path for r in fake.calls("PUT", r"\.blob\.core\.windows\.net/") if "comp" not in r.query]
    assert any(p.endswith("/src/demo/step.py") for p in blobs)
    assert any(p.endswith("/raw/sales.csv") for p in blobs)
    uploaded = [k for k in fake.blobs if k.endswith("/raw/sales.csv")]
    assert fake.blobs[uploaded[0]] == (FIXTURES / "data" / "raw" / "sales.csv").read_bytes()


def test_inputs_override_the_yaml(fake: FakeAzure, settings: Settings, tmp_path: Path) -> None:
    local = tmp_path / "snapshot"
    shutil.copytree(FIXTURES / "data" / "raw", local)
    submitted = submit(
        settings,
        {"raw_data": str(local), "seed": "7", "max_bad_row_share": "0.1"},
        wait=False,
        compute="gpu-cluster",
    )

    body = job_puts(fake)[0].json()["properties"]
    assert body["inputs"]["seed"]["value"] == "7"
    assert body["inputs"]["max_bad_row_share"]["value"] == "0.1"
    assert body["inputs"]["raw_data"]["uri"].endswith("/snapshot/")
    assert body["settings"]["default_compute"].endswith("/computes/gpu-cluster")
    assert body["tags"]["amlops.input.seed"] == "7"
    assert submitted.status


def test_data_asset_input(fake: FakeAzure, settings: Settings) -> None:
    submit(settings, {"raw_data": "demand-raw@3"}, wait=False)

    raw = job_puts(fake)[0].json()["properties"]["inputs"]["raw_data"]
    assert raw == {"jobInputType": "uri_folder", "uri": f"{WS_PATH}/data/demand-raw/versions/3"}
    # Nothing was uploaded for the data: only the code folder went to storage.
    assert not [k for k in fake.blobs if k.endswith("sales.csv")]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"nope": "1"}, "input 'nope' is not an input of the pipeline"),
        ({"seed": "seven"}, "input seed: 'seven' is not a int"),
        ({"raw_data": "no/such/folder"}, "neither a local path nor a data asset"),
    ],
)
def test_bad_inputs_are_one_line(
    fake: FakeAzure, settings: Settings, inputs: dict[str, str], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        submit(settings, inputs, wait=False)
    assert not job_puts(fake)


def test_missing_workspace_key_names_it(fake: FakeAzure, settings: Settings) -> None:
    settings.azure.subscription_id = None
    with pytest.raises(UserError) as info:
        submit(settings, wait=False)
    assert str(info.value) == (
        "azure.subscription_id is not set "
        "(run `amlops infra deploy --env dev` or set AMLOPS_AZURE__SUBSCRIPTION_ID)"
    )
    assert fake.requests == []


def test_environment_settings_pick_the_workspace(fake: FakeAzure, settings: Settings) -> None:
    settings.azure.environments = {"prod": {"workspace": "mlw-prod", "compute": "cpu-prod"}}
    from azure_helpers import seed_workspace

    prod_path = WS_PATH.replace(WS, "mlw-prod")
    seed_workspace(fake, prod_path)
    submit(settings, wait=False, env="prod")

    [put] = fake.calls("PUT", r"/workspaces/mlw-prod/jobs/")
    assert put.json()["properties"]["settings"]["default_compute"] == f"{prod_path}/computes/cpu-prod"
    settings.azure.environments = {"prod": {}}
    settings.azure.compute = None
    with pytest.raises(UserError, match=r"azure\.environments\.prod\.compute is not set"):
        submit(settings, wait=False, env="prod")


def test_wait_streams_until_completed(
    fake: FakeAzure, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock(fake, ["NotStarted", "Running", "Running", "Completed"])
    serve_run_history(fake, {"prep": "Completed", "train": "Running"})
    submitted = jobs.submit_pipeline(PIPELINE, {}, settings, wait=False)
    ml = ml_client(settings)
    capsys.readouterr()
    status = jobs.wait_for_job(ml, submitted.name, settings.azure, sleep=clock.sleep, poll_seconds=5)

    assert status == "Completed"
    assert clock.sleeps == [5, 5, 5]
    assert fake.calls("GET", rf"/runs/{submitted.name}/children$")
    # Not a terminal (CI): one progress line per change, not one per poll.
    lines = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith(f"job {submitted.name}:")
    ]
    assert lines == [
        f"job {submitted.name}: NotStarted; running: train Running",
        f"job {submitted.name}: Running; running: train Running",
        f"job {submitted.name}: Completed; running: train Running",
    ]


def test_failed_job_names_the_failed_step(fake: FakeAzure, settings: Settings) -> None:
    Clock(fake, ["Failed"])
    serve_run_history(fake, {"prep": "Completed", "train": "Failed"})
    with pytest.raises(UserError, match=r"Failed \(failed steps: train\).*az ml job download"):
        jobs.submit_pipeline(PIPELINE, {}, settings, wait=True)


def test_ctrl_c_prints_what_runs_and_offers_cancel(
    fake: FakeAzure, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    Clock(fake, ["Running"])
    serve_run_history(fake, {"prep": "Completed", "train": "Running"})
    fake.on(
        "POST",
        r"/jobs/[^/]+/cancel$",
        Reply(
            202,
            headers={
                "Location": f"https://{ARM}{WS_PATH}/operationResults/cancel-1?api-version=2024-01-01-preview",
            },
        ),
    )
    fake.on("GET", r"/operationResults/cancel-1$", Reply(200, {"status": "Succeeded"}))
    submitted = jobs.submit_pipeline(PIPELINE, {}, settings, wait=False)
    ml = ml_client(settings)

    def ctrl_c(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(UserError) as info:
        jobs.wait_for_job(ml, submitted.name, settings.azure, sleep=ctrl_c, confirm=lambda: True)
    assert info.value.exit_code == 130
    assert "cancel requested" in capsys.readouterr().out
    assert str(info.value) == f"interrupted: cancel requested for job {submitted.name}"
    assert fake.calls("POST", rf"/jobs/{submitted.name}/cancel$")


def test_ctrl_c_without_cancel_prints_the_command(
    fake: FakeAzure, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    Clock(fake, ["Running"])
    serve_run_history(fake, {"prep": "Running"})
    submitted = jobs.submit_pipeline(PIPELINE, {}, settings, wait=False)
    capsys.readouterr()
    ml = ml_client(settings)

    def ctrl_c(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(UserError):
        jobs.wait_for_job(ml, submitted.name, settings.azure, sleep=ctrl_c, confirm=lambda: False)
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert f"job {submitted.name} is still Running" in text
    assert "step prep: Running" in text
    assert f"az ml job cancel -n {submitted.name} -g {RG} -w {WS} --subscription {SUB}" in text
    assert not fake.calls("POST", r"/cancel$")


def test_authorisation_error_is_one_line(fake: FakeAzure, settings: Settings) -> None:
    fake.on(
        "PUT",
        r"/jobs/[^/]+$",
        arm_error(
            403,
            "AuthorizationFailed",
            (
                "The client 'me@example.com' does not have authorization to perform action "
                "'Microsoft.MachineLearningServices/workspaces/jobs/write'."
            ),
        ),
    )
    with pytest.raises(UserError) as info:
        submit(settings, wait=False)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"not authorised on workspace '{WS}'")
    assert "AzureML Data Scientist" in message


def test_the_projects_training_pipeline(fake: FakeAzure, settings: Settings) -> None:
    """pipelines/training.yml as `amlops run ... --target azure` sends it, on a registered data asset."""
    training = Path(__file__).resolve().parents[2] / "pipelines" / "training.yml"
    submitted = jobs.submit_pipeline(training, {"raw_folder": "demand@3", "seed": "7"}, settings, wait=False)

    [put] = job_puts(fake)
    body = put.json()["properties"]
    assert put.path == f"{WS_PATH}/jobs/{submitted.name}"
    assert body["settings"]["default_compute"] == f"{WS_PATH}/computes/cpu-cluster"
    assert set(body["jobs"]) == {"prep", "train", "evaluate", "register"}
    inputs = body["inputs"]
    assert inputs["raw_folder"] == {"jobInputType": "uri_folder", "uri": f"{WS_PATH}/data/demand/versions/3"}
    assert "raw_file" not in inputs  # declared without a path: an unset optional input, left out
    # Lineage: the data asset is passed on as data_uri, which the train and register steps record.
    assert inputs["data_uri"] == {"jobInputType": "literal", "value": "azureml:demand:3"}
    assert inputs["seed"]["value"] == "7"
    assert inputs["schema"]["jobInputType"] == "uri_file"  # the schema file next to the YAML was uploaded
    assert inputs["schema"]["uri"].endswith("/demand.yaml")
    steps = body["jobs"]
    assert steps["prep"]["inputs"]["raw_folder"]["value"] == "${{parent.inputs.raw_folder}}"
    assert steps["evaluate"]["inputs"]["model"]["value"] == "${{parent.jobs.train.outputs.model}}"
    assert steps["register"]["inputs"]["verdict"]["value"] == "${{parent.jobs.evaluate.outputs.verdict}}"
    assert steps["register"]["inputs"]["run_info"]["value"] == "${{parent.jobs.train.outputs.run_info}}"
    names = {c.json()["properties"]["componentSpec"]["name"] for c in fake.calls("PUT", r"/components/")}
    assert names == {"azureml_anonymous"}
    commands = [
        c.json()["properties"]["componentSpec"]["command"] for c in fake.calls("PUT", r"/components/")
    ]
    assert any(c.startswith("python -m amlops.steps.train") for c in commands)


def test_mlflow_model_uri_inputs_become_model_assets(
    fake: FakeAzure, settings: Settings, tmp_path: Path
) -> None:
    """`models:/name@champion` (what local runs take) resolves through the workspace's role tags."""
    from azure_helpers import seed_model

    seed_model(fake, "4", champion_since="2026-11-20T08:00:00.000000Z")
    monitoring = Path(__file__).resolve().parents[2] / "pipelines" / "monitoring.yml"
    current = tmp_path / "current"
    current.mkdir()
    (current / "rows.csv").write_text("date,units_sold\n2026-11-01,3\n")
    jobs.submit_pipeline(
        monitoring,
        {"current_data": str(current), "model": "models:/demand-forecaster@champion"},
        settings,
        wait=False,
    )

    inputs = job_puts(fake)[0].json()["properties"]["inputs"]
    assert inputs["model"] == {
        "jobInputType": "mlflow_model",
        "uri": f"{WS_PATH}/models/demand-forecaster/versions/4",
    }
    assert inputs["current_data"]["uri"].endswith("/current/")
