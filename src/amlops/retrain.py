"""Start a retrain at most once per decision: a file lock plus an append-only ledger keyed by the dedupe key.

Two monitor runs of the same window compute the same dedupe key; the first to take the lock records the key and
starts training, the second finds the key and starts nothing. A retrain whose process died (no completion line,
pid gone) or failed does not block a later attempt. Every decision — retrain or not — goes to `decisions.jsonl`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amlops.config import Settings
from amlops.console import UserError
from amlops.drift.policy import Decision

LOCK_TIMEOUT_S = 600.0


@dataclass
class TriggerResult:
    status: str  # "started" | "duplicate" | "skipped"
    detail: dict[str, Any]


def retrain_dir(settings: Settings) -> Path:
    path = settings.state_path / "retrain"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def exclusive_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """An OS-level lock (released by the kernel if the holder dies, so a crash never leaves it stuck)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UserError(
                        f"{path}: another retrain holds the lock for more than {timeout:.0f}s"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a crash is ignored, never fatal
    return rows


def _append_jsonl(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _alive(entry: dict[str, Any]) -> bool:
    if entry.get("host") != socket.gethostname():
        return True  # cannot tell for another machine: assume it is still running
    try:
        os.kill(int(entry.get("pid", -1)), 0)
    except (OSError, ValueError):
        return False
    return True


def ledger(settings: Settings) -> list[dict[str, Any]]:
    """Ledger rows folded per key: the latest status of each retrain attempt."""
    state: dict[str, dict[str, Any]] = {}
    for row in _read_jsonl(retrain_dir(settings) / "ledger.jsonl"):
        state.setdefault(row["key"], {}).update(row)
    return list(state.values())


def last_retrain_at(settings: Settings) -> datetime | None:
    """When the last retrain that did not fail was started (for the cooldown)."""
    times = [
        datetime.fromisoformat(e["started_at"])
        for e in ledger(settings)
        if e.get("status") != "failed" and e.get("started_at")
    ]
    return max(times) if times else None


def record_decision(settings: Settings, decision: Decision, context: dict[str, Any]) -> None:
    row = {"at": datetime.now(UTC).isoformat(), **context, **decision.to_dict()}
    _append_jsonl(retrain_dir(settings) / "decisions.jsonl", row)


def trigger(
    settings: Settings,
    decision: Decision,
    start: Callable[[], dict[str, Any]],
    *,
    now: datetime | None = None,
) -> TriggerResult:
    """Run `start()` (which submits or runs the training pipeline) once for this decision's dedupe key."""
    if not decision.retrain:
        return TriggerResult("skipped", {"reason": decision.reasons[0] if decision.reasons else "no retrain"})
    folder = retrain_dir(settings)
    ledger_path = folder / "ledger.jsonl"
    started_at = (now or datetime.now(UTC)).isoformat()
    with exclusive_lock(folder / "retrain.lock"):
        for entry in ledger(settings):
            if entry["key"] != decision.dedupe_key:
                continue
            running = entry.get("status") == "started" and _alive(entry)
            if entry.get("status") == "completed" or running:
                return TriggerResult("duplicate", entry)
        _append_jsonl(
            ledger_path,
            {
                "key": decision.dedupe_key,
                "status": "started",
                "started_at": started_at,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "reasons": decision.reasons,
            },
        )
    # Training runs outside the lock: the recorded key already keeps a second monitor of this window out.
    try:
        detail = start()
    except BaseException as exc:
        _append_jsonl(
            ledger_path,
            {
                "key": decision.dedupe_key,
                "status": "failed",
                "error": str(exc)[:500],
                "finished_at": datetime.now(UTC).isoformat(),
            },
        )
        raise
    _append_jsonl(
        ledger_path,
        {
            "key": decision.dedupe_key,
            "status": "completed",
            "finished_at": datetime.now(UTC).isoformat(),
            **detail,
        },
    )
    return TriggerResult("started", {"key": decision.dedupe_key, "started_at": started_at, **detail})
