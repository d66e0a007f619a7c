"""Submit a pipeline job YAML to Azure ML (the same YAML the local runner executes), stream its status.

Inputs given on the command line (`--set inputs.x=...`) replace the YAML's: a local file or folder becomes an
upload (the SDK puts it in the workspace's default datastore, as `az ml job create` does), `name@version` or
`name:version` becomes the registered data asset `azureml:name:version`, `azureml:` / URLs pass through, and
primitives are converted to the type of the YAML's value. Ctrl-C while waiting says what is still running,
prints the exact `az ml job cancel` command and offers to cancel.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops import console
from amlops.azure import client as azclient
from amlops.azure.errors import azure_errors
from amlops.console import UserError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Job, PipelineJob

    from amlops.config import AzureSettings, Settings

DATA_TYPES = {"uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"}
TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding"}
ACTIVE = {
    "NotStarted",
    "Queued",
    "Preparing",
    "Provisioning",
    "Starting",
    "Running",
    "Finalizing",
    "CancelRequested",
}
_ASSET_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?P<sep>[:@])(?P<version>[A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class SubmittedJob:
    name: str
    studio_url: str | None
    status: str


def job_name(pipeline: Path) -> str:
    """A readable, unique job name chosen before submission, so an interrupted submit can still be found."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", pipeline.stem).strip("-_") or "pipeline"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stem[:40]}-{stamp}-{secrets.token_hex(2)}"


def data_reference(value: str) -> str | None:
    """`azureml:...` / a URL as given; `name@version` or `name:version` as a data asset id; else None."""
    if value.startswith("azureml:") or "://" in value:
        return value
    found = _ASSET_REF.match(value)
    if not found:
        return None
    name, sep, version = found.group("name", "sep", "version")
    if sep == "@" and version == "latest":
        return f"azureml:{name}@latest"
    return f"azureml:{name}:{version}"


def _convert(name: str, current: Any, value: str) -> Any:
    """A primitive override converted to the type of the YAML's value (bool before int: bool is an int)."""
    try:
        if isinstance(current, bool):
            if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(value)
            return value.lower() in {"true", "1", "yes"}
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
    except ValueError:
        raise UserError(f"input {name}: {value!r} is not a {type(current).__name__}") from None
    return value


def apply_inputs(job: PipelineJob, inputs: dict[str, str], *, cwd: Path | None = None) -> dict[str, str]:
    """Override pipeline inputs in place; returns {input: what was sent} for tags and the summary."""
    from azure.ai.ml import Input

    cwd = cwd or Path.cwd()
    applied: dict[str, str] = {}
    for name, value in inputs.items():
        if name not in job.inputs:
            known = ", ".join(sorted(job.inputs)) or "none"
            raise UserError(f"input {name!r} is not an input of the pipeline (inputs: {known})")
        current = getattr(job.inputs[name], "_data", None)
        declared = getattr(current, "type", None)
        _check_shell_syntax(name, value, is_data=isinstance(current, Input) or declared in DATA_TYPES)
        if isinstance(current, Input) or declared in DATA_TYPES:
            kind = str(declared or "uri_folder")
            given = Path(value).expanduser()
            local = given if given.is_absolute() else cwd / given
            if local.exists():
                if kind == "uri_file" and local.is_dir():
                    raise UserError(
                        f"input {name}: {local} is a folder but the pipeline expects a file (uri_file)"
                    )
                set_input(job, name, Input(type=kind, path=str(local.resolve())))
                applied[name] = str(local.resolve())
                continue
            ref = data_reference(value)
            if ref is None:
                raise UserError(
                    f"input {name}: {value!r} is neither a local path nor a data asset "
                    "(name:version, name@latest)"
                )
            set_input(job, name, Input(type=kind, path=ref))
            applied[name] = ref
        else:
            converted = _convert(name, current, value)
            set_input(job, name, converted)
            applied[name] = str(converted)
    return applied


def _check_shell_syntax(name: str, value: str, *, is_data: bool) -> None:
    """The local runner's rule (amlops.shell_values), before anything is uploaded or submitted: Azure ML pastes a
    literal into the command as it is, and a data input as its mount path, which ends with the file's name."""
    from amlops.shell_values import check_value, last_segment

    if not is_data:
        check_value(name, value)
    elif not value.startswith("azureml:"):  # an asset reference is resolved by Azure ML to its own mount path
        check_value(name, last_segment(value), file_name=True)


