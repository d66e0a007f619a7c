"""Local runner parity with Azure ML (issue 17): sweep nodes, the default artifacts output, datastore URIs, pipeline
settings, reuse, distributed jobs, `--set` forms, and the refusals that come before any step runs.

Fixtures in fixtures/parity/ are written from the CLI v2 YAML reference (reference-yaml-job-pipeline,
reference-yaml-job-sweep, reference-yaml-job-command, reference-yaml-data) and run unmodified."""

from __future__ import annotations

import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from amlops.config import Settings
from amlops.errors import UsageError, UserError
from amlops.runner import launch
from amlops.runner.local import StepFailed, run_pipeline
from amlops.runner.overrides import RunOverrides, parse_run_sets
from amlops.runner.plan import build_plan, resolve_location
from amlops.runner.remote import check_http_input
from amlops.runner.sweep import Trial, best_trial, sample

PARITY = Path(__file__).parent / "fixtures" / "parity"
PIPELINES = PARITY / "pipelines"
BASIC = Path(__file__).parent / "fixtures" / "pipelines" / "basic.yml"


# -- refusals, before any step runs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "job", "kind", "why"),
    [
        ("automl.yml", "classify", "automl", "AutoML chooses and trains models on Azure ML compute"),
        ("spark.yml", "wrangle", "spark", "Spark jobs run on Azure ML's serverless Spark"),
        ("flow.yml", "answer", "flow", "prompt flows need the promptflow runtime"),
        ("import.yml", "fetch", "import", "import jobs copy from external databases"),
    ],
)
def test_unrunnable_node_types_are_refused_in_one_line_before_any_step(
    settings: Settings, fixture: str, job: str, kind: str, why: str
) -> None:
    with pytest.raises(UserError) as err:
        run_pipeline(PIPELINES / fixture, {}, settings, quiet=True)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"{fixture}: job {job!r} has type {kind!r}, which the local runner does not run ("
    )
    assert why in message
    assert message.endswith("; run this pipeline with --target azure")
    # automl.yml has a runnable step first: nothing ran, no run folder was made
    assert not settings.runs_path.exists()


def test_a_pipeline_component_file_is_named_as_such(settings: Settings) -> None:
    with pytest.raises(UserError) as err:
        run_pipeline(PIPELINES / "component.yml", {}, settings, quiet=True)
    assert str(err.value) == (
        f"{PIPELINES / 'component.yml'}: this is a pipeline *component* (a reusable definition), not a pipeline "
        "job; reference it from a pipeline job (jobs.<name>.component: ./component.yml, with its inputs bound) and "
        "run that file with `amlops run`"
    )


def test_asset_references_keep_their_azureml_prefix() -> None:
    # load_job strips `azureml:` from `azureml:raw-data:3`; the message shows what the YAML says
    with pytest.raises(UserError, match=r"'azureml:raw-data:3' is an Azure ML asset"):
        resolve_location("raw-data:3", Path("/"), "input 'raw'")
    with pytest.raises(UserError, match=r"'azureml:raw-data@latest' is an Azure ML asset"):
        resolve_location("azureml:raw-data@latest", Path("/"), "input 'raw'")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_https_input_says_network_and_a_missing_one_says_not_found(tmp_path: Path) -> None:
    with pytest.raises(UserError) as err:
        check_http_input(f"http://127.0.0.1:{_closed_port()}/data.csv", "job 'prep' input 'raw'", timeout=5)
    assert "cannot reach" in str(err.value) and "(network:" in str(err.value)
    assert "not found" not in str(err.value)

    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "here.csv").write_text("a\n")
        base = f"http://127.0.0.1:{server.server_address[1]}"
        check_http_input(f"{base}/here.csv", "input")  # reachable: no error
        with pytest.raises(UserError, match=r"missing\.csv not found \(HTTP 404\)"):
            check_http_input(f"{base}/missing.csv", "input")
    finally:
        server.shutdown()


