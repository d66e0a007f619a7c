"""Helpers of the newcomer tests: the README's first session, run as a user would type it, in a fresh project."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from amlops.drift.result import MonitorResult

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
FIRST_SESSION = "### A first session by hand"
AMLOPS = Path(sys.executable).with_name("amlops")


def first_session_commands(readme: str | None = None) -> list[list[str]]:
    """The commands of the README's first ```bash block under "A first session by hand", as argv lists
    (shell comments dropped), exactly as written."""
    text = readme if readme is not None else README.read_text(encoding="utf-8")
    start = text.index(FIRST_SESSION)
    block = re.search(r"```bash\n(.*?)```", text[start:], re.DOTALL)
    assert block, f"no ```bash block under {FIRST_SESSION!r} in README.md"
    commands = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [c for c in commands if c]


def new_project(root: Path, schema: Path | None = None) -> Path:
    """A project folder as a user starts one: amlops.yaml (the repository's, or one naming only a schema)."""
    root.mkdir(parents=True, exist_ok=True)
    if schema is None:
        shutil.copy(REPO / "amlops.yaml", root / "amlops.yaml")
        (root / "data" / "schema").mkdir(parents=True)
        shutil.copy(REPO / "data" / "schema" / "demand.yaml", root / "data" / "schema" / "demand.yaml")
    else:
        shutil.copy(schema, root / schema.name)
        (root / "amlops.yaml").write_text(f"data:\n  schema_file: {schema.name}\n", encoding="utf-8")
    return root


def clean_env() -> dict[str, str]:
    """The environment of a user's shell: no amlops or MLflow settings leaking in from the test process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMLOPS_", "MLFLOW_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", NO_COLOR="1", COLUMNS="160")
    return env


@dataclass
class Ran:
    argv: list[str]
    returncode: int
    output: str


def run(argv: list[str], cwd: Path) -> Ran:
    """One command as typed (`amlops ...` is this environment's amlops)."""
    assert argv[0] == "amlops", f"not an amlops command: {shlex.join(argv)}"
    proc = subprocess.run(
        [str(AMLOPS), *argv[1:]],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    ran = Ran(argv, proc.returncode, proc.stdout + proc.stderr)
    assert ran.returncode == 0, f"{shlex.join(argv)} exited {ran.returncode}:\n{ran.output[-3000:]}"
    return ran


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def assert_drift_from(result: MonitorResult, feature: str, since: date) -> None:
    """The verdict is drift and names `feature`; the feature drifted in no judged window before `since`, and
    in the window that holds `since`."""
    v = result.verdict
    assert v.status == "drift", v.summary
    assert v.drift_detected and result.overall.drift_detected, "result.json contradicts itself"
    assert feature in v.drifted_features, f"{feature} not named: {v.summary}"
    judged = [w for w in result.windows if w.judged]
    assert judged, "no window judged"
    before = [w.window for w in judged if date.fromisoformat(str(w.end)[:10]) < since]
    early = [w.window for w in judged if w.window in before and feature in w.drifted_features]
    assert not early, f"{feature} drifted before {since}: {early}"
    first = next(w for w in judged if feature in w.drifted_features)
    assert date.fromisoformat(str(first.start)[:10]) <= since <= date.fromisoformat(str(first.end)[:10]), (
        f"{feature} first drifted in {first.window} ({first.start} .. {first.end}), not in the week of {since}"
    )
    assert f"{feature} (from {first.window})" in v.summary, v.summary
