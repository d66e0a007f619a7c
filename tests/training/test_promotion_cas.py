"""Promotion is compare-and-set: a training promotes only over the champion its gate beat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from training_helpers import run_steps

from amlops import registry
from amlops.config import Settings
from amlops.steps import register as register_step

WEAK = {"max_iter": 3}


def _weak_champion(tracked: Settings, raw: Path, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_steps(tracked, raw, root / "v1", monkeypatch, run_id="run-1", params=WEAK)
    assert registry.resolve_champion(tracked, tracked.model_name) == ("1", f"models:/{tracked.model_name}/1")


def _register_args(r: Any, out: Path, name: str) -> list[str]:
    return [
        "--run-info", str(r.run_info), "--verdict", str(r.verdict), "--snapshot", str(r.snapshot),
        "--registration", str(out), "--model-name", name,
    ]  # fmt: skip


def test_a_manual_promotion_during_evaluate_keeps_the_training_challenger(
    tracked: Settings,
    raw_csv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Fails on a register step that promotes without comparing: v3 would take over from the hand-promoted v2
    on a verdict about v1."""
    name = tracked.model_name
    _weak_champion(tracked, raw_csv, tmp_path, monkeypatch)
    training = run_steps(tracked, raw_csv, tmp_path / "t", monkeypatch, run_id="run-t", register=False)
    verdict = training.json(training.verdict, "verdict.json")
    assert verdict["passed"] and verdict["champion"]["version"] == "1"  # the gate names what it beat

    # Between evaluate and register, someone promotes another version by hand.
    client = MlflowClient(tracked.tracking_uri, registry_uri=tracked.registry_uri)
    v1 = client.get_model_version(name, "1")
    client.create_model_version(
        name, source=str(v1.source), run_id=v1.run_id, tags={"registration": "complete"}
    )
    registry.promote(tracked, name, 2, reason="hotfix", actor="alice")

    assert register_step.main(_register_args(training, tmp_path / "reg", name)) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "reg" / "registration.json").read_text())
    assert record["version"] == "3" and not record["promoted"] and not record["is_champion"]
    assert record["promotion"]["status"] == "champion_changed"
    assert (record["promotion"]["gate_champion"], record["promotion"]["champion_at_promotion"]) == ("1", "2")
    assert record["promotion"]["locked"] is True  # a local SQLite registry: check and switch under the lock
    assert "as challenger" in out and "champion changed since the gate compared against v1" in out
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "3"}
    assert [(e.version, e.actor) for e in registry.history(tracked, name)][-1] == ("2", "alice")
    assert "champion changed" in client.get_model_version(name, "3").tags["promotion"]


def test_two_concurrent_trainings_that_beat_the_same_champion_promote_once(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both verdicts say "beat v1"; both register steps start together (separate processes, as two pipeline
    runs would): exactly one becomes champion, the other stays challenger and says why."""
    name = tracked.model_name
    _weak_champion(tracked, raw_csv, tmp_path, monkeypatch)
    trained = run_steps(tracked, raw_csv, tmp_path / "t", monkeypatch, run_id="run-t", register=False)
    assert trained.json(trained.verdict, "verdict.json")["champion"]["version"] == "1"
    procs = []
    for run in ("run-a", "run-b"):
        env = {**os.environ, "AZUREML_ROOT_RUN_ID": run}
        args = _register_args(trained, tmp_path / run, name)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "amlops.steps.register", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        outputs.append(stdout)
    assert sum("warning: not promoted: the champion changed" in o for o in outputs) == 1
    records = [json.loads((tmp_path / run / "registration.json").read_text()) for run in ("run-a", "run-b")]
    statuses = sorted(r["promotion"]["status"] for r in records)
    assert statuses == ["champion_changed", "promoted"]
    winner = next(r for r in records if r["promoted"])
    loser = next(r for r in records if not r["promoted"])
    assert loser["promotion"]["champion_at_promotion"] == winner["version"]
    assert registry.resolve_champion(tracked, name)[0] == winner["version"]  # type: ignore[index]
    promotions = [e.version for e in registry.history(tracked, name)]
    assert promotions == ["1", winner["version"]]


def test_no_champion_at_evaluate_and_one_since(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first training's gate saw no champion; another version became champion before it registered."""
    name = tracked.model_name
    first = run_steps(tracked, raw_csv, tmp_path / "a", monkeypatch, run_id="run-a", register=False)
    assert first.json(first.verdict, "verdict.json")["champion"] is None
    shutil.copytree(first.root, tmp_path / "b")
    monkeypatch.setenv("AZUREML_ROOT_RUN_ID", "run-b")
    other = register_step.register(
        tmp_path / "b" / "run_info", tmp_path / "b" / "verdict", tmp_path / "b" / "snapshot",
        tmp_path / "b" / "reg", model_name=name,
    )  # fmt: skip
    assert other["promotion"]["status"] == "promoted"
    monkeypatch.setenv("AZUREML_ROOT_RUN_ID", "run-a")
    late = register_step.register(
        first.run_info, first.verdict, first.snapshot, tmp_path / "a" / "reg", model_name=name
    )
    assert late["promotion"]["status"] == "champion_changed" and late["champion"] == other["version"]


def test_server_registries_reread_and_verify(
    tracked: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a lock (a server), a concurrent switch right after ours is detected and reported, not hidden."""
    name = tracked.model_name
    client = MlflowClient(tracked.tracking_uri, registry_uri=tracked.registry_uri)
    registry.ensure_registered_model(client, name)
    for _ in range(3):
        (tmp_path / "m").mkdir(exist_ok=True)
        client.create_model_version(name, source=str(tmp_path / "m"))
    registry.promote(client, name, 1, reason="first", actor="ci")
    monkeypatch.setattr(registry, "_lock_path", lambda c: None)

    class RacingServer(MlflowClient):
        def set_registered_model_alias(self, model: str, alias: str, version: str | int) -> None:
            super().set_registered_model_alias(model, alias, str(version))
            if alias == registry.CHAMPION and str(version) == "2":  # another promoter lands right after us
                super().set_registered_model_alias(model, alias, "3")

    racing = RacingServer(tracked.tracking_uri, registry_uri=tracked.registry_uri)
    outcome = registry.promote_if_champion(racing, name, 2, expected="1", reason="r", actor="pipeline:x")
    assert (outcome.status, outcome.champion, outcome.locked, outcome.promoted) == (
        "overtaken",
        "3",
        False,
        False,
    )
    assert "v3 took the champion role" in outcome.describe()


def test_the_lock_serialises_promotions(tracked: Settings, tmp_path: Path) -> None:
    """The lock is real: while one holder has it, another process cannot take it."""
    code = (
        "import sys, time\n"
        "from amlops import registry\n"
        "from amlops.config import Settings\n"
        f"s = Settings(base_dir={str(tracked.base_dir)!r})\n"
        "registry._LOCK_TIMEOUT_S = 0.3\n"
        "try:\n"
        "    with registry.registry_lock(s):\n"
        "        print('got it')\n"
        "except registry.RegistryError as exc:\n"
        "    print(exc)\n"
    )
    with registry.registry_lock(tracked) as locked:
        assert locked
        held = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "held for over" in held.stdout, held.stdout + held.stderr
    assert free.stdout.strip() == "got it", free.stdout + free.stderr
