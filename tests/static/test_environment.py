"""The AML environments are code: their pins come from uv locks, resolve together, and hold what the steps import
(the `azureml` MLflow tracking store among them). Each check is proven by planting the fault it looks for."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "gen_env_requirements.py"
sys.path.insert(0, str(TOOL.parent))
import gen_env_requirements as gen  # noqa: E402

MAIN, SCORING = gen.ENVIRONMENTS
# What loads a model must be what saved it: the training environment pickles, the scoring environment unpickles.
MODEL_LOADING = ("scikit-learn", "scipy", "cloudpickle", "pandas", "mlflow-skinny")


def pins_of(env: gen.Environment) -> list[str]:
    return gen.conda_pip(env.conda_file)


def versions(pins: list[str]) -> dict[str, str]:
    return {gen.distribution_name(p): p.split("==", 1)[1].split(";")[0].strip() for p in pins if "==" in p}


def test_every_environment_matches_its_lock_resolves_and_holds_what_its_steps_import() -> None:
    proc = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_every_component_uses_a_generated_environment() -> None:
    used = set(gen.component_environments())
    assert used == {env.definition.resolve() for env in gen.ENVIRONMENTS}
    # The parallel components: batch scoring and the map-reduce monitor's map step.
    parallel = [ROOT / "components" / "monitor_map.yml", ROOT / "components" / "score.yml"]
    assert sorted(gen.component_environments()[SCORING.definition.resolve()]) == parallel


def test_check_fails_when_a_pin_is_edited_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "environment"
    shutil.copytree(MAIN.folder, folder, ignore=shutil.ignore_patterns("scoring"))
    conda = folder / "conda.yml"
    conda.write_text(conda.read_text().replace("pandas==", "pandas==0.0.0+", 1))
    edited = dataclasses.replace(MAIN, folder=folder)
    problems = gen.check_environment(edited, resolve=False)
    assert any("disagrees with uv.lock" in p for p in problems), problems


def test_removing_azureml_mlflow_from_an_environment_fails() -> None:
    pins = pins_of(MAIN)
    assert gen.content_problems(MAIN, pins) == []
    planted = [p for p in pins if gen.distribution_name(p) != "azureml-mlflow"]
    problems = gen.content_problems(MAIN, planted)
    assert any("'azureml' scheme in the 'mlflow.tracking_store'" in p for p in problems), problems
    assert any("'mlflow.model_registry_store'" in p for p in problems), problems


def test_azureml_mlflow_registers_the_azureml_scheme_in_the_installed_metadata() -> None:
    # azureml-mlflow's entry_points.txt: [mlflow.tracking_store] azureml = azureml.mlflow.entry_point_loaders:...
    found = gen.provides_entry_point(pins_of(MAIN), gen.TRACKING_ENTRY_POINTS, "azureml")
    assert found == {
        "mlflow.tracking_store": "azureml-mlflow",
        "mlflow.model_registry_store": "azureml-mlflow",
    }


def test_two_conflicting_pins_do_not_resolve() -> None:
    pins = pins_of(MAIN)
    # azureml-mlflow 1.62.0.post6 requires mlflow-skinny<=3.15.0: the pin the lock replaced.
    planted = ["mlflow-skinny==3.17.2" if gen.distribution_name(p) == "mlflow-skinny" else p for p in pins]
    error = gen.resolve_errors(planted)
    assert error is not None
    assert "mlflow-skinny" in error and "azureml-mlflow" in error


def test_a_step_import_missing_from_its_environment_fails() -> None:
    pins = pins_of(SCORING)
    assert gen.content_problems(SCORING, pins) == []
    planted = [p for p in pins if gen.distribution_name(p) != "pyarrow"]
    problems = gen.content_problems(SCORING, planted)
    assert any("amlops/steps/score.py" in p and "pyarrow" in p for p in problems), problems


def test_the_scoring_environment_holds_the_parallel_runtime() -> None:
    names = set(versions(pins_of(SCORING)))
    # azureml-pipeline-steps _parallel_run_step_base.py: azureml-core and azureml-dataset-runtime[fuse].
    assert {"azureml-core", "azureml-dataset-runtime", "fusepy"} <= names


def test_the_libraries_that_load_a_model_are_the_ones_that_saved_it() -> None:
    main, scoring = versions(pins_of(MAIN)), versions(pins_of(SCORING))
    assert {lib: main[lib] for lib in MODEL_LOADING} == {lib: scoring[lib] for lib in MODEL_LOADING}


def test_the_scoring_step_uses_no_tracking_store_and_training_does() -> None:
    needs = {c.name: gen.needs_of(c) for c in sorted((ROOT / "components").glob("*.yml"))}
    assert needs["score.yml"] is not None and not needs["score.yml"].uses_tracking
    assert needs["train.yml"] is not None and needs["train.yml"].uses_tracking
