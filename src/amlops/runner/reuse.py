"""Reuse a deterministic step's outputs from an earlier local run, as Azure ML reuses a pipeline step.

Azure ML reuses a node's earlier result when its component is deterministic (`is_deterministic`, default true:
Microsoft Learn "CLI (v2) command component YAML schema", reference-yaml-component-command) and its inputs, code and
settings are unchanged. Here the key is a digest of the component file, the command, the code folder's files, the
environment variables and every input: literals as written, local data and upstream outputs by content. A step
reading an MLflow model (models:/) or a remote URL is never reused: its input can change behind the same name.
`amlops run --no-reuse` runs every step.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from amlops.console import out
from amlops.runner.plan import OutputRef, PathValue, StepPlan, render_primitive

if TYPE_CHECKING:
    from amlops.runner.context import RunContext
    from amlops.runner.local import LocalRunner, StepResult

_SKIP = {"__pycache__", ".git"}


def _digest_path(path: Path, h: hashlib._Hash) -> None:
    if path.is_file():
        h.update(b"F")
        h.update(path.read_bytes())
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not _SKIP & set(p.parts)):
        if file.suffix == ".pyc":
            continue
        h.update(file.relative_to(path).as_posix().encode())
        h.update(file.read_bytes())


def reuse_key(ctx: RunContext, step: StepPlan) -> str | None:
    """The step's reuse digest, or None when it must run (not deterministic, or an input outside our view)."""
    if not step.deterministic:
        return None
    h = hashlib.sha256()
    h.update(
        json.dumps(
            [step.component, step.kind, step.command, step.environment_variables], default=str
        ).encode()
    )
    h.update(json.dumps(step.parallel, default=str, sort_keys=True).encode())
    h.update(json.dumps(step.distribution, default=str, sort_keys=True).encode())
    if step.source is not None and step.source.is_file():
        h.update(step.source.read_bytes())
    if step.code_dir is not None:
        _digest_path(step.code_dir, h)
    for key in sorted(step.input_types):
        value = step.inputs.get(key)
        h.update(f"|{key}=".encode())
        if isinstance(value, OutputRef):
            _digest_path(ctx.outputs_of[value.job][value.output], h)
        elif isinstance(value, PathValue):
            if "://" in value.path or value.path.startswith("models:/"):
                return None
            if not Path(value.path).exists():
                return None  # the run reports the missing input
            _digest_path(Path(value.path), h)
        elif value is not None:
            h.update(render_primitive(value).encode())
    for name, spec in sorted(step.outputs.items()):
        h.update(f"|out {name}:{spec.type}:{spec.target}".encode())
    return h.hexdigest()


def _record_file(runner: LocalRunner, key: str) -> Path:
    return runner.settings.state_path / "reuse" / f"{key}.json"


def lookup(runner: LocalRunner, ctx: RunContext, step: StepPlan, key: str, label: str) -> StepResult | None:
    from amlops.runner.local import StepResult

    record = _record_file(runner, key)
    if not record.is_file():
        return None
    data = json.loads(record.read_text(encoding="utf-8"))
    outputs = {name: Path(p) for name, p in data["outputs"].items()}
    if not all(p.exists() for p in outputs.values()):
        return None  # the earlier run's folder was cleaned up
    ctx.outputs_of[step.name] = outputs
    runner._deliver_targets(ctx, step, outputs)
    if not runner.quiet:
        out.print(
            f"[green]↺[/] {label}  reused from run {data['run_id']} (deterministic; --no-reuse runs it)"
        )
    return StepResult(step.name, "completed", 0.0, 0, f"reused from run {data['run_id']}", data.get("log"))


def record(runner: LocalRunner, ctx: RunContext, step: StepPlan, key: str) -> None:
    file = _record_file(runner, key)
    file.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "run_id": runner.run_id,
        "step": step.name,
        "outputs": {name: str(p) for name, p in ctx.outputs_of.get(step.name, {}).items()},
        "log": str(ctx.step_dir(step.name) / "user_logs" / "std_log.txt"),
    }
    file.write_text(json.dumps(data, indent=2), encoding="utf-8")
