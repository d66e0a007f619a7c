"""Two monitor runs on the same window start exactly one retrain; failures and crashes do not block a rerun."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from amlops.config import Settings
from amlops.drift.policy import Decision
from amlops.retrain import FolderStore, last_retrain_at, ledger, trigger

RETRAIN = Decision("retrain", ["2 of the last 3 windows alarmed"], "key-1")


def _monitor_process(base: str, marker: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    settings = Settings(base_dir=Path(base))

    def start() -> dict[str, str]:
        with open(marker, "a") as fh:
            fh.write("trained\n")
        time.sleep(0.5)  # training takes a while: the other monitor must not start a second one meanwhile
        return {"run": "r1"}

    barrier.wait()
    result = trigger(FolderStore(settings.state_path / "retrain"), RETRAIN, start)
    print(result.status)


def test_two_concurrent_monitors_start_one_retrain(tmp_path: Path) -> None:
    marker = tmp_path / "trainings.txt"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_monitor_process, args=(str(tmp_path), str(marker), barrier)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert marker.read_text().splitlines() == ["trained"]
    [entry] = ledger(FolderStore(Settings(base_dir=tmp_path).state_path / "retrain"))
    assert entry["status"] == "completed" and entry["run"] == "r1"


@pytest.fixture
def store(settings: Settings) -> FolderStore:
    return FolderStore(settings.state_path / "retrain")


def test_second_trigger_of_a_completed_key_is_a_duplicate(store: FolderStore) -> None:
    calls = []
    assert trigger(store, RETRAIN, lambda: calls.append(1) or {}).status == "started"
    assert trigger(store, RETRAIN, lambda: calls.append(1) or {}).status == "duplicate"
    assert calls == [1]
    assert last_retrain_at(store) is not None


def test_a_failed_retrain_can_be_retried(store: FolderStore) -> None:
    def boom() -> dict[str, str]:
        raise RuntimeError("training pipeline failed")

    with pytest.raises(RuntimeError):
        trigger(store, RETRAIN, boom)
    assert last_retrain_at(store) is None  # a failed retrain starts no cooldown
    assert trigger(store, RETRAIN, lambda: {"run": "r2"}).status == "started"


def test_a_crashed_retrain_does_not_block_the_key_nor_start_a_cooldown(store: FolderStore) -> None:
    folder = store.folder
    folder.mkdir(parents=True)
    # A 'started' line from a process that no longer exists (killed mid-training).
    (folder / "ledger.jsonl").write_text(
        json.dumps(
            {
                "key": "key-1",
                "status": "started",
                "started_at": "2025-01-01T00:00:00+00:00",
                "pid": 999999999,
                "host": __import__("socket").gethostname(),
            }
        )
        + "\n{torn"
    )
    # Dead: neither a running retrain for the cooldown (it used to silence retraining for cooldown_hours)...
    assert last_retrain_at(store) is None
    # ... nor a duplicate of its key.
    assert trigger(store, RETRAIN, lambda: {"run": "r3"}).status == "started"


def test_no_retrain_decision_starts_nothing(store: FolderStore) -> None:
    result = trigger(store, Decision("none", ["0 of 3"], "k"), lambda: pytest.fail("must not start"))
    assert result.status == "skipped"
