"""Batch scoring with a registered model on either target: resolve the version, fetch the model, check the input,
run pipelines/batch_inference.yml (application layer under `amlops score`, the loop and the demo).

The model is resolved through `amlops.registry.resolve_role`, the one function that answers on every registry
(MLflow aliases where supported, the `role.<role>` version tags where not, as on Azure ML), so the version that
scores is the one the registry says serves now.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.errors import UsageError, UserError
from amlops.job_inputs import scoring_inputs

if TYPE_CHECKING:
    from amlops.azure.jobs import SubmittedJob
    from amlops.config import Settings

DEFAULT_ROLE = "champion"


@dataclass(frozen=True)
class ScoringRun:
    """A finished local scoring run."""

    model_name: str
    version: str
    role: str | None
    run_id: str
    run_dir: Path
    predictions: Path
    rows: int
    files: int


def parse_model(
    spec: str | None, default_name: str, version: str | None
) -> tuple[str, str | None, str | None]:
    """(name, role, version) from `--model` and `--model-version`: NAME@ROLE, NAME/VERSION, NAME:VERSION or
    NAME; with neither, the champion of the configured model."""
    name, role, pinned = default_name, None, None
    if spec:
        sep = next((c for c in ("@", "/", ":") if c in spec), None)
        name, ref = spec.split(sep, 1) if sep else (spec, "")
        if not name or (sep and not ref):
            raise UserError(
                f"--model {spec!r}: expected NAME@ROLE (e.g. {default_name}@champion) or NAME/VERSION"
            )
        role, pinned = (ref, None) if sep == "@" else (None, ref or None)
    if version is not None:
        if role or pinned:
            raise UserError(f"give either --model {spec} or --model-version {version}, not both")
        if not version.strip().isdigit():
            raise UserError(f"--model-version {version!r}: expected a version number")
        return name, None, version.strip()
    if pinned is not None:
        if not pinned.isdigit():
            raise UserError(f"--model {spec!r}: {pinned!r} is not a version number (NAME@ROLE for a role)")
        return name, None, pinned
    return name, role or DEFAULT_ROLE, None


def resolve_version(registry_client: Any, name: str, role: str | None, version: str | None) -> str:
    """The version to score with: the pinned one (checked to exist) or the one holding `role` now."""
    from amlops import registry

    try:
        if version is not None:
            registry.get_version(registry_client, name, version)
            return version
        found = registry.resolve_role(registry_client, name, role or DEFAULT_ROLE)
    except registry.RegistryError as exc:
        raise UserError(str(exc)) from None
    if found is None:
        raise UserError(
            f"model {name!r} has no {role or DEFAULT_ROLE}: train and promote one first (amlops train), "
            "or pass --model-version"
        )
    return found[0]


def download_model(settings: Settings, client: Any, name: str, version: str) -> Path:
    """The model folder of `name` v`version` (`amlops.model_cache`: keyed by the artifact, verified)."""
    from amlops import model_cache

    try:
        return model_cache.registered_model(settings, name, version, client)
    except model_cache.ModelCacheError as exc:
        raise UserError(str(exc)) from None


def precheck(data: Path, model_dir: Path, version: str, settings: Settings) -> None:
    """Fail before starting the pipeline when the input does not fit the model (Parquet footers, CSV headers;
    the step itself checks CSV values too)."""
    from amlops.job_inputs import column_roles
    from amlops.steps import score

    roles = column_roles(settings)
    try:
        model = score.load_model(model_dir)
        options = score.resolve_options(model, version, roles["id_column"], roles["prediction_column"])
        score.check_inputs(
            score.data_files(data), model, options, data if data.is_dir() else None, parse_csv=False
        )
    except score.ScoreInputError as exc:
        raise UserError(str(exc)) from None


def scored_rows(folder: Path) -> tuple[int, int]:
    """(rows, files) of the predictions folder, from the Parquet footers."""
    import pyarrow.parquet as pq

    files = [f for f in sorted(folder.rglob("*.parquet")) if not f.name.startswith(".")]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files), len(files)


def check_destination(data: Path, dest: Path) -> None:
    """Refuse, before any work, a `--out` that is a file or would overwrite the input. Predictions are named after
    the input files (`<name>.parquet`, folders kept), so a folder input must not receive them in itself or in a
    folder inside it (the next run would score the predictions too), and a file input's own folder must not
    receive a file of the same name."""
    from amlops.steps.score import output_name

    data, dest = data.resolve(), dest.resolve()
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--out {dest}: is a file; give a folder for the predictions")
    if data.is_dir():
        if dest == data or data in dest.parents:
            where = "the input folder" if dest == data else f"inside the input folder {data}"
            raise UsageError(
                f"--out {dest}: is {where}; predictions would mix with the input. Give another folder"
            )
    elif dest / output_name(data, None) == data:
        raise UsageError(
            f"--out {dest}: the predictions would overwrite the input {data}. Give another folder"
        )


def score_with(
    settings: Settings,
    data: Path,
    model_dir: Path,
    version: str,
    *,
    pipeline: Path | None = None,
    quiet: bool = False,
) -> tuple[Path, str, Path]:
    """Run the batch-inference pipeline locally with a model folder: (predictions, run id, run folder)."""
    from amlops.runner.local import run_pipeline

    path = pipeline or settings.pipeline_file("batch_inference")
    if not path.is_file():
        raise UserError(f"{path}: scoring pipeline not found")
    inputs = scoring_inputs(settings, str(data), str(model_dir), version)
    run = run_pipeline(path, inputs, settings, quiet=quiet)
    check_scored(data, run.outputs["predictions"], run.run_dir)
    return run.outputs["predictions"], run.run_id, run.run_dir


def check_scored(data: Path, predictions: Path, run_dir: Path) -> None:
    """Refuse a run that wrote no predictions for an input that has data files. The step writes one predictions
    file per input file, so none at all means the step never saw the input (a path the runner handed over in
    another spelling, as a quoted name with a space was): "scored 0 rows" with exit 0 would pass for success and
    the monitor would then judge nothing."""
    from amlops.steps import score

    _rows, files = scored_rows(predictions)
    if files:
        return
    try:
        expected = len(score.data_files(data))
    except score.ScoreInputError:
        return
    raise UserError(
        f"scoring {data}: the step wrote no predictions for {expected} input file(s); it did not see the "
        f"input (step log under {run_dir}). A path with a space or shell "
        "characters in a folder or file name is one cause: move or rename the input"
    )


def run_local(
    settings: Settings,
    data: Path,
    name: str,
    role: str | None,
    pinned: str | None,
    *,
    pipeline: Path | None = None,
    dest: Path | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> ScoringRun:
    """Resolve the version, fetch the model once, check the input against it, score locally."""
    from amlops import registry

    if dest is not None:
        check_destination(data, dest)

    client = registry.client_for(settings)
    version = resolve_version(client, name, role, pinned)
    say(f"scoring {data} with {name} v{version}" + (f" ({role})" if role else ""))
    model_dir = download_model(settings, client, name, version)
    precheck(data, model_dir, version, settings)
    predictions, run_id, run_dir = score_with(settings, data, model_dir, version, pipeline=pipeline)
    rows, files = scored_rows(predictions)
    if dest is not None:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(predictions, dest, dirs_exist_ok=True)
        predictions = dest
    _record_run(settings, pipeline, name, version, data, predictions, rows, files, run_id)
    return ScoringRun(name, version, role, run_id, run_dir, predictions, rows, files)


def _record_run(
    settings: Settings,
    pipeline: Path | None,
    name: str,
    version: str,
    data: Path,
    predictions: Path,
    rows: int,
    files: int,
    run_id: str,
) -> None:
    """A run for this scoring job in the pipeline's experiment, as Azure ML records one for every job."""
    from amlops.tracking import log_scoring_run, pipeline_experiment

    path = pipeline or settings.pipeline_file("batch_inference")
    experiment = pipeline_experiment(path, settings.experiment)
    log_scoring_run(
        settings,
        experiment,
        model=name,
        version=version,
        data=str(data),
        predictions=str(predictions),
        rows=rows,
        files=files,
        pipeline_run=run_id,
    )