def model_inputs_to_assets(inputs: dict[str, str], ml: MLClient) -> dict[str, str]:
    """MLflow model URIs (what local runs take) as AML model assets: `models:/m/3` -> `azureml:m:3`, and
    `models:/m@champion` -> the version holding that role in the workspace (amlops.registry decides)."""
    from amlops import registry

    out = dict(inputs)
    for key, value in inputs.items():
        found = re.fullmatch(r"models:/([^/@]+)(?:/([^/@]+)|@([A-Za-z0-9_-]+))/?", value)
        if not found:
            continue
        name, version, role = found.groups()
        if role:
            held = registry.resolve_role(azclient.WorkspaceModelRegistry(ml), name, role)
            if held is None:
                raise UserError(
                    f"input {key}: no version of model {name!r} holds the role {role!r} in the workspace"
                )
            version = held[0]
        out[key] = f"azureml:{name}:{version}"
    return out


def clear_unset_data_inputs(job: PipelineJob) -> list[str]:
    """Set data inputs declared without a path (e.g. raw_file when raw_folder is given) to None.

    azure-ai-ml 1.35 crashes on them at submission (`_flatten_group_inputs` reads `_meta` of an input loaded
    from YAML, which is None). None is what the SDK sends for an unset optional input anyway: it is left out.
    """
    from azure.ai.ml import Input

    cleared = []
    for name in list(job.inputs):
        data = getattr(job.inputs[name], "_data", None)
        if isinstance(data, Input) and not data.path:
            set_input(job, name, None)
            cleared.append(name)
    return cleared


def load_pipeline(path: Path) -> PipelineJob:
    """The pipeline job YAML parsed by azure-ai-ml (as `az ml job create` would), or a one-line UserError."""
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import PipelineJob, PipelineJobSettings

    if not path.is_file():
        raise UserError(f"{path}: pipeline file not found")
    try:
        job = load_job(path)
    except Exception as exc:  # the SDK raises several types for bad YAML; all mean "fix the file"
        raise UserError(f"{path}: not a valid pipeline job: {' '.join(str(exc).split())[:300]}") from exc
    if not isinstance(job, PipelineJob):
        raise UserError(f"{path}: expected a pipeline job (type: pipeline), got {type(job).__name__}")
    if job.settings is None:
        job.settings = PipelineJobSettings()
    return job


def set_input(job: PipelineJob, name: str, value: Any) -> None:
    """Set a pipeline input. Attribute assignment is the SDK's way: it rebuilds the wrapped PipelineInput
    (item assignment would replace it with a bare value the serialiser cannot handle)."""
    setattr(job.inputs, name, value)


def prepare_job(
    path: Path,
    inputs: dict[str, str],
    settings: Settings,
    az: AzureSettings,
    compute: str | None = None,
    env: str | None = None,
) -> tuple[PipelineJob, dict[str, str]]:
    """Load the pipeline YAML with azure-ai-ml and make it ready to submit (no network)."""
    job = load_pipeline(path)
    applied = apply_inputs(job, inputs)
    if "data_uri" in job.inputs and "data_uri" not in inputs:
        # Lineage: a data asset or URL given for the data becomes the model's data.uri tag (see steps/train).
        refs = [v for k, v in applied.items() if k != "data_uri" and (v.startswith("azureml:") or "://" in v)]
        if len(refs) == 1:
            set_input(job, "data_uri", refs[0])
    clear_unset_data_inputs(job)
    chosen = compute or az.compute
    assert job.settings is not None  # load_pipeline made sure
    if chosen:
        job.settings.default_compute = chosen
    elif not job.settings.default_compute:
        raise azclient.missing("compute", env)
    job.experiment_name = job.experiment_name or settings.experiment
    job.name = job_name(path)
    job.tags = {
        **(job.tags or {}),
        "amlops.pipeline": path.name,
        **{f"amlops.input.{k}": v[:250] for k, v in applied.items()},
    }
    return job, applied


