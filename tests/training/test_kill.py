"""A step killed mid-training or mid-registration leaves the champion untouched and no partial version; the
rerun succeeds.

The kill is a SIGKILL the step sends itself at a named checkpoint when AMLOPS_TEST_KILL_AT says so (a hook
used only by tests): an abrupt death at a known point, which a timer cannot give deterministically."""

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
from amlops.steps.register import register

WEAK = {"max_iter": 3}


def step(module: str, *args: str | Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AMLOPS_TEST_KILL_AT"}
    if kill_at:
        env["AMLOPS_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "-m", f"amlops.steps.{module}", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


def train_args(snapshot: Path, out: Path, settings: Settings) -> list[str | Path]:
    return [
        "--snapshot",
        snapshot,
        "--schema",
        SCHEMA,
        "--model",
        out / "model",
        "--run-info",
        out / "run_info",
        "--holdout-days",
        str(settings.train.holdout_days),
        "--params",
        "max_iter=60",
    ]


@pytest.fixture
def with_champion(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> StepRun:
    """A weak champion v1, so that the next (good) model passes the gate and would be promoted."""
    first = run_steps(tracked, raw_csv, tmp_path / "first", monkeypatch, run_id="run-1", params=WEAK)
    assert registry.resolve_champion(tracked, tracked.model_name)[0] == "1"  # type: ignore[index]
    return first


def test_kill_mid_training(
    tracked: Settings, with_champion: StepRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the model was fitted AND logged to the MLflow run (the latest point before the
    outputs)."""
    name = tracked.model_name
    out = tmp_path / "second"
    monkeypatch.setenv("AZUREML_ROOT_RUN_ID", "run-2")
    killed = step("train", *train_args(with_champion.snapshot, out, tracked), kill_at="train:after_log")
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "model" / "MLmodel").exists() and not (out / "run_info" / "run_info.json").exists()
    assert registry.resolve_champion(tracked, name)[0] == "1"  # type: ignore[index]
    assert [v.version for v in registry.list_versions(tracked, name)] == ["1"]  # no partial version

    # The rerun (the same step, now left alone) succeeds, and the pipeline carries on to a new version.
    rerun = step("train", *train_args(with_champion.snapshot, out, tracked))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    evaluate(
        out / "model",
        with_champion.snapshot,
        SCHEMA,
        out / "verdict",
        model_name=name,
        bootstrap_samples=200,
        holdout_days=tracked.train.holdout_days,
    )
    register(out / "run_info", out / "verdict", with_champion.snapshot, out / "registration", model_name=name)
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "2"}


def test_kill_mid_registration(
    tracked: Settings, with_champion: StepRun, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from amlops.cli import app

    name = tracked.model_name
    second = run_steps(tracked, raw_csv, tmp_path / "second", monkeypatch, run_id="run-2", register=False)
    assert second.json(second.verdict, "verdict.json")["passed"]  # this one would be promoted
    args: list[str | Path] = [
        "--run-info",
        second.run_info,
        "--verdict",
        second.verdict,
        "--snapshot",
        second.snapshot,
        "--registration",
        second.registration,
        "--model-name",
        name,
    ]

    # 1. Killed right after the version was created: it exists only as a whole (one call carried every lineage
    #    tag and the verdict), it is not the challenger yet, the champion has not moved, no event was written.
    killed = step("register", *args, kill_at="register:after_create")
    assert killed.returncode == -signal.SIGKILL
    versions = {v.version: v for v in registry.list_versions(tracked, name)}
    assert set(versions) == {"1", "2"}
    assert set(registry.LINEAGE_TAGS) | set(registry.GATE_TAGS) <= set(versions["2"].tags)
    assert not versions["2"].complete
    assert registry.roles_of(tracked, name) == {"champion": "1", "challenger": "1"}
    assert [e.version for e in registry.history(tracked, name)] == ["1"]
    # `amlops models` says so
    config = tmp_path / "amlops.yaml"
    config.write_text(f"model_name: {name}\nstate_dir: {tracked.state_path}\n")
    monkeypatch.setenv("AMLOPS_CONFIG", str(config))
    listing = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "registration incomplete" in listing.output, listing.output

    # 2. The retry of the same pipeline run (same root run id) is killed after moving the challenger: still no
    #    second version, and the champion has still not moved.
    killed = step("register", *args, kill_at="register:after_challenger")
    assert killed.returncode == -signal.SIGKILL
    assert [v.version for v in registry.list_versions(tracked, name)] == ["2", "1"]
    assert registry.roles_of(tracked, name) == {"champion": "1", "challenger": "2"}

    # 3. The next retry completes it: one version for run-2, promoted once, with its event.
    rerun = step("register", *args)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    versions = {v.version: v for v in registry.list_versions(tracked, name)}
    assert set(versions) == {"1", "2"} and versions["2"].complete
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "2"}
    assert [(e.version, e.actor) for e in registry.history(tracked, name)] == [
        ("1", "pipeline:run-1"),
        ("2", "pipeline:run-2"),
    ]
    run_id = second.json(second.run_info, "run_info.json")["run_id"]
    assert (
        MlflowClient(tracked.tracking_uri, registry_uri=tracked.tracking_uri)
        .get_model_version(name, "2")
        .run_id
        == run_id
    )