# -- --set forms ------------------------------------------------------------------------------------------------------
def test_set_accepts_pipeline_inputs_step_inputs_and_outputs() -> None:
    sets = parse_run_sets(
        [
            "inputs.raw=data/",
            "jobs.count_job.inputs.offset=10",
            "jobs.outer.inner.inputs.x=1",
            "outputs.total=t.json",
        ]
    )
    assert sets == RunOverrides(
        inputs={"raw": "data/"},
        job_inputs={"count_job": {"offset": "10"}, "outer.inner": {"x": "1"}},
        outputs={"total": "t.json"},
    )
    with pytest.raises(
        UsageError, match=r"expected inputs.<name>=<value>, jobs.<job>.inputs.<name>=<value> or outputs"
    ):
        parse_run_sets(["offset=1"])
    with pytest.raises(UsageError, match=r"--set outputs.<name>=…"):
        parse_run_sets(["jobs.total_job.outputs.result=x"])


def test_set_messages_point_at_the_form_that_applies() -> None:
    with pytest.raises(UserError) as err:
        build_plan(BASIC, RunOverrides(inputs={"offset": "1"}))
    assert str(err.value).endswith(
        "--set inputs.offset: the pipeline has no input 'offset' (inputs: label, raw, scale); to set job "
        "'count_job''s own input use --set jobs.count_job.inputs.offset=…"
    )
    with pytest.raises(UserError, match=r"'total' is a pipeline output: use --set outputs.total=<path>"):
        build_plan(BASIC, RunOverrides(inputs={"total": "x"}))
    with pytest.raises(UserError, match=r"the pipeline has no job 'nope' \(jobs: count_job, total_job\)"):
        build_plan(BASIC, RunOverrides(job_inputs={"nope": {"x": "1"}}))
    with pytest.raises(
        UserError, match=r"job 'count_job' has no input 'nope' \(inputs: data, label, offset\)"
    ):
        build_plan(BASIC, RunOverrides(job_inputs={"count_job": {"nope": "1"}}))


def test_step_input_and_output_overrides_take_effect(settings: Settings, tmp_path: Path) -> None:
    sink = tmp_path / "elsewhere" / "total.json"
    sets = RunOverrides(job_inputs={"count_job": {"offset": "10"}}, outputs={"total": str(sink)})
    result = run_pipeline(BASIC, sets, settings, quiet=True)
    counts = json.loads((result.job_outputs["count_job"]["counts"] / "counts.json").read_text())
    assert counts["counts"] == {"one.txt": 13, "two.txt": 12}  # offset 10 instead of the default 0
    assert json.loads(sink.read_text())["total"] == pytest.approx(25 * 2.5)


# -- sweep ----------------------------------------------------------------------------------------------------------
def test_a_sweep_finds_the_best_trial_by_its_logged_metric_and_exposes_its_outputs(
    settings: Settings,
) -> None:
    result = run_pipeline(PIPELINES / "sweep.yml", {}, settings, quiet=True)
    summary = json.loads((result.run_dir / "sweep_step" / "sweep.json").read_text())
    trials = summary["trials"]
    # grid over learning_rate [0.1, 0.01] x max_depth [2, 4, 8], capped by limits.max_total_trials: 4
    assert [t["params"] for t in trials] == [
        {"learning_rate": 0.1, "max_depth": 2},
        {"learning_rate": 0.1, "max_depth": 4},
        {"learning_rate": 0.1, "max_depth": 8},
        {"learning_rate": 0.01, "max_depth": 2},
    ]
    # each metric was read back from the trial's own MLflow run
    assert [t["metric"] for t in trials] == pytest.approx([4.0, 0.0, 16.0, 4.81])
    assert summary["best"] == "sweep_step/trial_1"
    best_model = json.loads((result.outputs["best_model"] / "model.json").read_text())
    assert best_model == {"learning_rate": 0.1, "max_depth": 4, "loss": 0.0}
    # the downstream step bound ${{parent.jobs.sweep_step.outputs.model_output}} and got the best trial's
    copied = json.loads((result.job_outputs["read_best"]["copy"] / "best.json").read_text())
    assert copied == best_model
    assert (
        "early_termination median_stopping (evaluation_interval=1 delay_evaluation=1): applied"
        in " ".join(summary["notes"])
    )

    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(trials[1]["mlflow_run_id"])
    assert run.data.metrics["val_loss"] == 0.0 and run.data.params["max_depth"] == "4"


