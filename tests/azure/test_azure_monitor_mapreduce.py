"""pipelines/monitoring_mapreduce.yml submitted with `--target azure`: the job JSON azure-ai-ml sends."""

from __future__ import annotations

from pathlib import Path

from azure_helpers import seed_model
from fakeazure import ARM, WS, WS_PATH, FakeAzure, Recorded

from amlops.azure import jobs
from amlops.config import Settings

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "monitoring_mapreduce.yml"
DATASTORE_URL = "azureml://datastores/workspaceblobstore/paths/clickstream/2026-11/"
ABFS_URL = "abfss://monitoring@lakeacct.dfs.core.windows.net/clickstream/2026-11/"


def _job_put(fake: FakeAzure) -> Recorded:
    [put] = fake.calls("PUT", rf"{ARM}.*/workspaces/{WS}/jobs/[^/]+$")
    return put


def _submit(fake: FakeAzure, settings: Settings, current: str, **extra: str) -> dict:  # type: ignore[type-arg]
    seed_model(fake, "4", champion_since="2026-11-20T08:00:00.000000Z")
    inputs = {"current_data": current, "model": "models:/demand-forecaster@champion", **extra}
    jobs.submit_pipeline(PIPELINE, inputs, settings, wait=False)
    return _job_put(fake).json()["properties"]  # type: ignore[no-any-return]


def test_map_is_a_parallel_step_sized_by_pipeline_inputs(fake: FakeAzure, settings: Settings) -> None:
    body = _submit(
        fake,
        settings,
        DATASTORE_URL,
        instance_count="8",
        max_concurrency_per_instance="4",
        mini_batch_size="2",
    )
    assert body["jobType"] == "Pipeline"
    # A datastore URL is passed through as it is (no upload): the parallel step mounts it.
    assert body["inputs"]["current_data"] == {"jobInputType": "uri_folder", "uri": DATASTORE_URL}
    assert body["inputs"]["model"]["uri"] == f"{WS_PATH}/models/demand-forecaster/versions/4"
    assert body["inputs"]["instance_count"] == {"jobInputType": "literal", "value": "8"}
    steps = body["jobs"]
    assert set(steps) == {"map", "reduce"}
    mapper = steps["map"]
    assert mapper["type"] == "parallel"
    # The sizing travels as bindings that Azure ML resolves from the pipeline inputs at run time.
    assert mapper["resources"]["instance_count"] == "${{parent.inputs.instance_count}}"
    assert mapper["max_concurrency_per_instance"] == "${{parent.inputs.max_concurrency_per_instance}}"
    assert mapper["mini_batch_size"] == "${{parent.inputs.mini_batch_size}}"
    assert mapper["inputs"]["current_data"]["value"] == "${{parent.inputs.current_data}}"
    assert steps["reduce"]["inputs"]["partials"]["value"] == "${{parent.jobs.map.outputs.partials}}"
    assert steps["reduce"]["outputs"]["result"]["value"] == "${{parent.outputs.result}}"


def test_map_component_is_the_parallel_entry_with_its_contract(fake: FakeAzure, settings: Settings) -> None:
    _submit(fake, settings, ABFS_URL)
    specs = [c.json()["properties"]["componentSpec"] for c in fake.calls("PUT", r"/components/")]
    [parallel] = [s for s in specs if s.get("type") == "parallel"]
    task = parallel["task"]
    assert task["entry_script"] == "amlops/steps/monitor_map.py"
    assert task["type"] == "run_function"
    # Per-row output is the summary line (append_row_to); the partials are files the entry writes itself.
    assert task["append_row_to"] == "${{outputs.summary}}"
    assert "--partials ${{outputs.partials}}" in task["program_arguments"]
    assert "--output " not in task["program_arguments"]  # the driver's own reserved argument
    assert parallel["input_data"] == "${{inputs.current_data}}"
    assert parallel["mini_batch_error_threshold"] == 0
    [command] = [s for s in specs if s.get("type") == "command"]
    assert command["command"].startswith("python -m amlops.steps.monitor_reduce")


def test_abfs_current_data_passes_through(fake: FakeAzure, settings: Settings) -> None:
    body = _submit(fake, settings, ABFS_URL)
    assert body["inputs"]["current_data"] == {"jobInputType": "uri_folder", "uri": ABFS_URL}
    # Nothing of the current data was uploaded: only code snapshots went to blob storage.
    uploads = list(fake.blobs)
    assert any("monitor_map.py" in k for k in uploads)  # the code snapshot went up
    assert not [k for k in uploads if "clickstream" in k]
