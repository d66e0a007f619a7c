"""`amlops run ... --isolated`: a step runs in a venv built from its component's own environment, so a package
missing from the Azure ML environment fails here first. The training pipeline runs once against the real
environment definition (components/environment); the venv is cached by digest under .amlops/envs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from amlops.config import Settings
from amlops.data.generate import GeneratorConfig, generate
from amlops.data.io import write_table
from amlops.runner.environment import EnvironmentSpec, ensure_venv, spec_of
from amlops.runner.local import StepFailed, run_pipeline

REPO = Path(__file__).resolve().parents[2]
CONTRACT = Path(__file__).parent / "fixtures" / "contract"
# Shared between test sessions (gitignored): a cached environment costs a folder check, a cold one a uv install.
ENV_CACHE = REPO / ".amlops" / "envs"


def test_a_step_importing_what_its_environment_lacks_fails_only_when_isolated(
    settings: Settings, tmp_path: Path
) -> None:
    pipeline = CONTRACT / "pipelines" / "one.yml"
    shared = run_pipeline(pipeline, {"action": "import-yaml"}, settings, quiet=True)
    assert shared.status == "completed"  # the project venv has PyYAML
    with pytest.raises(StepFailed, match="No module named 'yaml'"):
        run_pipeline(
            pipeline, {"action": "import-yaml"}, settings, quiet=True, isolated=True, env_cache=tmp_path
        )


def test_the_missing_package_note_comes_with_an_import_failure_only(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An environment lists many packages no step imports (an Azure ML runtime's dependencies): naming them on
    every run is noise, so the note comes with the failure it explains."""
    from amlops.runner import packages

    note = (
        "job 'step': its environment lists pip package(s) 'amlops-fixture-missing-pkg' that this venv lacks"
    )
    monkeypatch.setattr(packages, "missing_note", lambda _name, _env: note)
    pipeline = CONTRACT / "pipelines" / "one.yml"
    run_pipeline(pipeline, {"action": "write"}, settings)
    assert "lacks" not in capsys.readouterr().out  # a step that succeeds: silence
    with pytest.raises(StepFailed) as failed:
        run_pipeline(pipeline, {"action": "import-missing"}, settings, quiet=True)
    assert "No module named 'amlops_fixture_missing_pkg'" in str(failed.value) and note in str(failed.value)


def test_the_step_runs_with_the_environments_interpreter(settings: Settings, tmp_path: Path) -> None:
    result = run_pipeline(
        CONTRACT / "pipelines" / "one.yml", {"action": "write"}, settings, quiet=True, isolated=True,
        env_cache=tmp_path,
    )  # fmt: skip
    python = Path((result.job_outputs["step"]["out"] / "python.txt").read_text())
    assert python.is_relative_to(tmp_path) and python.parent != Path(sys.executable).parent


def test_a_registry_environment_runs_in_the_project_venv_with_a_note(
    settings: Settings, tmp_path: Path
) -> None:
    result = run_pipeline(
        CONTRACT / "pipelines" / "curated.yml", {}, settings, quiet=True, isolated=True, env_cache=tmp_path
    )
    log = Path(result.steps[0].log or "").read_text()
    assert "workspace/registry asset" in log and "runs in the project venv" in log
    python = Path((result.job_outputs["step"]["out"] / "python.txt").read_text())
    assert python.parent == Path(sys.executable).parent


def test_concurrent_builds_of_one_environment_build_it_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    spec = EnvironmentSpec("empty", "3.11", ())
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: ensure_venv(spec, tmp_path), range(3)))
    assert len({venv for venv, _ in results}) == 1
    assert sum(seconds is not None for _, seconds in results) == 1  # one build, two waited and reused it
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [results[0][0].name]


def test_the_environment_is_read_from_the_component_definition() -> None:
    import warnings

    from azure.ai.ml import load_component

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train = load_component(REPO / "components" / "train.yml")
    spec = spec_of(train.environment)
    assert isinstance(spec, EnvironmentSpec) and spec.python == "3.11"
    assert any(r.startswith("azureml-mlflow==") for r in spec.requirements)


def test_the_training_pipeline_runs_in_its_azure_ml_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(base_dir=tmp_path, model_name="demand-isolated", experiment="isolated")
    data = generate(GeneratorConfig(days=120, stores=2, products=2, seed=7))
    raw = write_table(data, tmp_path / "raw" / "demand.csv")
    started = time.perf_counter()
    result = run_pipeline(
        REPO / "pipelines" / "training.yml",
        {"raw_file": str(raw), "model_name": "demand-isolated", "params": "max_iter=30", "holdout_days": "21",
         "bootstrap_samples": "50"},
        settings, quiet=True, isolated=True, env_cache=ENV_CACHE,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert result.status == "completed"
    logs = {s.name: Path(s.log or "").read_text() for s in result.steps}
    for name, log in logs.items():
        assert f"# note: isolated: python {ENV_CACHE}" in log, name
    built = [ln for log in logs.values() for ln in log.splitlines() if "environment built in" in ln]
    with capsys.disabled():
        print(f"\n[isolated training pipeline: {seconds:.1f}s; {'; '.join(built) or 'environment cached'}]")
    assert (result.job_outputs["train"]["model"] / "MLmodel").is_file()


# The shape of MLFLOW_TRACKING_URI inside an Azure ML job (Microsoft Learn "Configure MLflow for Azure Machine
# Learning", how-to-use-mlflow-configure-tracking: azureml://<region>.api.azureml.ms/mlflow/v1.0/subscriptions/...).
AZUREML_URI = (
    "azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/0/resourceGroups/rg"
    "/providers/Microsoft.MachineLearningServices/workspaces/w"
)
RESOLVE = """
import sys
from mlflow.tracking._tracking_service.utils import _tracking_store_registry as tracking
from mlflow.tracking._model_registry.utils import _get_store_registry
for registry in (tracking, _get_store_registry()):
    registry.get_store_builder(sys.argv[1])
"""


def test_the_azure_ml_environment_resolves_an_azureml_tracking_uri(tmp_path: Path) -> None:
    """What the first mlflow.start_run() inside an Azure ML job needs: a store for the azureml:// scheme."""
    import subprocess
    import warnings

    from azure.ai.ml import load_component

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = spec_of(load_component(REPO / "components" / "train.yml").environment)
    assert isinstance(spec, EnvironmentSpec)
    venv, _ = ensure_venv(spec, ENV_CACHE)

    def resolve(uri: str) -> subprocess.CompletedProcess[str]:
        command = [str(venv / "bin" / "python"), "-c", RESOLVE, uri]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)

    assert resolve(AZUREML_URI).returncode == 0, resolve(AZUREML_URI).stderr
    # The failure the plugin prevents, shown with a scheme nothing registers.
    missing = resolve("nosuchplugin://host/path")
    assert missing.returncode != 0 and "UnsupportedModelRegistryStoreURIException" in missing.stderr
