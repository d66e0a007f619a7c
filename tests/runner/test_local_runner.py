"""The local runner executes AML CLI v2 pipeline YAML written in the official style, unmodified."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from amlops.config import Settings
from amlops.console import UserError
from amlops.runner.local import StepFailed, run_pipeline
from amlops.runner.plan import build_plan

FIXTURES = Path(__file__).parent / "fixtures"
PIPELINES = FIXTURES / "pipelines"


def run(name: str, settings: Settings, **inputs: str):
    return run_pipeline(PIPELINES / name, inputs, settings, quiet=True)


def test_bindings_defaults_and_optional_inputs(settings: Settings) -> None:
    result = run("basic.yml", settings)
    assert result.status == "completed"
    counts = json.loads((result.job_outputs["count_job"]["counts"] / "counts.json").read_text())
    # offset took its component default (0); the optional label was bound from the parent input
    assert counts == {"counts": {"one.txt": 3, "two.txt": 2}, "label": "first"}
    total = json.loads(result.outputs["total"].read_text())
    assert total["total"] == pytest.approx(5 * 2.5)
    # MLflow and lineage variables reach every step, pointing at the configured store
    assert total["tracking_uri"] == settings.tracking_uri
    assert total["experiment"] == "runner-tests"
    assert total["root_run_id"] == result.run_id
    # outputs and logs live under runs/<pipeline>/<run-id>/<job>/
    assert result.run_dir == settings.runs_path / "basic" / result.run_id
    log = (result.run_dir / "count_job" / "user_logs" / "std_log.txt").read_text()
    assert "counted 2 files, label=first" in log
    manifest = json.loads((result.run_dir / "run.json").read_text())
    assert [s["status"] for s in manifest["steps"]] == ["completed", "completed"]


def test_set_overrides_inputs_and_optional_block_is_dropped(settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "mydata"
    data.mkdir()
    (data / "only.txt").write_text("1\n2\n3\n4\n")
    result = run("basic.yml", settings, raw=str(data), scale="1")
    counts = json.loads((result.job_outputs["count_job"]["counts"] / "counts.json").read_text())
    assert counts["counts"] == {"only.txt": 4}
    assert json.loads(result.outputs["total"].read_text())["total"] == 4.0


def test_optional_input_left_unset_drops_its_block(settings: Settings) -> None:
    plan = build_plan(PIPELINES / "nested.yml")
    again = plan.step("again")
    assert again.inputs.get("label") is None
    result = run_pipeline(PIPELINES / "nested.yml", {}, settings, quiet=True)
    command = next(s.command for s in result.steps if s.name == "again")
    assert command is not None and "--label" not in command


def test_nested_pipeline_component_is_flattened_and_its_outputs_followed(settings: Settings) -> None:
    result = run("nested.yml", settings)
    names = [s.name for s in result.steps]
    assert names == ["inner.count", "inner.total", "again", "inline_echo"]
    # the nested pipeline's default offset (100) reached the inner count step: 3+100 and 2+100
    inner_total = json.loads(result.job_outputs["inner.total"]["result"].read_text())
    assert inner_total["total"] == 205
    # `again` read the nested pipeline's output (a uri_file) through ${{parent.jobs.inner.outputs.result}}
    copied = json.loads(
        (
            result.outputs["final"]
            if "final" in result.outputs
            else result.job_outputs["inline_echo"]["copy"] / "copied.json"
        ).read_text()
    )
    assert copied["counts"] == {"result": 1}


def test_parallel_component_runs_mini_batches_in_a_process_pool(settings: Settings) -> None:
    result = run("parallel.yml", settings)
    lines = (result.outputs["scores"] / "parallel_run_step.txt").read_text().splitlines()
    # 5 files in mini-batches of 2, appended in input order; part i holds values i*10 .. i*10+i
    expected = [f"part-{i:03d}.txt {sum(i * 10 + j for j in range(i + 1)) * 3} True" for i in range(5)]
    assert lines == expected
    log = (result.run_dir / "score" / "user_logs" / "std_log.txt").read_text()
    assert "3 mini-batches, 2 workers" in log


def test_parallel_step_runs_from_a_folder_with_a_space(tmp_path: Path) -> None:
    """The runs folder is the user's: a space in it (`amlops demo --out "my demo"`) must reach the parallel
    driver as one argument, not split its spec path in two."""
    settings = Settings(base_dir=tmp_path / "my project")
    result = run("parallel.yml", settings)
    assert " " in str(result.run_dir)
    lines = (result.outputs["scores"] / "parallel_run_step.txt").read_text().splitlines()
    assert len(lines) == 5


def test_parallel_mltable_input_gives_dataframes(settings: Settings, tmp_path: Path) -> None:
    import pandas as pd

    table = tmp_path / "table"
    table.mkdir()
    pd.DataFrame({"id": range(10), "x": range(10)}).to_parquet(table / "part.parquet")
    (table / "MLTable").write_text("paths:\n  - file: ./part.parquet\ntransformations:\n  - read_parquet\n")
    src = tmp_path / "p"
    shutil.copytree(FIXTURES, src)
    spec = (src / "components" / "batch_score.yml").read_text()
    (src / "components" / "batch_score.yml").write_text(
        spec.replace("  data:\n    type: uri_folder", "  data:\n    type: mltable")
    )
    (src / "pipelines" / "table.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json\n"
        "type: pipeline\ninputs:\n  t:\n    type: mltable\n    path: ../t\njobs:\n  score:\n    type: parallel\n"
        "    component: ../components/batch_score.yml\n    inputs:\n      data: ${{parent.inputs.t}}\n"
    )
    shutil.copytree(table, src / "t")
    result = run_pipeline(src / "pipelines" / "table.yml", {}, settings, quiet=True)
    lines = (result.job_outputs["score"]["scores"] / "parallel_run_step.txt").read_text().splitlines()
    assert lines == [f"{i} {i * 2}" for i in range(10)]


def test_failing_step_stops_dependants_with_its_log_tail(settings: Settings) -> None:
    with pytest.raises(StepFailed) as info:
        run("parallel_fail.yml", settings)
    message = str(info.value)
    assert message.startswith("step 'score' of parallel_fail.yml failed (exit 1)")
    assert "ValueError: cannot score part-003.txt" in message
    assert info.value.result.status == "failed"


def test_command_step_failure_names_the_error_line(settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "p"
    shutil.copytree(FIXTURES, src)
    yml = (src / "pipelines" / "basic.yml").read_text()
    (src / "pipelines" / "basic.yml").write_text(
        yml.replace(
            "      scale: ${{parent.inputs.scale}}\n",
            "      scale: ${{parent.inputs.scale}}\n      fail: true\n",
        )
    )
    with pytest.raises(StepFailed) as info:
        run_pipeline(src / "pipelines" / "basic.yml", {}, settings, quiet=True)
    first = str(info.value).splitlines()[0]
    assert first == "step 'total_job' of basic.yml failed (exit 1): error: asked to fail (--fail True)"
    assert [s.status for s in info.value.result.steps] == ["completed", "failed"]


def test_literal_values_are_pasted_unquoted_as_on_azure_ml_paths_are_quoted(
    settings: Settings, tmp_path: Path
) -> None:
    """Azure ML pastes input values into the command as they are: a string with a space becomes two arguments
    there, so it does here too (the step log says why); quoting the placeholder in the component fixes it. A local
    folder with a space in its name stays one argument (Azure ML's mount paths never have one)."""
    data = tmp_path / "my data"
    shutil.copytree(FIXTURES / "data" / "files", data)
    with pytest.raises(StepFailed) as info:
        run("basic.yml", settings, raw=str(data), label="two words")
    assert "unrecognized arguments: words" in str(info.value).splitlines()[0]
    log = Path(info.value.result.steps[0].log or "").read_text()
    assert "# note: input 'label' = 'two words' is pasted into the command unquoted" in log

    src = tmp_path / "p"
    shutil.copytree(FIXTURES, src)
    component = src / "components" / "count.yml"
    component.write_text(
        component.read_text().replace("--label ${{inputs.label}}", "--label '${{inputs.label}}'")
    )
    result = run_pipeline(
        src / "pipelines" / "basic.yml", {"raw": str(data), "label": "two words"}, settings, quiet=True
    )
    counts = json.loads((result.job_outputs["count_job"]["counts"] / "counts.json").read_text())
    assert counts["label"] == "two words"
    assert counts["counts"] == {"one.txt": 3, "two.txt": 2}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda y: y.replace(
                "jobs:",
                "jobs:\n  bad-name:\n    type: command\n    component: ../components/split.yml\n"
                "    inputs: {n: 1}",
                1,
            ),
            "jobs.bad-name: Pipeline node name should be a valid python",
        ),
        (
            lambda y: y.replace("      data: ${{parent.inputs.raw}}\n", ""),
            "job 'count_job' input 'data' (uri_folder) is required",
        ),
        (
            lambda y: y.replace(
                "${{parent.jobs.count_job.outputs.counts}}", "${{parent.jobs.nope.outputs.counts}}"
            ),
            "binds to nope.outputs.counts, but there is no such job",
        ),
        (lambda y: y.replace("../components/total.yml", "../components/missing.yml"), "missing.yml"),
        (lambda y: y.replace("type: pipeline", "type: pipeline\n  oops: [", 1), "basic.yml"),
        (lambda y: y.replace("path: ../data/files", "path: azureml:raw-files:1"), "is an Azure ML asset"),
    ],
    ids=[
        "bad-node-name",
        "missing-input",
        "unknown-job",
        "missing-component",
        "broken-yaml",
        "azureml-asset",
    ],
)
def test_bad_pipelines_give_one_clear_error(
    mutate, expected: str, tmp_path: Path, settings: Settings
) -> None:
    src = tmp_path / "p"
    shutil.copytree(FIXTURES, src)
    path = src / "pipelines" / "basic.yml"
    path.write_text(mutate(path.read_text()))
    with pytest.raises(UserError) as info:
        run_pipeline(path, {}, settings, quiet=True)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message and len(message) < 600


