"""Live progress while a step runs: elapsed time and the step's last log line (amlops.runner.progress)."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console

from amlops.runner.progress import last_log_line, step_progress


def _log(tmp_path: Path, *lines: str) -> Path:
    log = tmp_path / "std_log.txt"
    log.write_text("# python -m amlops.steps.train ...\n# cwd: /x\n" + "".join(f"{x}\n" for x in lines))
    return log


def test_the_last_line_is_the_steps_latest_output_not_the_runner_header(tmp_path: Path) -> None:
    assert last_log_line(_log(tmp_path)) == ""
    log = _log(tmp_path, "reading snapshot", "fitting HistGradientBoostingRegressor", "")
    assert last_log_line(log) == "fitting HistGradientBoostingRegressor"
    log.write_text(log.read_text() + "epoch 3/10\r" + "x" * 500)  # progress bars and long lines
    assert last_log_line(log).startswith("xxx") and len(last_log_line(log)) == 100
    assert last_log_line(tmp_path / "missing.txt") == ""


def test_a_log_gets_a_heartbeat_with_elapsed_time_and_the_last_line(tmp_path: Path) -> None:
    log = _log(tmp_path, "loading model")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    with step_progress(console, "[2/4] train", log, heartbeat=0.1):
        time.sleep(0.25)
        log.write_text(log.read_text() + "scoring holdout\n")
        time.sleep(0.25)
    lines = buffer.getvalue().splitlines()
    assert len(lines) >= 3, lines
    assert lines[0].startswith("  … [2/4] train  0s  loading model")
    assert lines[-1].endswith("scoring holdout")
    heartbeats = len(lines)
    time.sleep(0.3)
    assert len(buffer.getvalue().splitlines()) == heartbeats  # stops with the step


def test_a_terminal_gets_one_live_line_and_quiet_gets_nothing(tmp_path: Path) -> None:
    log = _log(tmp_path, "fitting")
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200)
    with step_progress(console, "[1/1] score", log):
        time.sleep(0.6)
    shown = buffer.getvalue()
    assert "[1/1] score" in shown and "fitting" in shown
    assert shown.count("\n") <= 1  # redrawn in place, not a line per refresh
    quiet = io.StringIO()
    with step_progress(Console(file=quiet, force_terminal=True), "x", log, enabled=False):
        time.sleep(0.3)
    assert quiet.getvalue() == ""
