"""Stopping the CLI stops the whole step: SIGTERM or SIGINT to `amlops run` stops the step's process group (a
child the step started too) and run.json ends `cancelled`, never `running`. A refused run ends `failed`. The error
summary of a huge step log reads only its tail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amlops.runner import local
from amlops.runner.local import _tail

COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: sleeper
version: "1"
inputs:
  seconds:
    type: integer
    default: 120
outputs:
  out:
    type: uri_folder
environment: azureml:AzureML-sklearn-1.5@latest
command: >-
  python -c "import os, subprocess, sys, time;
  child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(${{inputs.seconds}})']);
  open(os.path.join(os.environ['MARKS'], 'pids'), 'w').write(f'{os.getpid()} {child.pid}');
  time.sleep(${{inputs.seconds}})"
"""

PIPELINE = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
experiment_name: signals
jobs:
  sleep:
    type: command
    component: ./sleeper.yml
  after:
    type: command
    component: ./sleeper.yml
    inputs:
      seconds: 1
"""


def _as_in_a_terminal() -> None:
    """The CLI's SIGINT as an interactive shell gives it. Started from a background job (`make test &`), the test
    run and so the CLI inherit SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the signal
    this test sends would do nothing, as POSIX wants for a background job."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_cli_stops_the_step_group_and_ends_the_run(
    tmp_path: Path, sig: signal.Signals
) -> None:
    (tmp_path / "sleeper.yml").write_text(COMPONENT)
    (tmp_path / "pipeline.yml").write_text(PIPELINE)
    (tmp_path / "amlops.yaml").write_text("model_name: m\n")
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "AMLOPS_CONFIG": str(tmp_path / "amlops.yaml"), "MARKS": str(marks)}
    cli = subprocess.Popen(
        [sys.executable, "-m", "amlops.cli", "run", str(tmp_path / "pipeline.yml")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_in_a_terminal,
    )
    deadline = time.monotonic() + 90
    while not (marks / "pids").exists() or not (marks / "pids").read_text():
        assert time.monotonic() < deadline and cli.poll() is None, cli.communicate()
        time.sleep(0.2)
    step_pid, child_pid = map(int, (marks / "pids").read_text().split())
    cli.send_signal(sig)
    _, stderr = cli.communicate(timeout=30)
    assert cli.returncode == 130, stderr
    assert "interrupted" in stderr
    for _ in range(50):
        if not _alive(step_pid) and not _alive(child_pid):
            break
        time.sleep(0.1)
    assert not _alive(step_pid) and not _alive(child_pid), "the step or its child outlived the CLI"
    (manifest,) = (tmp_path / "runs").rglob("run.json")
    run = json.loads(manifest.read_text())
    assert run["status"] == "cancelled"


def test_the_log_tail_reads_only_the_end_of_a_huge_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "std_log.txt"
    with log.open("w") as fh:
        for i in range(200_000):
            fh.write(f"progress line {i} " + "x" * 80 + "\n")
        fh.write("error: the real reason\n")
    read: list[int] = []
    real_open = Path.open

    def spying_open(self: Path, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        handle = real_open(self, *args, **kwargs)  # type: ignore[arg-type]
        if self == log:
            original = handle.read
            handle.read = lambda n=-1: (read.append(n), original(n))[1]  # type: ignore[method-assign]
        return handle

    monkeypatch.setattr(Path, "open", spying_open)
    monkeypatch.setattr(Path, "read_text", lambda *_a, **_k: pytest.fail("the whole log was read"))
    tail = _tail(log)
    assert tail.splitlines()[-1] == "error: the real reason"
    assert len(tail.splitlines()) == local.LOG_TAIL_LINES
    assert read and all(0 < n <= local.TAIL_BYTES for n in read)
    assert log.stat().st_size > 100 * local.TAIL_BYTES