def test_best_trial_follows_the_goal_and_ignores_trials_without_the_metric() -> None:
    trials = [
        Trial(0, {}, "t0", "completed", 0.5),
        Trial(1, {}, "t1", "completed", 0.9),
        Trial(2, {}, "t2", "failed", 0.1),
        Trial(3, {}, "t3", "completed", None),
    ]
    assert best_trial(trials, "maximize").name == "t1"  # type: ignore[union-attr]
    assert best_trial(trials, "minimize").name == "t0"  # type: ignore[union-attr]
    assert best_trial(trials[2:], "minimize") is None


def test_search_space_distributions_sample_within_their_definitions() -> None:
    space = {
        "a": {"type": "choice", "values": ["x", "y"]},
        "b": {"type": "randint", "upper": 5},
        "c": {"type": "uniform", "min_value": 1.0, "max_value": 2.0},
        "d": {"type": "loguniform", "min_value": -3.0, "max_value": -1.0},
        "e": {"type": "quniform", "min_value": 0.0, "max_value": 10.0, "q": 2},
        "f": {"type": "normal", "mu": 0.0, "sigma": 1.0},
        "g": {"type": "qlognormal", "mu": 0.0, "sigma": 1.0, "q": 0.5},
    }
    spec = {
        "search_space": space,
        "sampling_algorithm": {"type": "random", "seed": 7},
        "max_total_trials": 200,
    }
    drawn, notes = sample(spec, seed=1)
    assert len(drawn) == 200 and "random seed 7" in notes
    assert {p["a"] for p in drawn} == {"x", "y"}
    assert {p["b"] for p in drawn} == set(range(5))
    assert all(1.0 <= p["c"] <= 2.0 for p in drawn)
    assert all(0.0497 <= p["d"] <= 0.3679 for p in drawn)  # exp(-3) .. exp(-1)
    assert all(p["e"] % 2 == 0 for p in drawn)
    assert all(p["g"] % 0.5 == 0 for p in drawn)
    assert drawn == sample(spec, seed=99)[0]  # the YAML's seed wins: the same trials again

    bayes, notes = sample({**spec, "sampling_algorithm": "bayesian", "max_total_trials": 3}, seed=1)
    assert len(bayes) == 3 and "bayesian sampling is approximated by random sampling locally" in notes
    with pytest.raises(UserError, match="grid supports only choice distributions"):
        sample({**spec, "sampling_algorithm": "grid"}, seed=1)


# -- ./outputs, datastores, settings ---------------------------------------------------------------------------------
def test_a_later_step_binds_the_default_output_laid_out_as_the_artifact_store(settings: Settings) -> None:
    result = run_pipeline(PIPELINES / "artifacts.yml", {}, settings, quiet=True)
    copied = result.job_outputs["read"]["copy"]
    assert (copied / "answer.txt").read_text() == "42\n"
    assert (copied / "note.txt").read_text() == "logged\n"
    store = result.job_outputs["write"]["default"]
    assert store == result.run_dir / "write" / "default"
    assert sorted(p.name for p in store.iterdir()) == ["logs", "outputs", "user_logs"]
    assert (store / "user_logs" / "std_log.txt").read_text().startswith("# mkdir -p outputs/report")


