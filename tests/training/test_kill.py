"""A step killed mid-training or mid-registration leaves the champion untouched and no partial version; the rerun
succeeds.

The kill is a SIGKILL the step sends itself at a named checkpoint when AMLOPS_TEST_KILL_AT says so (a hook used only
by tests): an abrupt death at a known point, which a timer cannot give deterministically."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from training_helpers import SCHEMA, StepRun, run_steps

from amlops import registry
from amlops.config import Settings
from amlops.steps.evaluate import evaluate
from amlops.steps.prep import prep

WEAK = {"max_iter": 3}


def step(module: str, *args: str | Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AMLOPS_TEST_KILL_AT"}
    if kill_at:
        env["AMLOPS_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", f"amlops.steps.{module}", *map(str, args)], capture_output=True, text=True, env=env
    )


def train_args(snapshot: Path, out: Path, settings: Settings) -> list[str | Path]:
    return ["--snapshot", snapshot, "--schema", SCHEMA, "--model", out / "model", "--run-info", out / "run_info",
            "--holdout-days", str(settings.train.holdout_days), "--params", "max_iter=60"]


@pytest.fixture
def with_champion(tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StepRun:
    """A weak champion v1, so that the next (good) model passes the gate and would be promoted."""
    first = run_steps(tracked, raw_csv, tmp_path / "first", monkeypatch, run_id="run-1", params=WEAK)
    assert registry.resolve_champion(tracked, tracked.model_name)[0] == "1"  # type: ignore[index]
    return first


@pytest.mark.parametrize("point", ["train:after_fit", "train:after_log"])
def test_kill_mid_training(
    point: str, tracked: Settings, with_champion: StepRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = tracked.model_name
    out = tmp_path / "second"
    monkeypatch.setenv("AZUREML_ROOT_RUN_ID", "run-2")
    killed = step("train", *train_args(with_champion.snapshot, out, tracked), kill_at=point)
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "model" / "MLmodel").exists() and not (out / "run_info" / "run_info.json").exists()
    assert registry.resolve_champion(tracked, name)[0] == "1"  # type: ignore[index]
    assert [v.version for v in registry.list_versions(tracked, name)] == ["1"]  # no partial version

    rerun = step("train", *train_args(with_champion.snapshot, out, tracked))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    evaluate(out / "model", with_champion.snapshot, SCHEMA, out / "verdict", model_name=name,
             bootstrap_samples=200, holdout_days=tracked.train.holdout_days)
    reg = step("register", "--run-info", out / "run_info", "--verdict", out / "verdict",
               "--snapshot", with_champion.snapshot, "--registration", out / "registration", "--model-name", name)
    assert reg.returncode == 0, reg.stderr[-2000:]
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "2"}


@pytest.mark.parametrize("point", ["register:before_create", "register:after_create", "register:after_challenger"])
def test_kill_mid_registration(
    point: str, tracked: Settings, with_champion: StepRun, raw_csv: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = tracked.model_name
    second = run_steps(tracked, raw_csv, tmp_path / "second", monkeypatch, run_id="run-2", register=False)
    assert second.json(second.verdict, "verdict.json")["passed"]  # this one would be promoted
    args = ["--run-info", second.run_info, "--verdict", second.verdict, "--snapshot", second.snapshot,
            "--registration", second.registration, "--model-name", name]

    killed = step("register", *args, kill_at=point)
    assert killed.returncode == -signal.SIGKILL
    assert registry.resolve_champion(tracked, name)[0] == "1"  # type: ignore[index]
    assert [e.version for e in registry.history(tracked, name)] == ["1"]
    versions = {v.version: v for v in registry.list_versions(tracked, name)}
    if point == "register:before_create":
        assert set(versions) == {"1"}
    else:
        # The version exists only as a whole: created in one call with every lineage tag and the verdict.
        assert set(versions) == {"1", "2"}
        assert set(registry.LINEAGE_TAGS) | set(registry.GATE_TAGS) <= set(versions["2"].tags)
        assert not versions["2"].complete  # its roles and event are still to come
        expected_challenger = "2" if point == "register:after_challenger" else "1"
        assert registry.resolve_challenger(tracked, name)[0] == expected_challenger  # type: ignore[index]

    rerun = step("register", *args)  # the same pipeline run id (AML retries a step with the same root run id)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    versions = {v.version: v for v in registry.list_versions(tracked, name)}
    assert set(versions) == {"1", "2"} and versions["2"].complete  # no second version for run-2
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "2"}
    assert [(e.version, e.actor) for e in registry.history(tracked, name)] == [
        ("1", "pipeline:run-1"), ("2", "pipeline:run-2")]
    run_id = second.json(second.run_info, "run_info.json")["run_id"]
    assert MlflowClient(tracked.tracking_uri).get_model_version(name, "2").run_id == run_id


def test_a_killed_registration_is_visible_until_completed(
    tracked: Settings, with_champion: StepRun, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`amlops models` flags a version whose registration did not complete; a new pipeline run is unaffected."""
    from typer.testing import CliRunner

    from amlops.cli import app

    name = tracked.model_name
    second = run_steps(tracked, raw_csv, tmp_path / "second", monkeypatch, run_id="run-2", register=False)
    killed = step("register", "--run-info", second.run_info, "--verdict", second.verdict, "--snapshot",
                  second.snapshot, "--registration", second.registration, "--model-name", name,
                  kill_at="register:after_create")
    assert killed.returncode == -signal.SIGKILL
    config = tmp_path / "amlops.yaml"
    config.write_text(f"model_name: {name}\nstate_dir: {tracked.state_path}\n")
    monkeypatch.setenv("AMLOPS_CONFIG", str(config))
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "registration incomplete" in result.output
    # A new pipeline run registers its own version and leaves the champion to its own gate.
    prep(raw_csv, SCHEMA, tmp_path / "s3", tmp_path / "q3")
    third = run_steps(tracked, raw_csv, tmp_path / "third", monkeypatch, run_id="run-3", params=WEAK)
    assert third.json(third.registration, "registration.json")["version"] == "3"
    assert registry.resolve_champion(tracked, name)[0] == "1"  # type: ignore[index]
