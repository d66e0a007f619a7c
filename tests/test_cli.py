"""The CLI: fast to start (heavy libraries imported lazily), one clear error line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("mlflow", "azure.ai.ml", "sklearn", "pandas", "pyarrow", "scipy")


def amlops(*args: str, cwd: Path, project: bool = True) -> subprocess.CompletedProcess[str]:
    """The console script in `cwd`; a project folder (an empty amlops.yaml) unless `project=False`."""
    if project and not (cwd / "amlops.yaml").exists():
        (cwd / "amlops.yaml").write_text("")
    return subprocess.run(
        [sys.executable, "-m", "amlops.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys; from amlops.cli import app; import typer.testing as t;"
        "r = t.CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_run_with_a_missing_file_fails_with_one_line(tmp_path: Path) -> None:
    proc = amlops("run", "nope.yml", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: nope.yml: pipeline file not found"]


def test_bad_set_syntax_is_a_clear_error(tmp_path: Path, repo: Path) -> None:
    proc = amlops(
        "run", str(repo / "tests/runner/fixtures/pipelines/basic.yml"), "--set", "scale=2", cwd=tmp_path
    )
    assert proc.returncode == 2  # a usage error, as a bad flag
    assert "--set 'scale=2': expected inputs.<name>=<value>" in proc.stderr


def test_invalid_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "amlops.yaml").write_text("gate:\n  metric: accuracy\n")
    proc = amlops("config", "show", cwd=tmp_path)
    assert proc.returncode == 2
    assert "gate.metric: Input should be 'mae', 'rmse' or 'mape'" in proc.stderr


def test_run_prints_progress_and_where_outputs_landed(tmp_path: Path, repo: Path) -> None:
    proc = amlops(
        "run",
        str(repo / "tests/runner/fixtures/pipelines/basic.yml"),
        "--set",
        "inputs.scale=2",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "✓ [1/2] count_job" in proc.stdout and "✓ [2/2] total_job" in proc.stdout
    assert f"run folder: {tmp_path / 'runs' / 'basic'}" in proc.stdout
    assert (tmp_path / "runs" / "basic").is_dir()


def test_failing_step_exits_non_zero_with_log_tail(tmp_path: Path, repo: Path) -> None:
    proc = amlops("run", str(repo / "tests/runner/fixtures/pipelines/parallel_fail.yml"), cwd=tmp_path)
    assert proc.returncode == 1
    first = proc.stderr.strip().splitlines()[0]
    assert first.startswith("error: step 'score' of parallel_fail.yml failed (exit 1)")
    assert "ValueError: cannot score part-003.txt" in proc.stderr


def test_outside_a_project_it_says_once_where_state_goes(tmp_path: Path) -> None:
    proc = amlops("config", "show", cwd=tmp_path, project=False)
    assert proc.returncode == 0, proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if "no amlops.yaml" in ln]
    assert f"state in {tmp_path / '.amlops'}" in line and f"runs in {tmp_path / 'runs'}" in line
    assert "no amlops.yaml" not in amlops("config", "show", cwd=tmp_path).stderr  # inside a project: silent