def test_set_errors_name_the_input(settings: Settings) -> None:
    with pytest.raises(UserError, match=r"no input 'nope' \(inputs: label, raw, scale\)"):
        run("basic.yml", settings, nope="1")
    with pytest.raises(UserError, match=r"job 'total_job' input 'scale': expected number, got 'x'"):
        run("basic.yml", settings, scale="x")
    with pytest.raises(UserError, match=r"input 'data': .*/does-not-exist does not exist"):
        run("basic.yml", settings, raw="/tmp/does-not-exist")


def test_parallel_init_failure_is_one_clear_line(settings: Settings, tmp_path: Path) -> None:
    src = tmp_path / "p"
    shutil.copytree(FIXTURES, src)
    script = src / "src" / "batch_score.py"
    script.write_text(
        script.read_text().replace(
            "    factor, fail_on = args.factor, args.fail_on",
            "    raise RuntimeError('model file is corrupt')",
        )
    )
    with pytest.raises(StepFailed) as info:
        run_pipeline(src / "pipelines" / "parallel.yml", {}, settings, quiet=True)
    first = str(info.value).splitlines()[0]
    assert first.endswith("error: init() of batch_score.py failed: RuntimeError: model file is corrupt")


def test_parallel_entry_script_may_use_dataclasses_with_postponed_annotations(
    settings: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "p"
    shutil.copytree(FIXTURES, src)
    script = src / "src" / "batch_score.py"
    script.write_text(
        "from __future__ import annotations\nfrom dataclasses import dataclass\n\n\n"
        "@dataclass\nclass Options:\n    factor: int\n\n\n" + script.read_text().split('"""', 2)[2]
    )
    result = run_pipeline(src / "pipelines" / "parallel.yml", {}, settings, quiet=True)
    assert result.status == "completed"