def test_an_artifacts_binding_is_refused_naming_the_default_output(tmp_path: Path) -> None:
    text = (PIPELINES / "artifacts.yml").read_text()
    assert "${{parent.jobs.write.outputs.default}}" in text
    bad = tmp_path / "artifacts_alias.yml"
    bad.write_text(text.replace("outputs.default}}", "outputs.artifacts}}"))
    with pytest.raises(UserError) as err:
        build_plan(bad)
    assert str(err.value) == (
        f"{bad}: job 'read' input 'previous': job 'write' has no output 'artifacts'; a job's default output (its "
        "./outputs, ./logs and user_logs/) is named 'default': bind ${{parent.jobs.write.outputs.default}} and read "
        "<input>/outputs/... ('artifacts' names it only in azureml://jobs/<job>/outputs/artifacts/paths/ URIs)"
    )
    bad.write_text(text.replace("outputs.default}}", "outputs.defualt}}"))
    with pytest.raises(UserError, match=r"job 'write' has no output 'defualt'$"):
        build_plan(bad)


def test_datastore_uris_map_to_local_folders_with_name_placeholders(tmp_path: Path) -> None:
    archive = tmp_path / "archive-store"
    archive.mkdir()
    settings = Settings(base_dir=tmp_path, datastores={"archive": str(archive)})
    raw = settings.state_path / "datastores" / "workspaceblobstore" / "parity" / "raw"
    raw.mkdir(parents=True)
    (raw / "one.txt").write_text("a\nb\nc\n")
    result = run_pipeline(PIPELINES / "datastore.yml", {}, settings, quiet=True)
    store = settings.state_path / "datastores" / "workspaceblobstore"
    # ${{name}} is the step's job name (<run id>_<job>), ${{output_name}} the step's output name
    landed = store / "results" / f"{result.run_id}_count" / "result" / "lines.txt"
    assert landed.read_text().strip() == "3"
    assert (archive / "copies" / "copy" / "one.txt").read_text() == "a\nb\nc\n"

    # ${{default_datastore}} is the pipeline's settings.default_datastore when it names one
    pipeline = tmp_path / "datastore_default.yml"
    text = (PIPELINES / "datastore.yml").read_text()
    pipeline.write_text(
        text.replace("jobs:\n", "settings:\n  default_datastore: azureml:archive\njobs:\n", 1)
    )
    moved = run_pipeline(pipeline, {}, settings, quiet=True)
    landed = archive / "results" / f"{moved.run_id}_count" / "result" / "lines.txt"
    assert landed.read_text().strip() == "3"


def test_an_unmapped_datastore_is_refused_before_any_step(settings: Settings) -> None:
    raw = settings.state_path / "datastores" / "workspaceblobstore" / "parity" / "raw"
    raw.mkdir(parents=True)
    with pytest.raises(UserError) as err:
        run_pipeline(PIPELINES / "datastore.yml", {}, settings, quiet=True)
    assert "datastore 'archive' has no local folder" in str(err.value)
    assert "map it in amlops.yaml (datastores: {archive: <folder>})" in str(err.value)
    assert not settings.runs_path.exists()


def test_continue_on_step_failure_runs_what_does_not_depend_on_the_failure(settings: Settings) -> None:
    plan = build_plan(PIPELINES / "settings.yml")
    assert plan.continue_on_step_failure is True
    assert plan.step("flaky").compute == "cpu-cluster"  # compute: ${{parent.inputs.cluster}}
    with pytest.raises(StepFailed) as err:
        run_pipeline(PIPELINES / "settings.yml", {}, settings, quiet=True)
    statuses = {s.name: s.status for s in err.value.result.steps}
    assert statuses == {"flaky": "failed", "after_flaky": "skipped", "independent": "completed"}
    result = run_pipeline(PIPELINES / "settings.yml", {"fail": "no"}, settings, quiet=True)
    assert [s.status for s in result.steps] == ["completed"] * 3