def submit(
    settings: Settings,
    data: str,
    name: str,
    role: str | None,
    pinned: str | None,
    *,
    env: str | None = None,
    pipeline: Path | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[SubmittedJob, str]:
    """Resolve the version in the workspace and run the batch-inference pipeline there: (job, version)."""
    from amlops.azure.client import WorkspaceModelRegistry, ml_client
    from amlops.azure.errors import azure_errors
    from amlops.azure.jobs import submit_pipeline

    az = settings.azure_for(env)
    with azure_errors(az, env):
        registry_client = WorkspaceModelRegistry(ml_client(settings, env))
        version = resolve_version(registry_client, name, role, pinned)
    say(f"scoring {data} with {name} v{version}" + (f" ({role})" if role else "") + " on Azure ML")
    inputs = scoring_inputs(settings, data, f"azureml:{name}:{version}", version)
    path = pipeline or settings.pipeline_file("batch_inference")
    submitted = submit_pipeline(path, inputs, settings, env=env, wait=True)
    return submitted, version


@contextmanager
def azure_data(value: str) -> Iterator[str]:
    """A local file is given as a folder holding a copy of it (the input is a uri_folder), kept until the
    job is submitted (the SDK uploads it then); folders, assets and URLs pass through."""
    local = Path(value).expanduser()
    if not local.is_file():
        yield str(local.resolve()) if local.exists() else value
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="amlops-score-") as tmp:
        staged = Path(tmp) / "data"
        staged.mkdir()
        shutil.copy2(local, staged / local.name)
        yield str(staged)
