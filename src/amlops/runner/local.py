"""Execute an AML CLI v2 pipeline job on this machine, the way Azure ML would run it.

Each leaf step runs in its own process (a `python -m` step forked from a warm zygote when one is up,
runner/warm.py), in a working folder holding a copy of the component's `code:` folder
and empty `./outputs` and `./logs` (as Azure ML's job working directory does), with its stdout/stderr in
`runs/<pipeline>/<run-id>/<job>/user_logs/std_log.txt`, its outputs in `runs/<pipeline>/<run-id>/<job>/<output>`,
and MLflow pointed at the configured tracking store. A failing step stops the run with its log tail.

Azure ML's job contract is enforced where Azure ML would fail the job: an output folder is a mount point that a
step may write into but never remove or replace, and a command node's `limits.timeout` kills the step. With
`isolated`, a step runs in a venv built from its component's `environment:` (runner/environment.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from amlops import storage
from amlops.config import Settings
from amlops.console import UserError, out
from amlops.runner import warm
from amlops.runner.assets import resolve_component, resolve_plan_assets
from amlops.runner.command import check_literals, render, substitute, unquoted_notes
from amlops.runner.context import RunContext
from amlops.runner.datastores import check_plan_datastores, is_datastore_uri
from amlops.runner.datastores import local_path as datastore_path
from amlops.runner.environment import interpreter_for, isolated_env
from amlops.runner.overrides import RunOverrides
from amlops.runner.plan import (
    DEFAULT_OUTPUT,
    OutputRef,
    PathValue,
    Plan,
    StepPlan,
    build_plan,
    render_primitive,
)
from amlops.runner.progress import step_progress
from amlops.runner.remote import check_http_input

LOG_TAIL_LINES = 25
TAIL_BYTES = 64 * 1024


class StepProcess(Protocol):
    """A running step: a cold subprocess.Popen or a warm amlops.runner.warm.WarmProcess."""

    pid: int
    stdout: IO[str] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def _template(step: StepPlan) -> str:
    """The step's command before its placeholders are filled (a parallel step's program_arguments)."""
    if step.kind == "parallel":
        return str(((step.parallel or {}).get("task") or {}).get("program_arguments") or "")
    return step.command or ""


class Terminated(KeyboardInterrupt):
    """SIGTERM to the CLI: handled as Ctrl-C is (the step's process group is stopped, run.json says cancelled)."""


@dataclass
class StepResult:
    name: str
    status: str  # "completed" | "failed" | "skipped" | "cancelled" (a sweep trial its policy stopped)
    seconds: float = 0.0
    exit_code: int | None = None
    command: str | None = None
    log: str | None = None


@dataclass
class PipelineRunResult:
    pipeline: str
    run_id: str
    run_dir: Path
    status: str
    outputs: dict[str, Path] = field(default_factory=dict)
    job_outputs: dict[str, dict[str, Path]] = field(default_factory=dict)
    steps: list[StepResult] = field(default_factory=list)


class StepFailed(UserError):
    """A step exited non-zero; the message carries its log tail."""

    def __init__(self, message: str, result: PipelineRunResult) -> None:
        super().__init__(message)
        self.result = result


def new_run_id() -> str:
    return f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-") or "pipeline"


def _tail(log: Path, lines: int = LOG_TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """The last `lines` lines of a step log, reading at most its last `max_bytes` bytes: a step that logged
    gigabytes must not be read whole for a 25-line summary."""
    try:
        with log.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_bytes))
            data = fh.read(max_bytes)
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace").rstrip().splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line read is most likely cut
    return "\n".join(text[-lines:])


def _last_error_line(tail: str) -> str:
    """The most telling line of a log tail: the last `error: ...` line or the exception line."""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    for line in reversed(lines):
        low = line.lower()
        if (
            low.startswith("error:")
            or "error:" in low.split(" ", 1)[0]
            or low.startswith(("valueerror", "keyerror"))
        ):
            return line
    return lines[-1] if lines else ""