def submit_pipeline(
    path: str | Path,
    inputs: dict[str, str],
    settings: Settings,
    env: str | None = None,
    wait: bool = True,
    compute: str | None = None,
) -> SubmittedJob:
    """Submit `path` to the workspace of `env`; print the studio URL; wait for the end unless `wait=False`."""
    pipeline = Path(path)
    az = azclient.target(settings, env)
    with azure_errors(az, env):
        ml = azclient.ml_client(settings, env)
        if any(v.startswith("models:/") for v in inputs.values()):
            inputs = model_inputs_to_assets(inputs, ml)
        job, applied = prepare_job(pipeline, inputs, settings, az, compute, env)
        # ml_client() has fetched a token by now (client.checked_credential): "submitting" is not a promise
        # made before the login is known to work.
        console.info(f"submitting {pipeline} to workspace {az.workspace} as job {job.name}")
        try:
            created = ml.jobs.create_or_update(job)
        except KeyboardInterrupt:
            console.warn(
                f"interrupted while submitting; the job may exist: az ml job show -n {job.name} "
                f"-g {az.resource_group} -w {az.workspace}"
            )
            raise UserError("interrupted", exit_code=130) from None
    name = str(created.name)
    console.info(f"job {name}: {created.studio_url}")
    for key, value in applied.items():
        console.info(f"  input {key} = {value}")
    if not wait:
        return SubmittedJob(name, created.studio_url, str(created.status))
    status = wait_for_job(ml, name, az, env=env)
    return SubmittedJob(name, created.studio_url, status)


def _status(job: Job) -> str:
    status = job.status or "Unknown"
    return str(getattr(status, "value", status))  # JobStatus is an Enum on some code paths, a str on others


def _children(ml: MLClient, name: str) -> list[tuple[str, str]]:
    """(step, status) of a pipeline's child jobs, from run history. Best effort: the progress display must
    never fail the wait, and the SDK raises more than AzureError on odd answers (KeyError on discovery)."""
    try:
        return [(str(c.display_name or c.name), _status(c)) for c in ml.jobs.list(parent_job_name=name)]
    except Exception:
        return []


def _ask_cancel() -> bool:
    if not sys.stdin.isatty():
        return False
    import typer

    try:
        return bool(typer.confirm("Cancel the job now?", default=False))
    except (KeyboardInterrupt, EOFError, typer.Abort):
        return False


def wait_for_job(
    ml: MLClient,
    name: str,
    az: AzureSettings,
    *,
    env: str | None = None,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    confirm: Callable[[], bool] = _ask_cancel,
) -> str:
    """Poll until the job ends; Completed returns, Failed/Canceled raise. Ctrl-C says what still runs."""
    started = time.monotonic()
    status = "Unknown"
    steps: list[tuple[str, str]] = []
    last = ""
    try:
        with console.out.status(f"job {name}: waiting") as spinner:
            while True:
                with azure_errors(az, env):
                    job = ml.jobs.get(name)
                status = _status(job)
                steps = _children(ml, name)
                elapsed = int(time.monotonic() - started)
                running = ", ".join(f"{s} {st}" for s, st in steps if st in ACTIVE) or "-"
                spinner.update(f"job {name}: {status} ({elapsed // 60}m{elapsed % 60:02d}s) steps: {running}")
                if not console.out.is_terminal and f"{status} {running}" != last:
                    # No spinner in CI logs: one line per change instead.
                    console.info(f"job {name}: {status}; running: {running}")
                    last = f"{status} {running}"
                if status in TERMINAL:
                    break
                sleep(poll_seconds)
    except KeyboardInterrupt:
        cancelled = _interrupted(ml, name, az, status, steps, confirm)
        what = f"cancel requested for job {name}" if cancelled else f"job {name} keeps running on Azure ML"
        raise UserError(f"interrupted: {what}", exit_code=130) from None
    for step, st in steps:
        console.info(f"  step {step}: {st}")
    if status == "Completed":
        console.info(f"[green]job {name} completed[/]")
        return status
    failed = [s for s, st in steps if st == "Failed"]
    where = f" (failed steps: {', '.join(failed)})" if failed else ""
    raise UserError(
        f"job {name} {status}{where}: see the logs in studio or `az ml job download -n {name} "
        f"-g {az.resource_group} -w {az.workspace} --all`"
    )


def _interrupted(
    ml: MLClient,
    name: str,
    az: AzureSettings,
    status: str,
    steps: list[tuple[str, str]],
    confirm: Callable[[], bool],
) -> bool:
    """Say what is still running and how to cancel it; cancel when the user says so. True: cancelled."""
    console.warn(f"stopped waiting; job {name} is still {status} on Azure ML")
    for step, st in steps:
        if st in ACTIVE:
            console.warn(f"  step {step}: {st}")
    console.info(f"cancel it with: {azclient.cancel_command(name, az)}")
    if not confirm():
        return False
    with azure_errors(az):
        ml.jobs.begin_cancel(name).result()
    console.info(f"cancel requested for job {name}")
    return True
