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


def test_monitor_with_a_stored_profile_leaves_the_heavy_libraries_to_its_step(tmp_path: Path) -> None:
    """`amlops monitor --profile` only prepares the pipeline and prints the result; reading and scoring the data
    is its step's. numpy and pyarrow in the CLI process cost ~0.2 s of a command that takes ~1.7 s (issue 20):
    the metric registry, the column kinds' text and the settings must not pull them in."""
    import numpy as np
    import pandas as pd

    from amlops.drift.profile import build_profile

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=2_000), "c": rng.choice(["a", "b"], 2_000)})
    build_profile(frame, ["x"], ["c"]).to_json(tmp_path / "profile.json")
    frame.to_parquet(tmp_path / "current.parquet")
    (tmp_path / "amlops.yaml").write_text("")
    args = ["monitor", "--profile", "profile.json", "--current", "current.parquet", "--window", "all"]
    code = (
        "import sys; from amlops.cli import app; import typer.testing as t;"
        f"r = t.CliRunner().invoke(app, {args!r}); assert r.exit_code in (0, 3), r.output;"
        f"print([m for m in {(*HEAVY, 'numpy')!r} if m in sys.modules])"
    )
    # The first run in a project parses the pipeline (azure-ai-ml) and caches the plan; every later one reads it.
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout[-2000:]


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
