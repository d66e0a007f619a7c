"""Azure ML's job contract in the local runner: outputs are mount points (write into them, never remove or replace
them), `limits.timeout` stops a step, and the working folder has `./outputs` and `./logs` next to a copy of the
code. Each check is shown failing on a planted fault (tests/runner/fixtures/contract)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from amlops.config import Settings
from amlops.runner.local import StepFailed, run_pipeline

CONTRACT = Path(__file__).parent / "fixtures" / "contract"
SRC = Path(__file__).resolve().parents[2] / "src"


def run(settings: Settings, name: str, action: str | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    inputs = {"action": action} if action else {}
    return run_pipeline(CONTRACT / "pipelines" / name, inputs, settings, quiet=True, **kwargs)


def test_a_step_that_writes_into_its_output_passes_in_a_working_folder_like_azure_mls(
    settings: Settings,
) -> None:
    result = run(settings, "one.yml", "write")
    out = result.job_outputs["step"]["out"]
    cwd = Path((out / "cwd.txt").read_text())
    assert cwd == result.run_dir / "step" / "wd"
    assert not cwd.is_relative_to(CONTRACT / "src") and not cwd.is_relative_to(SRC)
    assert (cwd / "steps.py").is_file()  # the code: folder, copied
    assert {"outputs", "logs"} <= set((out / "folders.txt").read_text().split())


@pytest.mark.parametrize("action", ["replace", "rename"])
def test_a_step_that_removes_or_replaces_its_output_folder_fails(settings: Settings, action: str) -> None:
    with pytest.raises(StepFailed) as failed:
        run(settings, "one.yml", action)
    message = str(failed.value)
    assert "output 'out'" in message and "removed or replaced" in message
    assert "outputs are mount points" in message and "EBUSY" in message


def test_limits_timeout_stops_the_step_and_its_process_group(settings: Settings) -> None:
    started = time.perf_counter()
    with pytest.raises(StepFailed) as failed:
        run(settings, "timeout.yml")
    assert time.perf_counter() - started < 20  # the step sleeps 60 s
    assert "limits.timeout (2s)" in str(failed.value)


def test_without_a_timeout_a_quick_step_is_not_stopped(settings: Settings) -> None:
    assert run(settings, "one.yml", "write").status == "completed"
