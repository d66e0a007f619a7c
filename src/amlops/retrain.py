"""Start a retrain at most once per decision: a lock plus an append-only ledger keyed by the dedupe key, kept
where every runner of the loop sees them.

Two monitor runs of the same window compute the same dedupe key; the first to take the lock records the key and
starts training, the second finds the key and starts nothing. A retrain whose process died (no completion line,
its process gone, or silent for longer than `STALE_AFTER` on another machine) or failed does not block a later
attempt, and does not count for the cooldown. Every decision — retrain or not — goes to the decision log.

Two stores, one semantics:

- `FolderStore`: a folder on this machine (`<state_dir>/retrain`); an OS file lock (the kernel releases it when
  the holder dies) and JSON-lines files appended with fsync.
- `BlobStore`: a prefix in an Azure Blob container (the workspace's default datastore for `--target azure`, or
  any `abfs://` URL in `policy.ledger`), so a GitHub runner, a workstation and a scheduled job share one ledger. The
  lock is a blob lease (it expires `LEASE_SECONDS` after a holder dies: "Lease Blob", Azure Storage REST docs,
  learn.microsoft.com/rest/api/storageservices/lease-blob); the ledger and the decision log are append blobs, each
  row one `Append Block` call, which the service applies atomically
  (learn.microsoft.com/rest/api/storageservices/append-block).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from amlops import console
from amlops.drift.policy import Decision
from amlops.errors import UserError
from amlops.job_inputs import Target
from amlops.locks import file_lock

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

    from amlops.config import Settings

LOCK_TIMEOUT_S = 600.0
LEASE_SECONDS = 60  # the service allows 15-60 s or infinite; the lock is only held to read and append one row
# A "started" retrain recorded on another machine whose process cannot be checked: after this long without a
# completion line it no longer blocks its key nor counts for the cooldown (a crashed runner never finishes it).
STALE_AFTER = timedelta(hours=6)
LEDGER = "ledger.jsonl"
DECISIONS = "decisions.jsonl"
# Where `--target azure` keeps the ledger inside the workspace's default datastore.
DATASTORE_PREFIX = "amlops/state/retrain"
_REQUIRED = {LEDGER: "key"}


class LedgerStore(Protocol):
    """Where the ledger and the decision log live, and the lock that serialises retrain starts."""

    where: str

    def lock(self, timeout: float = LOCK_TIMEOUT_S) -> AbstractContextManager[None]: ...

    def read(self, name: str) -> list[dict[str, Any]]: ...

    def append(self, name: str, row: dict[str, Any]) -> None: ...


def _parse_rows(text: str, where: str, required: str | None) -> list[dict[str, Any]]:
    """JSON lines as mappings; unreadable lines (a torn last line from a crash, a hand edit) are skipped with
    one warning, never fatal."""
    rows = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict) and (required is None or required in row):
            rows.append(row)
        else:
            bad += 1
    if bad:
        console.warn(f"{where}: skipped {bad} unreadable line(s)")
    return rows


def _line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, default=str) + "\n").encode("utf-8")


class FolderStore:
    """The ledger in a local folder, guarded by an OS-level file lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.where = str(folder)

    def _dir(self) -> Path:
        if self.folder.exists() and not self.folder.is_dir():
            raise UserError(f"{self.folder}: the retrain state folder is a file; move it away")
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    @contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        path = self._dir() / "retrain.lock"

        def timed_out() -> Exception:
            return UserError(f"{path}: another retrain holds the lock for more than {timeout:.0f}s")

        with file_lock(path, timeout, timed_out, poll=0.1):
            yield

    def read(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / name
        if not path.is_file():
            return []
        return _parse_rows(path.read_text(encoding="utf-8", errors="replace"), str(path), _REQUIRED.get(name))

    def append(self, name: str, row: dict[str, Any]) -> None:
        with (self._dir() / name).open("ab") as fh:
            fh.write(_line(row))
            fh.flush()
            os.fsync(fh.fileno())


class BlobStore:
    """The ledger under a prefix of an Azure Blob container: lease-guarded lock, append blobs."""

    def __init__(self, container: ContainerClient, prefix: str, where: str) -> None:
        self.container = container
        self.prefix = prefix.strip("/")
        self.where = where

    def _blob(self, name: str) -> Any:
        return self.container.get_blob_client(f"{self.prefix}/{name}" if self.prefix else name)

    @contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError
        from azure.storage.blob import BlobLeaseClient

        blob = self._blob("retrain.lock")
        with suppress(ResourceExistsError):
            blob.upload_blob(b"", overwrite=False)
        lease = BlobLeaseClient(blob)
        deadline = time.monotonic() + timeout
        while True:
            try:
                lease.acquire(lease_duration=LEASE_SECONDS)
                break
            except HttpResponseError as exc:
                if exc.status_code != 409 or time.monotonic() > deadline:
                    if exc.status_code == 409:
                        raise UserError(
                            f"{self.where}: another retrain holds the lock for more than {timeout:.0f}s"
                        ) from None
                    raise
                time.sleep(0.5)
        try:
            yield
        finally:
            with contextlib.suppress(HttpResponseError):  # expired meanwhile: the next holder is free anyway
                lease.release()

    def read(self, name: str) -> list[dict[str, Any]]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            data = self._blob(name).download_blob().readall()
        except ResourceNotFoundError:
            return []
        return _parse_rows(
            data.decode("utf-8", errors="replace"), f"{self.where}/{name}", _REQUIRED.get(name)
        )

    def append(self, name: str, row: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceExistsError

        blob = self._blob(name)
        # if_none_match="*": create only when absent, never truncate a ledger another runner just made.
        with contextlib.suppress(ResourceExistsError):
            blob.create_append_blob(if_none_match="*")
        blob.append_block(_line(row))


def blob_store(url: str, credential: Any = None) -> BlobStore:
    """A BlobStore for `abfs://container@account.dfs.core.windows.net/prefix` (or `az://container/prefix` with
    AZURE_STORAGE_CONNECTION_STRING, as Azurite in tests)."""
    from azure.storage.blob import ContainerClient

    parsed = urlparse(url)
    container, _, host = parsed.netloc.partition("@")
    prefix = parsed.path.strip("/")
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        client = ContainerClient.from_connection_string(conn, container)
    else:
        account = host.split(".", 1)[0] if host else os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        if not account:
            raise UserError(
                f"{url}: no storage account (abfs://<container>@<account>.dfs.core.windows.net/…)"
            )
        if credential is None:
            from amlops.azure.client import default_credential

            credential = default_credential()
        client = ContainerClient(f"https://{account}.blob.core.windows.net", container, credential=credential)
    return BlobStore(client, prefix, url)


def store_for(settings: Settings, target: Target = Target.local, env: str | None = None) -> LedgerStore:
    """The ledger every runner of this deployment shares: `policy.ledger` when set (a folder or abfs:// URL),
    else `<state_dir>/retrain` for local loops and the workspace's default datastore for Azure ML loops."""
    configured = settings.policy.ledger
    if configured:
        if "://" in configured:
            return blob_store(configured)
        return FolderStore(settings.path(configured))
    if target is Target.azure:
        return blob_store(workspace_ledger_url(settings, env))
    return FolderStore(settings.state_path / "retrain")


def workspace_ledger_url(settings: Settings, env: str | None) -> str:
    """`abfs://<container>@<account>.dfs.core.windows.net/amlops/state/retrain` of the workspace's default
    datastore (`ml.datastores.get_default()`: azure-ai-ml DatastoreOperations)."""
    from amlops.azure import client as azclient
    from amlops.azure.errors import azure_errors

    az = azclient.target(settings, env)
    with azure_errors(az, env):
        store = azclient.ml_client(settings, env).datastores.get_default()
    account = getattr(store, "account_name", None)
    container = getattr(store, "container_name", None)
    if not account or not container:
        raise UserError(
            f"the default datastore of workspace {az.workspace} is not a blob container; set policy.ledger "
            "to an abfs:// URL every runner can write"
        )
    return f"abfs://{container}@{account}.dfs.core.windows.net/{DATASTORE_PREFIX}"


@dataclass
class TriggerResult:
    status: str  # "started" | "duplicate" | "skipped"
    detail: dict[str, Any]


def _process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks (/proc/<pid>/stat field 22): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(entry: dict[str, Any], now: datetime) -> bool:
    """Whether a "started" retrain may still be running."""
    if entry.get("host") == socket.gethostname():
        try:
            pid = int(entry.get("pid", -1))
            os.kill(pid, 0)
        except (OSError, ValueError, TypeError):
            return False
        started = entry.get("proc_start")
        return started is None or _process_start(pid) == started
    begun = started_at(entry)
    return begun is not None and now - begun < STALE_AFTER


def started_at(entry: dict[str, Any]) -> datetime | None:
    """When a retrain started, as an aware time; None when the row's time is missing or unreadable (a hand edit,
    another tool): such a row must not stop every later loop with a traceback. A time without a zone is UTC,
    which is what `trigger` writes."""
    try:
        begun = datetime.fromisoformat(str(entry["started_at"]))
    except (KeyError, ValueError):
        return None
    return begun if begun.tzinfo else begun.replace(tzinfo=UTC)


def ledger(store: LedgerStore) -> list[dict[str, Any]]:
    """Ledger rows folded per key: the latest status of each retrain attempt."""
    state: dict[str, dict[str, Any]] = {}
    for row in store.read(LEDGER):
        state.setdefault(str(row["key"]), {}).update(row)
    return list(state.values())


def _counts(entry: dict[str, Any], now: datetime) -> bool:
    """A retrain counts (for dedupe and cooldown) when it completed or may still be running."""
    status = entry.get("status")
    return status == "completed" or (status == "started" and _alive(entry, now))


def last_retrain_at(store: LedgerStore, now: datetime | None = None) -> datetime | None:
    """When the last retrain that completed or is still running was started (for the cooldown)."""
    now = now or datetime.now(UTC)
    entries = [e for e in ledger(store) if "started_at" in e]
    times = [begun for e in entries if (begun := started_at(e)) is not None and _counts(e, now)]
    unreadable = sum(1 for e in entries if started_at(e) is None)
    if unreadable:
        console.warn(
            f"{store.where}: {unreadable} retrain(s) with an unreadable started_at ignored for the cooldown"
        )
    return max(times) if times else None


def decisions(store: LedgerStore) -> list[dict[str, Any]]:
    return store.read(DECISIONS)


def record_decision(store: LedgerStore, decision: Decision, context: dict[str, Any]) -> None:
    row = {"at": datetime.now(UTC).isoformat(), **context, **decision.to_dict()}
    store.append(DECISIONS, row)


def trigger(
    store: LedgerStore,
    decision: Decision,
    start: Callable[[], dict[str, Any]],
    *,
    now: datetime | None = None,
) -> TriggerResult:
    """Run `start()` (which submits or runs the training pipeline) once for this decision's dedupe key."""
    if not decision.retrain:
        return TriggerResult("skipped", {"reason": decision.reasons[0] if decision.reasons else "no retrain"})
    now = now or datetime.now(UTC)
    started_at = now.isoformat()
    with store.lock():
        for entry in ledger(store):
            if entry["key"] == decision.dedupe_key and _counts(entry, now):
                return TriggerResult("duplicate", entry)
        pid = os.getpid()
        store.append(
            LEDGER,
            {
                "key": decision.dedupe_key,
                "status": "started",
                "started_at": started_at,
                "pid": pid,
                "proc_start": _process_start(pid),
                "host": socket.gethostname(),
                "reasons": decision.reasons,
            },
        )
    # Training runs outside the lock: the recorded key already keeps a second monitor of this window out.
    try:
        detail = start()
    except BaseException as exc:
        store.append(
            LEDGER,
            {
                "key": decision.dedupe_key,
                "status": "failed",
                "error": str(exc)[:500],
                "finished_at": datetime.now(UTC).isoformat(),
            },
        )
        raise
    store.append(
        LEDGER,
        {
            "key": decision.dedupe_key,
            "status": "completed",
            "finished_at": datetime.now(UTC).isoformat(),
            **detail,
        },
    )
    return TriggerResult("started", {"key": decision.dedupe_key, "started_at": started_at, **detail})
