"""The score component's own Azure ML environment (components/environment/scoring: the parallel runtime's caps
hold numpy, pyarrow and packaging below the project's): built as --isolated builds it, the entry script
(`code: ../src`, amlops/steps/score.py) imports and scores, through the parallel driver's real argument shape, a
model the training environment saved."""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest

from amlops.runner.environment import EnvironmentSpec, ensure_venv, spec_of

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
ENV_CACHE = REPO / ".amlops" / "envs"


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


def test_a_model_saved_by_training_scores_in_the_scoring_environment(
    scoring_python: Path, tmp_path: Path, model_dirs: dict[str, Path], demand: pd.DataFrame
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    demand.head(200).to_parquet(data / "day.parquet", index=False)
    out, summary = tmp_path / "predictions", tmp_path / "summary"
    out.mkdir()
    summary.mkdir()
    spec = {
        "entry_script": "amlops/steps/score.py",
        "program_arguments": f"--data {data} --model {model_dirs['v1']} --model-version 1 --threads 1 "
        f"--predictions {out}",
        "input_data": str(data),
        "input_type": "uri_folder",
        "append_row_to": str(summary),
        "mini_batch_size": "1",
        "max_concurrency_per_instance": 1,
        "error_threshold": 0,
        "mini_batch_error_threshold": 0,
        "retry_settings": {"max_retries": 0, "timeout": 300},
    }
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    proc = in_env(scoring_python, ["-m", "amlops.runner.parallel", "--spec", str(spec_file)], SRC)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    scored = pd.read_parquet(out / "day.parquet")
    assert len(scored) == 200 and scored["model_version"].eq("1").all()
    # The driver's own --output (its summary folder) did not become the predictions folder.
    assert (summary / "parallel_run_step.txt").read_text().startswith("day.parquet rows=200")
