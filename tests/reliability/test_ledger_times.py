"""Session 4 hostile pass: a retrain ledger row whose `started_at` cannot be read (a hand edit, another tool, a
time without a zone) stopped every later `amlops loop` with a traceback (ValueError from fromisoformat, TypeError
comparing a naive time with an aware one) — the loop could never retrain again until someone edited the ledger.
Now such a row is ignored for the cooldown with one warning, the readable rows still count, and the ledger is
left as it was (nothing rewritten, nothing lost)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amlops import retrain
from amlops.drift.policy import Decision

GOOD = {"key": "good", "status": "completed", "started_at": "2024-05-02T10:00:00+00:00"}


def _ledger(folder: Path, *rows: Mapping[str, object]) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / retrain.LEDGER).write_text(text, encoding="utf-8")
    return text.encode()


@pytest.mark.parametrize(
    "started",
    ["garbage", 1714644000, "", None],
    ids=["text", "number", "empty", "null"],
)
def test_an_unreadable_start_time_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], started: object
) -> None:
    store = retrain.FolderStore(tmp_path / "retrain")
    before = _ledger(store.folder, {"key": "bad", "status": "completed", "started_at": started}, GOOD)

    assert retrain.last_retrain_at(store) == datetime(2024, 5, 2, 10, tzinfo=UTC)
    err = capsys.readouterr().err
    assert "1 retrain(s) with an unreadable started_at ignored for the cooldown" in err
    assert (store.folder / retrain.LEDGER).read_bytes() == before


def test_a_start_time_without_a_zone_is_read_as_utc(tmp_path: Path) -> None:
    store = retrain.FolderStore(tmp_path / "retrain")
    _ledger(store.folder, GOOD, {"key": "naive", "status": "completed", "started_at": "2024-05-03T08:00:00"})
    assert retrain.last_retrain_at(store) == datetime(2024, 5, 3, 8, tzinfo=UTC)


def test_a_retrain_still_starts_over_a_ledger_with_unreadable_times(tmp_path: Path) -> None:
    """The other path that reads the rows: the dedupe check before a start. A started row of another host with
    an unreadable time cannot be proven alive, so it does not block its key."""
    store = retrain.FolderStore(tmp_path / "retrain")
    stale = {"key": "k1", "status": "started", "started_at": "yesterday", "host": "elsewhere", "pid": 1}
    before = _ledger(store.folder, stale, GOOD)
    decision = Decision(action="retrain", reasons=["drift"], dedupe_key="k1")
    calls: list[int] = []

    def start() -> dict[str, object]:
        calls.append(os.getpid())
        return {"run_id": "r"}

    result = retrain.trigger(store, decision, start)

    assert result.status == "started" and calls == [os.getpid()]
    after = (store.folder / retrain.LEDGER).read_bytes()
    assert after.startswith(before)  # appended to, never rewritten
    assert [json.loads(line)["status"] for line in after.decode().splitlines()[2:]] == [
        "started",
        "completed",
    ]
