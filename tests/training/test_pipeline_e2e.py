"""pipelines/training.yml through the local runner and the CLI: `amlops train`, then `amlops history --at T`
answers which data and which commit made the model that served at T."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from training_helpers import PIPELINE, SCHEMA, fresh_store
from typer.testing import CliRunner

from amlops import registry
from amlops.cli import app
from amlops.config import load_settings
from amlops.data.io import write_table
from amlops.runner.local import StepFailed, run_pipeline

pytestmark = pytest.mark.slow


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_template: Path) -> Path:
    config = tmp_path / "amlops.yaml"
    config.write_text(
        "model_name: demand-e2e\n"
        "experiment: e2e\n"
        f"data:\n  schema_file: {SCHEMA}\n"
        "train:\n  holdout_days: 21\n  params: {max_iter: 60}\n"
        "gate:\n  bootstrap_samples: 200\n"
    )
    fresh_store(load_settings(path=config), store_template)
    monkeypatch.setenv("AMLOPS_CONFIG", str(config))
    monkeypatch.setenv("AMLOPS_GIT_COMMIT", "feedbeef01")
    monkeypatch.delenv("AMLOPS_TEST_KILL_AT", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_history_bad_input_and_a_killed_registration(
    project: Path, demand_df: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = write_table(demand_df, project / "data" / "demand.csv")
    summary = project / "summary.md"

    # 1. `amlops train` on generated data: a registered version, champion (no champion before).
    result = cli("train", "--data", str(raw), "--pipeline", str(PIPELINE), "--summary", str(summary))
    assert result.exit_code == 0, result.output
    assert "registered demand-e2e v1 as champion" in result.output
    assert "| mae (gate) |" in summary.read_text()
    settings = load_settings()
    (run_dir,) = (settings.runs_path / "training").iterdir()
    snapshot = json.loads((run_dir / "prep" / "snapshot" / "manifest.json").read_text())

    # 2. Which data and commit made the model that served at T?
    at = registry.now_utc().isoformat()
    served = json.loads(cli("history", "--at", at, "--json").output)["serving"]
    assert served["version"] == "1"
    assert served["data_digest"] == snapshot["digest"] and served["git_commit"] == "feedbeef01"
    assert served["pipeline_run_id"] == run_dir.name
    text = cli("history", "--at", at).output
    assert "v1 of demand-e2e served" in text and snapshot["digest"] in text and "feedbeef01" in text
    (row,) = json.loads(cli("models", "--json").output)
    assert row["roles"] == ["champion", "challenger"] and row["gate_passed"] is True
    assert row["tags"]["data.uri"] == str(raw.resolve()) and row["tags"]["pipeline.run_id"] == run_dir.name

    # 3. Bad input: the pipeline stops at prep with the one-line reason; the champion stays.
    bad = write_table(demand_df.drop(columns=["price"]), project / "data" / "bad.csv")
    failed = cli("train", "--data", str(bad), "--pipeline", str(PIPELINE))
    assert failed.exit_code == 1
    assert "step 'prep'" in failed.output and "column 'price': rule 'required'" in failed.output
    assert registry.resolve_champion(settings, "demand-e2e")[0] == "1"  # type: ignore[index]
    assert len(registry.list_versions(settings, "demand-e2e")) == 1

    # 4. Registration killed inside a pipeline run; the rerun of that run completes it without a second
    # version.
    from amlops.job_inputs import training_inputs

    inputs = training_inputs(settings, str(raw))
    inputs["params"] = "max_iter=120"
    monkeypatch.setenv("AMLOPS_TEST_KILL_AT", "register:after_create")
    with pytest.raises(StepFailed, match="step 'register'"):
        run_pipeline(PIPELINE, inputs, settings, run_id="retry-1", quiet=True)
    assert registry.resolve_champion(settings, "demand-e2e")[0] == "1"  # type: ignore[index]
    monkeypatch.delenv("AMLOPS_TEST_KILL_AT")
    run_pipeline(PIPELINE, inputs, settings, run_id="retry-1", quiet=True)
    versions = registry.list_versions(settings, "demand-e2e")
    assert [v.version for v in versions] == ["2", "1"] and all(v.complete for v in versions)
    assert versions[0].tags["pipeline.run_id"] == "retry-1"
