"""An exclusive lock on a file, for processes on this machine (the registry's compare-and-set promotion, the
local retrain ledger). The kernel releases an flock when its holder dies, so a crash never leaves it stuck."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(
    path: Path, timeout: float, on_timeout: Callable[[], Exception], poll: float = 0.05
) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing); raise `on_timeout()` after `timeout` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise on_timeout() from None
                time.sleep(poll)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
