"""Schedules: code-built objects match pipelines/*_schedule.yml; create, list and disable on the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from azure_helpers import MODEL, seed_model
from fakeazure import WS_PATH, FakeAzure

from amlops.azure import schedules
from amlops.config import Settings
from amlops.console import UserError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_settings(settings: Settings) -> Settings:
    """The Azure settings of the fixture, with the repository's pipelines/ (the real YAML files)."""
    settings.base_dir = REPO
    return settings


def _yaml(which: str) -> Any:
    from azure.ai.ml.entities._load_functions import load_schedule

    return load_schedule(REPO / "pipelines" / f"{which}_schedule.yml")


@pytest.mark.parametrize("which", ["monitoring", "training"])
def test_code_and_yaml_build_the_same_schedule(repo_settings: Settings, which: schedules.Which) -> None:
    az = repo_settings.azure.model_copy(update={"compute": None})  # the YAML leaves compute to --set
    from_code = schedules.build_schedule(which, repo_settings, az)._to_dict()
    from_yaml = _yaml(which)._to_dict()

    code_inputs = from_code["create_job"]["inputs"]
    if which == "training":
        # The commit is stamped when the schedule is created (the code it uploads); the YAML cannot know it.
        assert code_inputs.pop("git_commit") and from_yaml["create_job"]["inputs"].pop("git_commit") == ""
        # The same schema file: absolute from amlops.yaml, relative to the YAML file in the YAML.
        code_schema, yaml_schema = (
            code_inputs["schema"]["path"],
            from_yaml["create_job"]["inputs"]["schema"]["path"],
        )
        assert (
            Path(code_schema.removeprefix("azureml:"))
            == (REPO / "pipelines" / yaml_schema.removeprefix("azureml:")).resolve()
        )
        code_inputs["schema"] = from_yaml["create_job"]["inputs"]["schema"]
    assert from_code == from_yaml
    # The comparison sees the fields that matter (two empty dicts would compare equal and prove nothing).
    assert from_yaml["trigger"]["expression"] == (
        az.monitoring_cron if which == "monitoring" else az.training_cron
    )
    assert from_yaml["trigger"]["time_zone"] == "UTC"
    assert from_yaml["create_job"]["jobs"]


def test_config_changes_show_up_in_the_schedule(repo_settings: Settings) -> None:
    az = repo_settings.azure.model_copy(
        update={"monitoring_cron": "0 5 * * *", "schedule_time_zone": "W. Europe Standard Time"}
    )
    built = schedules.build_schedule("monitoring", repo_settings, az, model="azureml:m:3")._to_dict()

    assert built["trigger"] == {
        "type": "cron",
        "expression": "0 5 * * *",
        "time_zone": "W. Europe Standard Time",
    }
    assert built["create_job"]["inputs"]["model"]["path"] == "azureml:m:3"
    assert built["create_job"]["settings"]["default_compute"] == "azureml:cpu-cluster"
    assert built != _yaml("monitoring")._to_dict()


def test_create_sends_both_schedules(fake: FakeAzure, repo_settings: Settings) -> None:
    seed_model(fake, "2", champion_since="2026-11-01T10:00:00.000000Z")
    seed_model(fake, "3")
    names = schedules.create_schedules(repo_settings)

    assert names == ["amlops-monitoring", "amlops-training"]
    puts = {
        r.path.rsplit("/", 1)[-1]: r.json()["properties"] for r in fake.calls("PUT", r"/schedules/[^/]+$")
    }
    mon = puts["amlops-monitoring"]
    assert mon["trigger"] == {"triggerType": "Cron", "expression": "0 6 * * 1", "timeZone": "UTC"}
    assert mon["action"]["actionType"] == "CreateJob"
    job = mon["action"]["jobDefinition"]
    assert job["jobType"] == "Pipeline"
    assert job["experimentName"] == "amlops-monitoring"
    assert job["settings"]["default_compute"] == f"{WS_PATH}/computes/cpu-cluster"
    assert job["inputs"]["current_data"] == {
        "jobInputType": "uri_folder",
        "uri": "azureml://datastores/workspaceblobstore/paths/amlops/current/",
    }
    # The champion (v2, not the newer v3) is pinned; unset optional references are left out.
    assert job["inputs"]["model"] == {
        "jobInputType": "mlflow_model",
        "uri": f"{WS_PATH}/models/{MODEL}/versions/2",
    }
    assert "reference_profile" not in job["inputs"]
    assert job["jobs"]["monitor"]["inputs"]["current_data"]["value"] == "${{parent.inputs.current_data}}"
    assert mon["tags"]["amlops.model"] == f"azureml:{MODEL}:2"
    train = puts["amlops-training"]
    assert train["trigger"]["expression"] == "0 3 1 * *"
    tjob = train["action"]["jobDefinition"]
    assert tjob["experimentName"] == "amlops-demand"
    assert tjob["inputs"]["raw_folder"]["uri"] == "azureml://datastores/workspaceblobstore/paths/amlops/raw/"
    assert tjob["inputs"]["data_uri"] == {
        "jobInputType": "literal",
        "value": "azureml://datastores/workspaceblobstore/paths/amlops/raw/",
    }
    assert set(tjob["jobs"]) == {"prep", "train", "evaluate", "register"}


def test_monitoring_schedule_needs_a_champion(fake: FakeAzure, repo_settings: Settings) -> None:
    seed_model(fake, "1")
    with pytest.raises(UserError, match="has no champion"):
        schedules.create_schedules(repo_settings, which="monitoring")
    assert not fake.calls("PUT", r"/schedules/")


def test_list_and_disable(fake: FakeAzure, repo_settings: Settings) -> None:
    schedules.create_schedules(repo_settings, which="training")
    listed = schedules.list_schedules(repo_settings)
    assert [(s.name, s.enabled, s.expression, s.time_zone, s.which) for s in listed] == [
        ("amlops-training", True, "0 3 1 * *", "UTC", "training")
    ]
    [get] = fake.calls("GET", r"/schedules$")
    assert get.query["listViewType"] == ["All"]

    before = len(fake.requests)
    done = schedules.disable_schedules(repo_settings)  # monitoring was never created: a warning, not an error
    assert done == ["amlops-training"]
    [put] = [r for r in fake.requests[before:] if r.method == "PUT"]
    assert put.path == f"{WS_PATH}/schedules/amlops-training"
    assert put.json()["properties"]["isEnabled"] is False
    assert put.json()["properties"]["trigger"]["expression"] == "0 3 1 * *"