# -- reuse ----------------------------------------------------------------------------------------------------------
def test_deterministic_steps_are_reused_unless_inputs_change_or_reuse_is_off(settings: Settings) -> None:
    first = run_pipeline(BASIC, {}, settings, quiet=True, reuse=True)
    again = run_pipeline(BASIC, {}, settings, quiet=True, reuse=True)
    assert [s.command for s in again.steps] == [f"reused from run {first.run_id}"] * 2
    assert again.outputs["total"] == first.outputs["total"]
    changed = run_pipeline(BASIC, {"scale": "3"}, settings, quiet=True, reuse=True)
    assert changed.steps[0].command == f"reused from run {first.run_id}"  # count_job: same inputs
    assert "reused" not in (changed.steps[1].command or "")  # total_job: scale changed
    assert json.loads(changed.outputs["total"].read_text())["total"] == pytest.approx(15.0)
    forced = run_pipeline(BASIC, {}, settings, quiet=True, reuse=False)
    assert not any("reused" in (s.command or "") for s in forced.steps)


def test_a_non_deterministic_step_is_never_reused(settings: Settings) -> None:
    run_pipeline(PIPELINES / "artifacts.yml", {}, settings, quiet=True, reuse=True)
    again = run_pipeline(PIPELINES / "artifacts.yml", {}, settings, quiet=True, reuse=True)
    by_name = {s.name: s.command or "" for s in again.steps}
    assert by_name["write"].startswith("reused from run")
    assert "reused" not in by_name["read"]  # is_deterministic: false


# -- distributed ----------------------------------------------------------------------------------------------------
def _ranks(folder: Path) -> dict[str, dict[str, str]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_distributed_jobs_launch_one_process_per_rank_with_the_framework_variables(
    settings: Settings,
) -> None:
    result = run_pipeline(PIPELINES / "distributed.yml", {}, settings, quiet=True)
    torch = _ranks(result.job_outputs["torch"]["ranks"])
    assert sorted(torch) == ["0", "1", "2", "3"]  # instance_count 2 x process_count_per_instance 2
    assert [(e["NODE_RANK"], e["LOCAL_RANK"]) for e in torch.values()] == [
        ("0", "0"),
        ("0", "1"),
        ("1", "0"),
        ("1", "1"),
    ]
    assert {e["WORLD_SIZE"] for e in torch.values()} == {"4"}
    assert len({e["MASTER_PORT"] for e in torch.values()}) == 1
    mpi = _ranks(result.job_outputs["mpi"]["ranks"])
    assert sorted(mpi) == ["0", "1", "2"]
    assert {e["OMPI_COMM_WORLD_SIZE"] for e in mpi.values()} == {"3"}
    tf = _ranks(result.job_outputs["tf"]["ranks"])
    assert sorted(tf) == ["ps0", "worker0", "worker1"]
    cluster = json.loads(tf["worker1"]["TF_CONFIG"])["cluster"]
    assert len(cluster["worker"]) == 2 and len(cluster["ps"]) == 1


def test_the_launcher_fails_when_one_rank_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The launcher (a process of its own on a real run) installs SIGINT/SIGTERM handlers: in process here, they
    # must not outlive the test (a later test's Ctrl-C would exit the worker instead of interrupting).
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _launcher_exit_codes(tmp_path, capsys)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _launcher_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    command = 'echo "hi from $RANK"; if [ "$RANK" = 1 ]; then exit 3; fi'
    spec.write_text(json.dumps({"command": command, "ranks": [{"RANK": "0"}, {"RANK": "1"}]}))
    assert launch.main([str(spec)]) == 3
    printed = capsys.readouterr().out
    assert "[rank 1] hi from 1" in printed and "error: rank 1 exited with code 3" in printed
    spec.write_text(json.dumps({"command": "true", "ranks": [{"RANK": "0"}, {"RANK": "1"}]}))
    assert launch.main([str(spec)]) == 0


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "      max_depth:\n        type: choice\n        values: [2, 4, 8]\n",
            "      max_depth:\n        type: uniform\n        min_value: 2\n        max_value: 8\n",
            "sweep.yml: job 'sweep_step': sampling_algorithm grid supports only choice distributions (Azure ML "
            "refuses it too): ['max_depth']",
        ),
        (
            "      max_depth:\n",
            "      depth:\n",
            "sweep.yml: job 'sweep_step': search_space.depth is not an input of the trial component",
        ),
        (
            "    early_termination:\n      type: median_stopping\n",
            "    early_termination:\n      type: truncation_selection\n      truncation_percentage: 100\n",
            "sweep.yml: job 'sweep_step': a truncation_selection early_termination policy needs truncation_percentage "
            "between 1 and 99 (how-to-tune-hyperparameters)",
        ),
    ],
    ids=["grid-of-uniform", "not-an-input", "truncation-percentage-100"],
)
def test_a_sweep_that_cannot_run_is_refused_before_any_step(
    settings: Settings, tmp_path: Path, old: str, new: str, message: str
) -> None:
    import shutil

    copy = tmp_path / "parity"
    shutil.copytree(PARITY, copy)
    sweep = copy / "pipelines" / "sweep.yml"
    text = sweep.read_text()
    assert old in text
    # a step that would run first, if the refusal came late
    first = (
        "jobs:\n  first:\n    type: command\n    component:\n      type: command\n      command: echo hi\n"
        "      environment: azureml:AzureML-sklearn-1.5@latest\n"
    )
    sweep.write_text(text.replace(old, new).replace("jobs:\n", first, 1))
    with pytest.raises(UserError) as err:
        run_pipeline(sweep, {}, settings, quiet=True)
    assert str(err.value).endswith(message)
    assert "\n" not in str(err.value)
    assert not settings.runs_path.exists()