class LocalRunner:
    def __init__(
        self,
        settings: Settings,
        *,
        run_id: str | None = None,
        stream_logs: bool = False,
        quiet: bool = False,
        extra_env: dict[str, str] | None = None,
        on_step: Callable[[StepResult], None] | None = None,
        isolated: bool = False,
        env_cache: Path | None = None,
        reuse: bool = False,
    ) -> None:
        self.settings = settings
        self.run_id = run_id or new_run_id()
        self.stream_logs = stream_logs
        self.quiet = quiet
        self.extra_env = extra_env or {}
        self.on_step = on_step
        self.isolated = isolated
        # Where --isolated keeps its venvs (default <state_dir>/envs): one per environment digest.
        self.env_cache = env_cache
        # Reuse a deterministic step's outputs from an earlier run with the same inputs and code (runner/reuse.py).
        self.reuse = reuse

    # -- paths -------------------------------------------------------------------------------------------------
    def _output_path(self, run_dir: Path, step: StepPlan, name: str) -> Path:
        return run_dir / step.name / name

    def _materialize_input(self, run_dir: Path, step: StepPlan, key: str, value: PathValue) -> str:
        loc = value.path
        if is_datastore_uri(loc):
            loc = str(datastore_path(self.settings, loc))
            if not Path(loc).exists():
                raise UserError(
                    f"job {step.name!r} input {key!r}: {value.path} is {loc} on this machine, which does not exist; "
                    "put the data there or map the datastore to a folder in amlops.yaml (datastores:)"
                )
        elif loc.startswith(("http://", "https://")):
            check_http_input(loc, f"job {step.name!r} input {key!r}")
        if loc.startswith("models:/"):
            return self._download_model(loc)
        if storage.is_url(loc):
            dest = run_dir / step.name / "inputs" / key
            if value.type == "uri_file":
                dest = dest / Path(loc.rstrip("/")).name
            try:
                storage.download(loc, dest)
            except FileNotFoundError:
                raise UserError(f"job {step.name!r} input {key!r}: {loc} not found") from None
            return str(dest)
        if not Path(loc).exists():
            raise UserError(f"job {step.name!r} input {key!r}: {loc} does not exist")
        if value.type == "uri_file" and Path(loc).is_dir():
            raise UserError(
                f"job {step.name!r} input {key!r}: {loc} is a folder but the input type is uri_file"
            )
        if value.type in ("mlflow_model", "custom_model"):
            _warn_untrusted_model(Path(loc), self.settings.state_path)
        return loc

    def _download_model(self, uri: str) -> str:
        """A `models:/` input: the one model cache (keyed by the artifact, verified), not a copy per run."""
        from amlops import model_cache

        try:
            return str(model_cache.model_for_uri(self.settings, uri))
        except model_cache.ModelCacheError as exc:
            raise UserError(f"model input {uri}: {exc}") from None

    # -- execution ---------------------------------------------------------------------------------------------
    def run(self, path: Path, inputs: dict[str, str] | RunOverrides | None = None) -> PipelineRunResult:
        from amlops.runner.plan_cache import cached_build_plan

        def components(ref: str) -> Path | None:
            return resolve_component(self.settings, ref)

        if isinstance(inputs, RunOverrides) and (inputs.job_inputs or inputs.outputs):
            # Step-level and output overrides change the plan's shape: parsed afresh, never cached.
            plan = build_plan(Path(path), inputs, components=components)
        else:
            sets = inputs.inputs if isinstance(inputs, RunOverrides) else inputs
            plan = cached_build_plan(
                Path(path), sets, self.settings.state_path / "plans", components=components
            )
        return self.run_plan(plan)

    def run_plan(self, plan: Plan) -> PipelineRunResult:
        from amlops.runner.sweep import check_sweep
        from amlops.tracking import ensure_experiment, git_commit, mlflow_env

        check_plan_datastores(self.settings, plan)
        for step in plan.steps:
            if step.kind == "sweep":
                check_sweep(plan, step)
        resolve_plan_assets(self.settings, plan)
        run_dir = self.settings.runs_path / _slug(plan.source.stem) / self.run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        result = PipelineRunResult(pipeline=plan.name, run_id=self.run_id, run_dir=run_dir, status="running")
        experiment = plan.experiment or self.settings.experiment
        ensure_experiment(self.settings, experiment)
        base_env = {
            **os.environ,
            **mlflow_env(self.settings, experiment),
            "AZUREML_ROOT_RUN_ID": self.run_id,
            "AMLOPS_GIT_COMMIT": git_commit(plan.source.parent),
            "AMLOPS_RUN_DIR": str(run_dir),
            "PYTHONUNBUFFERED": "1",
            # The steps run with this interpreter, as the AML environment would provide `python`.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **self.extra_env,
        }
        self._write_manifest(plan, result)
        outputs_of: dict[str, dict[str, Path]] = {}
        ctx = RunContext(plan, run_dir, outputs_of, base_env)
        failed: StepResult | None = None
        unfinished: set[str] = set()
        try:
            _check_literals(plan)
            with _sigterm_as_interrupt():
                for index, step in enumerate(plan.steps, start=1):
                    if failed is not None and not (
                        plan.continue_on_step_failure and not step.upstream() & unfinished
                    ):
                        result.steps.append(StepResult(step.name, "skipped"))
                        unfinished.add(step.name)
                        continue
                    label = f"[{index}/{len(plan.steps)}] {step.name}"
                    step_result = self._execute(ctx, step, label)
                    result.steps.append(step_result)
                    if self.on_step:
                        self.on_step(step_result)
                    if step_result.status == "failed":
                        failed = failed or step_result
                        unfinished.add(step.name)
                    self._write_manifest(plan, result)
        except BaseException as exc:
            # Whatever stops the run (a signal, a refused input, a bug), run.json must not stay "running".
            result.status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
            self._write_manifest(plan, result)
            raise
        result.job_outputs = outputs_of
        result.outputs = {
            name: outputs_of[ref.job][ref.output]
            for name, ref in plan.outputs.items()
            if ref.job in outputs_of
        }
        result.status = "failed" if failed else "completed"
        self._write_manifest(plan, result)
        if failed is not None:
            tail = _tail(Path(failed.log)) if failed.log else ""
            reason = _last_error_line(tail) or f"exit code {failed.exit_code}"
            message = (
                f"step {failed.name!r} of {plan.source.name} failed (exit {failed.exit_code}): {reason}\n"
                f"  log: {failed.log}\n  last lines:\n" + "\n".join(f"    {ln}" for ln in tail.splitlines())
            )
            note = self._missing_packages_note(plan, failed.name, tail)
            if note:
                message += f"\n  {note}"
            raise StepFailed(message, result)
        return result

    def _execute(self, ctx: RunContext, step: StepPlan, label: str) -> StepResult:
        """One plan step: reused from an earlier run, swept, launched as several ranks, or run once."""
        from amlops.runner import distributed, reuse, sweep

        wanted = self.reuse and not ctx.plan.force_rerun and step.kind != "sweep"
        key = reuse.reuse_key(ctx, step) if wanted else None
        reused = reuse.lookup(self, ctx, step, key, label) if key else None
        if reused is not None:
            return reused
        if step.kind == "sweep":
            step_result = sweep.run_sweep(self, ctx, step, label)
        elif distributed.is_distributed(step):
            step_result = distributed.run_distributed(self, ctx, step, label)
        else:
            step_result = self._run_step(ctx, step, label)
        if key and step_result.status == "completed":
            reuse.record(self, ctx, step, key)
        return step_result

    def _missing_packages_note(self, plan: Plan, step_name: str, tail: str) -> str | None:
        """For a step that failed on an import: the packages its environment lists that this venv lacks. Only
        then: an environment lists many packages no step imports (an Azure ML runtime's dependencies), and
        reading every distribution's metadata costs each step ~0.2 s."""
        if self.isolated or not ("ModuleNotFoundError" in tail or "ImportError" in tail):
            return None
        from amlops.runner.packages import missing_note

        step = next((s for s in plan.steps if s.name == step_name), None)
        return missing_note(step_name, step.environment) if step is not None else None

    def _resolve_inputs(self, ctx: RunContext, step: StepPlan) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for key in step.input_types:
            value = step.inputs.get(key)
            if value is None:
                values[key] = None
            elif isinstance(value, OutputRef):
                values[key] = str(ctx.outputs_of[value.job][value.output])
            elif isinstance(value, PathValue):
                values[key] = self._materialize_input(ctx.run_dir, step, key, value)
            else:
                values[key] = render_primitive(value)
        return values

    def _run_step(
        self, ctx: RunContext, step: StepPlan, label: str, cancel: Cancel | None = None
    ) -> StepResult:
        """Run one step's command in its working folder; `cancel` lets another thread stop it (a sweep's early
        termination policy)."""
        step_dir = ctx.step_dir(step.name)
        log_dir = step_dir / "user_logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / "std_log.txt"
        inputs = self._resolve_inputs(ctx, step)
        outputs: dict[str, Path] = {}
        for name, spec in step.outputs.items():
            target = self._output_path(ctx.run_dir, step, name)
            if spec.type == "uri_file":
                target.parent.mkdir(parents=True, exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
            outputs[name] = target
        what = f"{ctx.plan.source.name}: job {step.name!r}"
        literal = step.literal_inputs()
        template = _template(step)
        if step.kind == "parallel":
            command = self._parallel_command(step, step_dir, inputs, outputs, what)
        else:
            command = render(template, inputs, {k: str(v) for k, v in outputs.items()}, what, literal)
        notes = unquoted_notes(template, inputs, literal)
        cwd = _working_dir(step_dir, step.code_dir)
        env = {**ctx.base_env, **step.environment_variables, "AZUREML_RUN_ID": f"{self.run_id}_{step.name}"}
        started = time.perf_counter()
        if not self.quiet:
            out.print(f"[cyan]▶[/] {label}  [dim]{step.component}[/]")
        with log_path.open("w", encoding="utf-8") as log:
            if self.isolated:
                cache = self.env_cache or self.settings.state_path / "envs"
                interpreter = interpreter_for(step.environment, cache, log)
                env = isolated_env(env, interpreter, cwd)
                built = interpreter.built_seconds
                notes.append(
                    f"isolated: python {interpreter.python}"
                    + (f" (environment built in {built:.1f}s)" if built is not None else "")
                )
                if interpreter.note:
                    notes.append(interpreter.note)
                    if interpreter.venv is None and not self.quiet:
                        out.print(f"  [dim]{step.name}: {interpreter.note}[/]")
            log.write(f"# {command}\n# cwd: {cwd}\n" + "".join(f"# note: {n}\n" for n in notes))
            log.flush()
            watched = _MountWatch(outputs, step.outputs)
            proc = self._start_warm(ctx, step, command, cwd, env, log, more=cancel is not None)
            if proc is None:
                proc = subprocess.Popen(
                    ["bash", "-c", command],
                    cwd=cwd,
                    env=env,
                    # No stdin, as on Azure ML: a step that reads it must not wait on (or steal from) the terminal.
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if self.stream_logs else log,
                    stderr=subprocess.STDOUT,
                    text=True,
                    # Its own process group: a timeout or Ctrl-C stops the step's children too (parallel workers).
                    start_new_session=True,
                )
            timer = _Deadline(proc, step.timeout)
            if cancel is not None:
                cancel.attach(proc)
            live = step_progress(out, label, log_path, enabled=not (self.quiet or self.stream_logs))
            try:
                if self.stream_logs and proc.stdout is not None:
                    for line in proc.stdout:
                        log.write(line)
                        out.print(f"  [dim]{step.name} |[/] {line.rstrip()}", markup=True, highlight=False)
                with live:
                    code = proc.wait()
                if isinstance(proc, warm.WarmProcess) and proc.note:
                    log.write(f"error: {proc.note}\n")
            except BaseException:
                # Ctrl-C, SIGTERM (Terminated) or anything else: the step's whole process group goes with us.
                _stop_group(proc)
                raise
            finally:
                timer.cancel()
            broken = watched.close()
            if timer.fired:
                code = code or 1
                log.write(
                    f"error: the step ran longer than limits.timeout ({step.timeout:g}s) and was stopped, as "
                    "Azure ML stops a job that exceeds its timeout\n"
                )
            elif cancel is not None and cancel.stopped and code != 0:
                log.write(f"cancelled: {cancel.reason}\n")
            elif broken:
                code = code or 1
                log.write("".join(f"error: {b}\n" for b in broken))
        seconds = time.perf_counter() - started
        status = "completed" if code == 0 else "failed"
        if code != 0 and cancel is not None and cancel.stopped and not timer.fired:
            status = "cancelled"
        if status == "completed":
            if step.kind == "command" and DEFAULT_OUTPUT not in step.outputs:
                outputs[DEFAULT_OUTPUT] = _default_output(step_dir, cwd, log_path)
            ctx.outputs_of[step.name] = outputs
            self._deliver_targets(ctx, step, outputs)
        if not self.quiet:
            mark = {"completed": "[green]✓[/]", "cancelled": "[yellow]⊘[/]"}.get(status, "[red]✗[/]")
            out.print(
                f"{mark} {label}  {seconds:.1f}s"
                + (f"  {cancel.reason}" if status == "cancelled" and cancel else "")
            )
        return StepResult(step.name, status, seconds, code, command, str(log_path))

    def _start_warm(
        self,
        ctx: RunContext,
        step: StepPlan,
        command: str,
        cwd: Path,
        env: dict[str, str],
        log: IO[str],
        more: bool,
    ) -> StepProcess | None:
        """The step forked by a warm zygote (amlops.runner.warm), or None to start it cold; the log says which."""
        if self.isolated or not warm.enabled():
            return None
        parsed = warm.module_command(command, env)
        if parsed is None:
            return None
        later = ctx.plan.steps[ctx.plan.steps.index(step) + 1 :] if step in ctx.plan.steps else []
        # Worth a zygote only when a later step could use this one: `python -m`, and the same variables (a step
        # with its own environment_variables needs a zygote of its own).
        more = more or any(
            warm.may_start_warm(_template(s))
            and warm.same_key(parsed.python, env, {**ctx.base_env, **s.environment_variables})
            for s in later
        )
        zygote = warm.pool().zygote(parsed, env, start=more)
        if zygote is None:
            return None
        log.write(
            f"# note: warm start: forked from a {parsed.python} that imported the steps' libraries "
            f"({warm.SWITCH}=0 starts every step in a new interpreter)\n"
        )
        log.flush()
        read_fd, write_fd = os.pipe() if self.stream_logs else (-1, log.fileno())
        try:
            proc = zygote.start(parsed, str(cwd), env, write_fd)
        except warm.WarmUnavailable as exc:
            log.write(f"# note: warm start unavailable ({exc}): started cold\n")
            log.flush()
            if self.stream_logs:
                os.close(read_fd)
            return None
        finally:
            if self.stream_logs:
                os.close(write_fd)
        if self.stream_logs:
            proc.stdout = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        return proc

    def _deliver_targets(self, ctx: RunContext, step: StepPlan, outputs: dict[str, Path]) -> None:
        """Copy each output that the pipeline YAML gave a `path:` to that place."""
        for name, spec in step.outputs.items():
            if spec.target and name in outputs:
                self._deliver(outputs[name], self._local_target(ctx.plan, step, name, spec.target))

    def _local_target(self, plan: Plan, step: StepPlan, output: str, target: str) -> str:
        """A datastore URI as its local folder, `${{name}}` being the step's job name (as AZUREML_RUN_ID)."""
        if not is_datastore_uri(target):
            return target
        job_name = f"{self.run_id}_{step.name}".replace("/", "_")
        return str(
            datastore_path(
                self.settings,
                target,
                job_name=job_name,
                output_name=output,
                default_datastore=plan.default_datastore,
            )
        )

    @staticmethod
    def _deliver(produced: Path, target: str) -> None:
        """Copy an output to the path the pipeline YAML asked for (a local folder or a blob URL)."""
        if storage.is_url(target):
            storage.upload(produced, target)
            return
        dest = Path(target)
        if produced.is_dir():
            shutil.copytree(produced, dest, dirs_exist_ok=True)
        elif produced.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(produced, dest)

    def _parallel_command(
        self,
        step: StepPlan,
        step_dir: Path,
        inputs: dict[str, str | None],
        outputs: dict[str, Path],
        what: str,
    ) -> str:
        spec = dict(step.parallel or {})
        task = dict(spec.pop("task"))
        str_outputs = {k: str(v) for k, v in outputs.items()}
        # input_data and append_row_to go into the driver's JSON spec, not through a shell: raw values.
        input_data = substitute(str(spec.pop("input_data") or ""), inputs, str_outputs, f"{what} input_data")
        args = render(
            str(task.get("program_arguments") or ""),
            inputs,
            str_outputs,
            f"{what} program_arguments",
            step.literal_inputs(),
        )
        append_to = task.get("append_row_to")
        append_path = (
            substitute(str(append_to), inputs, str_outputs, f"{what} append_row_to") if append_to else None
        )
        entry = task.get("entry_script")
        if not entry:
            raise UserError(f"{what}: parallel task has no entry_script")
        if task.get("type", "run_function") != "run_function":
            raise UserError(f"{what}: parallel task type {task.get('type')!r} is not supported locally")
        input_key = next((k for k, v in inputs.items() if v == input_data), None)
        driver_spec = {
            "entry_script": entry,
            "program_arguments": args,
            "input_data": input_data,
            "input_type": step.input_types.get(input_key or "", "uri_folder"),
            "append_row_to": append_path,
            **{k: v for k, v in spec.items()},
        }
        spec_path = step_dir / "parallel_spec.json"
        spec_path.write_text(json.dumps(driver_spec, indent=2, default=str), encoding="utf-8")
        # Quoted: the runs folder is the user's and may hold spaces (the spec path is the runner's, not an input).
        return f"python -m amlops.runner.parallel --spec {shlex.quote(str(spec_path))}"

    def _write_manifest(self, plan: Plan, result: PipelineRunResult) -> None:
        manifest: dict[str, Any] = {
            "pipeline": plan.name,
            "source": str(plan.source),
            "run_id": result.run_id,
            "status": result.status,
            "inputs": {k: (v.path if isinstance(v, PathValue) else v) for k, v in plan.inputs.items()},
            "steps": [asdict(s) for s in result.steps],
            "outputs": {k: str(v) for k, v in result.outputs.items()},
        }
        (result.run_dir / "run.json").write_text(
            json.dumps(manifest, indent=2, default=str), encoding="utf-8"
        )


def _working_dir(step_dir: Path, code_dir: Path | None) -> Path:
    """The step's working folder: a copy of the component's `code:` folder with empty `./outputs` and `./logs`.

    Azure ML runs a job in a working directory holding the job's code snapshot and uploads what the job writes
    to `./outputs` and `./logs` (Microsoft Learn "Where to save and write files for Azure Machine Learning
    experiments", how-to-save-write-experiment-files). A copy, not the source folder: a step that writes next to
    its code must not write into src/."""
    wd = step_dir / "wd"
    if wd.exists():
        shutil.rmtree(wd)
    if code_dir is not None:
        shutil.copytree(code_dir, wd, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    for name in ("outputs", "logs"):
        (wd / name).mkdir(parents=True, exist_ok=True)
    return wd


class _MountWatch:
    """Holds each output folder open while the step runs, as Azure ML's mount does, and says afterwards which
    ones the step removed or replaced.

    On Azure ML an output with mode rw_mount (the default for uri_folder/mlflow_model outputs) is a mount point:
    the step may write into it, and removing it (shutil.rmtree) fails with EBUSY (Microsoft Learn "Access data in a
    job", how-to-read-write-data-v2: modes of outputs; azure-ai-ml entities/_inputs_outputs/output.py
    `mode`). An open descriptor keeps the folder's inode alive, so a folder created in its place can never be
    mistaken for it."""

    def __init__(self, outputs: dict[str, Path], specs: dict[str, Any]) -> None:
        self.fds: dict[str, tuple[int, Path]] = {}
        for name, path in outputs.items():
            if getattr(specs.get(name), "type", "uri_folder") == "uri_file" or not path.is_dir():
                continue
            self.fds[name] = (os.open(path, os.O_RDONLY | os.O_DIRECTORY), path)

    def close(self) -> list[str]:
        broken = []
        for name, (fd, path) in self.fds.items():
            try:
                held = os.fstat(fd)
                try:
                    now = os.stat(path)
                    replaced = (now.st_dev, now.st_ino) != (held.st_dev, held.st_ino)
                except FileNotFoundError:
                    replaced = True
                if replaced or held.st_nlink == 0:
                    broken.append(
                        f"output {name!r} ({path}) was removed or replaced by the step: on Azure ML outputs are "
                        "mount points (rw_mount), removing one fails with EBUSY; write into the folder instead"
                    )
            finally:
                os.close(fd)
        self.fds.clear()
        return broken


def _default_output(step_dir: Path, cwd: Path, log: Path) -> Path:
    """The job's default output, laid out as Azure ML's artifact store for a job (ExperimentRun/dcid.<job>/):
    what the step wrote to ./outputs and ./logs, and user_logs/std_log.txt (plan.DEFAULT_OUTPUT). The folders are
    moved, not copied: the working folder is the runner's own and a large ./outputs costs nothing to move."""
    store = step_dir / DEFAULT_OUTPUT
    store.mkdir(parents=True, exist_ok=True)
    for name in ("outputs", "logs"):
        if (cwd / name).is_dir() and not (store / name).exists():
            (cwd / name).rename(store / name)
    (store / "user_logs").mkdir(exist_ok=True)
    shutil.copy2(log, store / "user_logs" / log.name)
    return store


class Cancel:
    """Lets another thread stop a running step, as Azure ML cancels a sweep trial that its early termination
    policy stops (reference-yaml-job-sweep: "A trial job is canceled when the criteria of the specified policy
    are met"). A cancel that comes before the step's process starts stops it as soon as it does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: StepProcess | None = None
        self.reason: str | None = None
        self.stopped = False

    def attach(self, proc: StepProcess) -> None:
        with self._lock:
            self._proc = proc
            due = self.reason is not None
        if due:
            self._stop()

    def cancel(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
            started = self._proc is not None
        if started:
            self._stop()

    def _stop(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self.stopped = True
        # Not in the caller's thread: stopping waits up to the grace period for the process group.
        threading.Thread(target=_stop_group, args=(proc,), daemon=True).start()


class _Deadline:
    """Stops the step's process group when `limits.timeout` passes (Microsoft Learn "CLI (v2) command job YAML
    schema", reference-yaml-job-command: limits.timeout, "the maximum time in seconds the job is allowed to run.
    Once this limit is reached the system will cancel the job"; azure-ai-ml CommandJobLimits)."""

    def __init__(self, proc: StepProcess, timeout: float | None) -> None:
        self.fired = False
        self._proc = proc
        self._timer = threading.Timer(timeout, self._fire) if timeout else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        _stop_group(self._proc)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _warn_untrusted_model(folder: Path, state: Path) -> None:
    """A bare model folder that unpickles: say so before the step loads it. The project's own models are not
    bare: models:/ URIs (downloaded above) and the registry downloads `amlops score` keeps in the state folder."""
    from amlops.console import warn
    from amlops.model_trust import untrusted_model_note

    if folder.resolve().is_relative_to(state.resolve()):
        return
    note = untrusted_model_note(folder)
    if note:
        warn(note)


def _check_literals(plan: Plan) -> None:
    """No literal of any step carries shell syntax (runner/command.py), checked before the first step runs."""
    for step in plan.steps:
        template = _template(step)
        literals = {
            k: render_primitive(v)
            for k, v in step.inputs.items()
            if k in step.literal_inputs() and v is not None and not isinstance(v, OutputRef | PathValue)
        }
        check_literals(template, literals, f"{plan.source.name}: job {step.name!r}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While a run is in progress, SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread, so the
    step's process group is stopped and run.json written, instead of the CLI dying and leaving both behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_group(proc: StepProcess, grace: float = 10.0) -> None:
    """SIGTERM to the step's process group, SIGKILL after `grace` seconds."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def run_pipeline(
    path: Path | str,
    inputs: dict[str, str] | RunOverrides | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> PipelineRunResult:
    """Run a pipeline YAML locally and return where everything landed (raises UserError on failure)."""
    from amlops.config import load_settings

    runner = LocalRunner(settings or load_settings(), **kwargs)
    return runner.run(Path(path), inputs)
