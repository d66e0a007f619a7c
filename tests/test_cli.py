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


def _lazy_reads(source: str) -> list[str]:
    """Where a function reads a name the module binds only under `if TYPE_CHECKING:` without importing it itself
    (or in a function around it): a NameError on that path at run time, which ruff cannot see (the name is
    bound, for type checkers)."""
    import ast

    tree = ast.parse(source)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

    def imported(nodes: list[ast.AST]) -> set[str]:
        return {
            (a.asname or a.name).split(".")[0]
            for n in nodes
            if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names
        }

    guarded = [
        n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING"
    ]
    # Bound at run time: imports at the top level (or in a try/if there), not those inside a class's methods.
    top = [n for t in tree.body if t not in guarded and not isinstance(t, defs) for n in ast.walk(t)]
    lazy = imported([n for g in guarded for n in ast.walk(g)]) - imported(top)
    found: list[str] = []

    def annotations(fn: ast.AST) -> set[int]:
        skip: set[int] = set()
        for n in ast.walk(fn):
            parts = [getattr(n, "annotation", None), getattr(n, "returns", None)]
            skip |= {id(x) for part in parts if isinstance(part, ast.AST) for x in ast.walk(part)}
        return skip

    def visit(node: ast.AST, bound: set[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, bound)
                continue
            inner = list(ast.walk(child))
            scope = bound | imported(inner) | {a.arg for a in inner if isinstance(a, ast.arg)}
            scope |= {n.id for n in inner if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            skip = annotations(child)
            for n in inner:
                if isinstance(n, ast.Name) and n.id in lazy and n.id not in scope and id(n) not in skip:
                    found.append(f"line {n.lineno}: {n.id} in {getattr(child, 'name', 'lambda')}")
            visit(child, scope)

    visit(tree, set())
    return found


def test_every_function_imports_the_libraries_the_cli_no_longer_loads() -> None:
    """drift/metrics.py and drift/kinds.py import numpy, pyarrow and the profile inside their functions, so the
    CLI starts without them; a function that lost its import would fail only on its own path. The check finds a
    planted one (metrics.py with one function's `import numpy as np` removed)."""
    root = Path(__file__).resolve().parents[1] / "src" / "amlops" / "drift"
    for name in ("metrics.py", "kinds.py"):
        assert _lazy_reads((root / name).read_text(encoding="utf-8")) == [], name
    source = (root / "metrics.py").read_text(encoding="utf-8")
    planted = source.replace("    import numpy as np\n\n    p = np.asarray(p", "\n    p = np.asarray(p", 1)
    assert planted != source
    assert any("in jensen_shannon_distance" in line for line in _lazy_reads(planted))


def test_the_demo_week_table_piped_with_colours_forced_is_not_squeezed() -> None:
    """FORCE_COLOR=1 or TTY_COMPATIBLE=1 (colours in a CI log) make rich call a pipe a terminal; the table was then
    printed at the 160 columns a pipe gets, headers folded to "we…" and "cha…". Colours stay."""
    code = (
        "from amlops.commands.loop_cmd import table_console, week_table\n"
        "from amlops.demo import DemoConfig, DemoResult, WeekRow\n"
        "rows = [WeekRow(week=w, start='2025-07-14', champion='v1', verdict='ALARM', mae=12.34,\n"
        "    drifted_features=['temperature', 'price', 'promo_share'], after_change=True,\n"
        "    action='retrain → v2 rejected by the gate (mae 12.1 vs 11.9, not confident)',\n"
        "    estimated_mae=11.2, estimated_low=9.1, estimated_high=13.3, labels_week=w + 2)\n"
        "    for w in range(27, 30)]\n"
        "table = week_table(DemoResult(rows=rows), DemoConfig())\n"
        "table_console(table).print(table)\n"
    )
    import os
    import re

    for forced in ({"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}, {}):
        env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"}}
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**env, **forced}
        )
        assert proc.returncode == 0, proc.stderr
        plain = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
        assert "┃ week ┃ starts     ┃ champion ┃" in plain, (forced, plain[:600])
        assert "not confident) │" in plain, forced
        assert ("\x1b[" in proc.stdout) == bool(forced), forced
