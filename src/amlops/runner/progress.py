"""Live progress of a running step: its elapsed time and the last line it logged.

A step runs for seconds to minutes with its output going to its log file; between the runner's "▶" and "✓"
lines a user should see that it is alive and what it is doing. On a terminal that is one transient line,
refreshed a few times a second (`⠋ [2/4] train  12s  fitting HistGradientBoostingRegressor…`), gone when the
step ends; in a log (CI, a pipe) it is a line every `heartbeat` seconds, so a long step is not silent there
either, without flooding the log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape

TAIL_BYTES = 4096  # the last line of a log is within its last few KB (a traceback's last line is short)
REFRESH_SECONDS = 0.25
HEARTBEAT_SECONDS = 30.0
MAX_LINE = 100


def last_log_line(log: Path) -> str:
    """The step's latest non-empty output line (the runner's own `# ...` header lines skipped), shortened."""
    try:
        with log.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    for line in reversed(text.replace("\r", "\n").splitlines()):
        line = line.strip()
        if line and not line.startswith("# "):
            return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"
    return ""


def describe(label: str, elapsed: float, line: str) -> str:
    text = f"{label}  {elapsed:.0f}s"
    return f"{text}  [dim]{escape(line)}[/]" if line else text


class _Ticker(threading.Thread):
    """Calls `tick(elapsed)` every `every` seconds until stopped."""

    def __init__(self, every: float, tick: object) -> None:
        super().__init__(daemon=True)
        self.every, self.tick = every, tick
        self.started = time.perf_counter()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.tick(time.perf_counter() - self.started)  # type: ignore[operator]


@contextmanager
def _ticking(ticker: _Ticker) -> Iterator[None]:
    ticker.start()
    try:
        yield
    finally:
        ticker.done.set()
        ticker.join()


@contextmanager
def step_progress(
    console: Console, label: str, log: Path, *, enabled: bool = True, heartbeat: float = HEARTBEAT_SECONDS
) -> Iterator[None]:
    """Show the step's progress while the body runs (the runner waits for the step's process in it)."""
    if not enabled:
        yield
        return
    if console.is_terminal:
        with (
            console.status(describe(label, 0.0, ""), spinner="dots") as status,
            _ticking(
                _Ticker(REFRESH_SECONDS, lambda s: status.update(describe(label, s, last_log_line(log))))
            ),
        ):
            yield
        return
    with _ticking(
        _Ticker(heartbeat, lambda s: console.print(f"  … {describe(label, s, last_log_line(log))}"))
    ):
        yield
