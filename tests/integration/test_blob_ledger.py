"""The retrain ledger on Azure Blob (Azurite): the lock-and-ledger semantics every runner of the loop shares.

The same behaviours as the folder store (tests/loop/test_retrain_trigger.py): two monitors of one window start one
retrain, a failed or dead retrain blocks nothing, every decision is logged — now across processes that share only
the blob container, as a GitHub runner and a workstation do.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from amlops.drift.policy import Decision
from amlops.retrain import (
    LEDGER,
    BlobStore,
    blob_store,
    decisions,
    last_retrain_at,
    ledger,
    record_decision,
    trigger,
)

pytestmark = pytest.mark.integration
RETRAIN = Decision("retrain", ["2 of the last 3 windows alarmed"], "key-1")


@pytest.fixture
def url(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string)
    from azure.storage.blob import BlobServiceClient

    container = f"ledger{uuid.uuid4().hex[:10]}"
    BlobServiceClient.from_connection_string(azurite_connection_string).create_container(container)
    return f"abfs://{container}/amlops/state/retrain"


def _monitor(url: str, conn: str, marker: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = conn
    store = blob_store(url)

    def start() -> dict[str, str]:
        store.append("trainings.jsonl", {"key": "trained", "pid": os.getpid()})
        time.sleep(1.0)  # training takes a while: the other monitor must not start a second one meanwhile
        return {"run": "r1"}

    barrier.wait()
    print(trigger(store, RETRAIN, start).status)


def test_two_runners_on_one_container_start_one_retrain(url: str, azurite_connection_string: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_monitor, args=(url, azurite_connection_string, "", barrier)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(90)
        assert p.exitcode == 0
    store = blob_store(url)
    assert len(store.read("trainings.jsonl")) == 1
    [entry] = ledger(store)
    assert entry["status"] == "completed" and entry["run"] == "r1"


def test_duplicates_failures_and_the_decision_log(url: str) -> None:
    store = blob_store(url)
    assert isinstance(store, BlobStore)
    assert ledger(store) == [] and last_retrain_at(store) is None

    def boom() -> dict[str, str]:
        raise RuntimeError("training pipeline failed")

    with pytest.raises(RuntimeError):
        trigger(store, RETRAIN, boom)
    assert last_retrain_at(store) is None  # a failed retrain starts no cooldown
    assert trigger(store, RETRAIN, lambda: {"run": "r2"}).status == "started"
    assert trigger(store, RETRAIN, lambda: pytest.fail("must not start")).status == "duplicate"
    assert last_retrain_at(store) is not None

    record_decision(store, RETRAIN, {"champion": "3", "target": "azure"})
    record_decision(store, Decision("none", ["0 of 3"], "key-2"), {"champion": "3"})
    assert [d["action"] for d in decisions(store)] == ["retrain", "none"]


def test_a_dead_runner_on_another_host_stops_blocking_after_the_stale_time(url: str) -> None:
    store = blob_store(url)
    started = datetime(2026, 11, 1, tzinfo=UTC)
    store.append(
        LEDGER,
        {
            "key": "key-1",
            "status": "started",
            "started_at": started.isoformat(),
            "host": "gh-runner-17",
            "pid": 1,
        },
    )
    # Soon after, it may still be running: duplicate, and it counts for the cooldown.
    assert trigger(store, RETRAIN, lambda: {}, now=started + timedelta(hours=1)).status == "duplicate"
    assert last_retrain_at(store, started + timedelta(hours=1)) == started
    # A day later nobody finished it: it blocks nothing.
    later = started + timedelta(days=1)
    assert last_retrain_at(store, later) is None
    assert trigger(store, RETRAIN, lambda: {"run": "r9"}, now=later).status == "started"


def test_a_torn_line_is_skipped_with_a_warning(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = blob_store(url)
    store.append(LEDGER, {"key": "k", "status": "completed", "started_at": "2026-11-01T00:00:00+00:00"})
    store._blob(LEDGER).append_block(b'{"key": "k", "stat')  # a writer killed mid-line
    assert [e["status"] for e in ledger(store)] == ["completed"]
    assert "skipped 1 unreadable line" in capsys.readouterr().err


def test_the_lock_is_exclusive_and_times_out_with_one_line(url: str) -> None:
    from amlops.errors import UserError

    store = blob_store(url)
    other = blob_store(url)
    with (
        store.lock(),
        pytest.raises(UserError, match="another retrain holds the lock"),
        other.lock(timeout=1.0),
    ):
        pass
    with other.lock(timeout=1.0):  # released: free again
        pass
