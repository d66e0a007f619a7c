"""The score component's own Azure ML environment (components/environment/scoring: the parallel runtime's caps
hold numpy, pyarrow and packaging below the project's): built as --isolated builds it, the entry script
(`code: ../src`, amlops/steps/score.py) imports and scores, through the parallel driver's real argument shape, a
model the training environment saved."""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest

from amlops.config import Settings
from amlops.runner.environment import EnvironmentSpec, ensure_venv, spec_of
from amlops.runner.local import run_pipeline

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
ENV_CACHE = REPO / ".amlops" / "envs"
PIPELINE = REPO / "pipelines" / "batch_inference.yml"


@pytest.fixture(scope="module")
def scoring_python() -> Path:
    from azure.ai.ml import load_component

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        component = load_component(REPO / "components" / "score.yml")
    spec = spec_of(component.task["environment"])
    assert isinstance(spec, EnvironmentSpec), spec
    venv, _seconds = ensure_venv(spec, ENV_CACHE)
    return venv / "bin" / "python"


def in_env(python: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONHOME"}}
    env["PYTHONPATH"] = str(SRC)
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_entry_script_and_the_parallel_runtime_import_in_the_scoring_environment(
    scoring_python: Path, tmp_path: Path
) -> None:
    code = (
        "import amlops.steps.score, sklearn, azureml.core, azureml.dataprep, numpy; print(numpy.__version__)"
    )
    proc = in_env(scoring_python, ["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("2.3.")  # the parallel runtime's cap, not the project's numpy


def test_the_batch_inference_pipeline_runs_in_the_scoring_environment(
    scoring_python: Path, scoring_settings: Settings, model_dirs: dict[str, Path], demand: pd.DataFrame
) -> None:
    """A model saved by the training environment scores in the scoring one (what loads a model must be what
    saved it: cloudpickle, scikit-learn), through the local parallel driver and its real argument shape."""
    data = scoring_settings.base_dir / "in"
    data.mkdir()
    demand.head(200).to_parquet(data / "day.parquet", index=False)
    inputs = {"data": str(data), "model": str(model_dirs["v1"]), "model_version": "1"}
    result = run_pipeline(PIPELINE, inputs, scoring_settings, quiet=True, isolated=True, env_cache=ENV_CACHE)
    (step,) = result.steps
    assert f"# note: isolated: python {scoring_python}" in Path(step.log or "").read_text()
    scored = pd.read_parquet(result.job_outputs["score"]["predictions"] / "day.parquet")
    assert len(scored) == 200 and scored["model_version"].eq("1").all()
    summary = result.job_outputs["score"]["summary"] / "parallel_run_step.txt"
    assert summary.read_text().startswith("day.parquet rows=200")