def test_a_sweep_whose_trials_log_no_primary_metric_fails_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "parity"
    shutil.copytree(PARITY, copy)
    sweep = copy / "pipelines" / "sweep.yml"
    text = sweep.read_text().replace("primary_metric: val_loss", "primary_metric: accuracy")
    sweep.write_text(text.replace("max_total_trials: 4", "max_total_trials: 1"))
    with pytest.raises(StepFailed) as err:
        run_pipeline(sweep, {}, settings, quiet=True)
    assert "no trial of the sweep completed with a logged 'accuracy'" in str(err.value)
    assert [s.status for s in err.value.result.steps] == ["failed", "skipped"]


# -- the CLI --------------------------------------------------------------------------------------------------------
def _amlops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    (cwd / "amlops.yaml").write_text("")
    return subprocess.run(
        [sys.executable, "-m", "amlops.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_cli_refusal_is_one_line_and_set_forms_reach_the_runner(tmp_path: Path) -> None:
    proc = _amlops("run", str(PIPELINES / "spark.yml"), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: spark.yml: job 'wrangle' has type 'spark', which the local runner does not run (Spark jobs run on "
        "Azure ML's serverless Spark or an attached Synapse pool); run this pipeline with --target azure"
    ]
    proc = _amlops("run", str(BASIC), "--set", "jobs.count_job.inputs.nope=1", cwd=tmp_path)
    assert proc.returncode == 1
    assert "job 'count_job' has no input 'nope' (inputs: data, label, offset)" in proc.stderr
    proc = _amlops("run", str(BASIC), "--target", "azure", "--set", "outputs.total=x", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--target azure takes --set inputs.<name>=… only" in proc.stderr


# -- registered assets, locally --------------------------------------------------------------------------------------
def test_registered_data_and_components_resolve_from_the_local_registry(settings: Settings) -> None:
    from amlops.runner.assets import publish_component, register_data

    with pytest.raises(UserError) as err:
        run_pipeline(PIPELINES / "assets.yml", {}, settings, quiet=True)
    assert "uses the registered component 'azureml:count_lines_parity@latest', which the local asset" in str(
        err.value
    )
    assert "amlops components publish --target local" in str(err.value)
    assert publish_component(settings, PARITY / "components" / "lines.yml", "count_lines_parity", "1.abc")
    with pytest.raises(UserError) as err:
        run_pipeline(PIPELINES / "assets.yml", {}, settings, quiet=True)
    assert "'azureml:parity-raw@latest' is an Azure ML asset that the local asset registry lacks" in str(
        err.value
    )
    assert "amlops data register <folder> --name parity-raw --target local" in str(err.value)
    assert not settings.runs_path.exists()  # refused before any step

    assert register_data(settings, PARITY / "data" / "raw", "parity-raw", "1") == (
        "azureml:parity-raw:1",
        True,
    )
    newer = settings.base_dir / "newer"
    newer.mkdir()
    (newer / "a.txt").write_text("1\n2\n3\n4\n5\n")
    register_data(settings, newer, "parity-raw", "2")
    result = run_pipeline(PIPELINES / "assets.yml", {}, settings, quiet=True)
    # @latest is version 2 (5 lines); the pinned :1 is the first registration (3 lines)
    assert (result.job_outputs["count"]["counted"] / "lines.txt").read_text().strip() == "5"
    assert (result.job_outputs["count_pinned"]["counted"] / "lines.txt").read_text().strip() == "3"


def test_cli_registers_locally_and_run_resolves_the_references(tmp_path: Path) -> None:
    import shutil

    (tmp_path / "components").mkdir()
    shutil.copy(PARITY / "components" / "lines.yml", tmp_path / "components" / "lines.yml")
    proc = _amlops("components", "publish", "--target", "local", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 published locally, 0 already up to date" in proc.stdout
    again = _amlops("components", "publish", "--target", "local", cwd=tmp_path)
    assert "0 published locally, 1 already up to date" in again.stdout
    proc = _amlops(
        "data",
        "register",
        str(PARITY / "data" / "raw"),
        "--name",
        "parity-raw",
        "--target",
        "local",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "registered azureml:parity-raw:" in proc.stdout
    pipeline = tmp_path / "assets.yml"
    text = (PIPELINES / "assets.yml").read_text().replace("../components/lines.yml", "components/lines.yml")
    pipeline.write_text(text.replace("azureml:parity-raw:1", "azureml:parity-raw@latest"))
    proc = _amlops("run", str(pipeline), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "completed assets" in proc.stdout


def test_force_rerun_setting_turns_reuse_off_and_on_init_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "fixtures"
    shutil.copytree(BASIC.parent.parent, copy)
    pipeline = copy / "pipelines" / "basic.yml"
    text = pipeline.read_text()
    pipeline.write_text(text.replace("settings:\n", "settings:\n  force_rerun: true\n"))
    run_pipeline(pipeline, {}, settings, quiet=True, reuse=True)
    again = run_pipeline(pipeline, {}, settings, quiet=True, reuse=True)
    assert not any("reused" in (s.command or "") for s in again.steps)
    pipeline.write_text(text.replace("settings:\n", "settings:\n  on_init: count_job\n"))
    with pytest.raises(
        UserError, match=r"settings.on_init \(a setup/cleanup job\) is not run by the local runner"
    ):
        run_pipeline(pipeline, {}, settings, quiet=True)


def test_pip_packages_the_venv_lacks_are_named_with_the_isolated_flag() -> None:
    from azure.ai.ml.entities import Environment

    from amlops.runner.packages import missing_note, missing_packages

    conda = {
        "name": "trial-env",
        "dependencies": [
            "python=3.12",
            "pip",
            {
                "pip": [
                    "pyyaml>=6",
                    "amlops-parity-missing-pkg==1.0",
                    "amlops-windows-only==1.0 ; sys_platform == 'win32'",  # not this platform's: not named
                    "azureml-core==1.60.0",  # Azure ML's job runtime: the local runner stands in for it
                ]
            },
        ],
    }
    env = Environment(image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04", conda_file=conda)
    assert missing_packages(env) == ["amlops-parity-missing-pkg"]
    assert missing_note("train", env) == (
        "job 'train': its environment lists pip package(s) 'amlops-parity-missing-pkg' that this venv lacks; if "
        "the step imports them, run with --isolated (builds the component's environment)"
    )
    assert (
        missing_packages("azureml:AzureML-sklearn-1.5@latest") == []
    )  # a registry environment: nothing to read
