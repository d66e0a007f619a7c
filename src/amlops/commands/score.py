"""`amlops score`: batch-score new data with the champion (or a given version): pipelines/batch_inference.yml.

The model is resolved through `amlops.registry.resolve_role`, the one function that answers on every
registry (MLflow aliases where supported, the `role.<role>` version tags where not, as on Azure ML), so the
version that scores is the one the registry says serves now. Locally the model is downloaded once per version
into `<state_dir>/models/<name>/<version>`, and the input is checked against its signature before the pipeline
starts.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from amlops.console import UserError, handle_errors, out

if TYPE_CHECKING:
    from amlops.config import Settings

SCORING_PIPELINE = "pipelines/batch_inference.yml"
DEFAULT_ROLE = "champion"


class Target(StrEnum):
    local = "local"
    azure = "azure"


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
    from amlops.steps import score

    try:
        model = score.load_model(model_dir)
        options = score.resolve_options(
            model, version, settings.monitor.id_column, settings.monitor.prediction_column
        )
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


def pipeline_inputs(settings: Settings, data: str, model: str, version: str) -> dict[str, str]:
    for key in ("id_column", "prediction_column"):
        value = getattr(settings.monitor, key)
        if any(ch.isspace() for ch in value):
            # A parallel step's program_arguments are split at spaces by Azure ML, quotes or not.
            raise UserError(
                f"monitor.{key}: {value!r} has a space; the scoring step gets it as a command argument, which "
                "Azure ML splits at spaces: use a column name without spaces"
            )
    return {
        "data": data,
        "model": model,
        "model_version": version,
        # The monitor reads the same columns from the predictions: one setting for both.
        "id_column": settings.monitor.id_column,
        "prediction_column": settings.monitor.prediction_column,
    }


def _score_local(
    settings: Settings,
    path: Path,
    data: Path,
    name: str,
    role: str | None,
    pinned: str | None,
    dest: Path | None,
) -> None:
    from amlops import registry
    from amlops.runner.local import run_pipeline

    client = registry.client_for(settings)
    version = resolve_version(client, name, role, pinned)
    what = f"{name} v{version}" + (f" ({role})" if role else "")
    out.print(f"scoring {data} with {what}")
    model_dir = download_model(settings, client, name, version)
    precheck(data, model_dir, version, settings)
    result = run_pipeline(path, pipeline_inputs(settings, str(data), str(model_dir), version), settings)
    predictions = result.outputs["predictions"]
    rows, files = scored_rows(predictions)
    if dest is not None:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(predictions, dest, dirs_exist_ok=True)
        predictions = dest
    out.print(f"[green]scored[/] {rows:,} rows in {files} file(s) with {name} v{version}")
    out.print(f"  predictions: {predictions}")
    out.print(f"  run folder: {result.run_dir}")


def _score_azure(
    settings: Settings,
    path: Path,
    data: str,
    name: str,
    role: str | None,
    pinned: str | None,
    env: str | None,
    dest: Path | None,
) -> None:
    from amlops.azure.client import WorkspaceModelRegistry, ml_client
    from amlops.azure.errors import azure_errors
    from amlops.azure.jobs import submit_pipeline

    az = settings.azure_for(env)
    with azure_errors(az, env):
        registry_client = WorkspaceModelRegistry(ml_client(settings, env))
        version = resolve_version(registry_client, name, role, pinned)
    out.print(f"scoring {data} with {name} v{version}" + (f" ({role})" if role else "") + " on Azure ML")
    inputs = pipeline_inputs(settings, data, f"azureml:{name}:{version}", version)
    submitted = submit_pipeline(path, inputs, settings, env=env, wait=True)
    out.print(f"job {submitted.name}: {submitted.status}")
    if str(submitted.status).lower() not in ("completed", "finished"):
        raise UserError(f"Azure ML job {submitted.name} ended {submitted.status}")
    target = f" --download-path {dest}" if dest else ""
    out.print(f"  predictions: az ml job download -n {submitted.name} --output-name predictions{target}")


@contextmanager
def _azure_data(value: str) -> Iterator[str]:
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


def register(app: typer.Typer) -> None:
    @app.command("score")
    @handle_errors
    def score(
        input_: Annotated[
            str,
            typer.Option(
                "--input", "-i", help="CSV/Parquet file or folder (azure: also azureml:name:version or a URL)"
            ),
        ],
        model: Annotated[
            str | None,
            typer.Option("--model", "-m", help="NAME@ROLE or NAME/VERSION (default: <model_name>@champion)"),
        ] = None,
        model_version: Annotated[
            str | None, typer.Option("--model-version", help="Score with this version instead of a role")
        ] = None,
        out_dir: Annotated[
            Path | None, typer.Option("--out", "-o", help="Also copy the predictions into this folder")
        ] = None,
        target: Annotated[
            Target, typer.Option("--target", "-t", help="local (default) or azure")
        ] = Target.local,
        env: Annotated[
            str | None, typer.Option("--env", help="Azure environment from azure.environments (azure)")
        ] = None,
        pipeline: Annotated[
            Path | None, typer.Option("--pipeline", help=f"Default: {SCORING_PIPELINE} of the project")
        ] = None,
    ) -> None:
        """Score new data with the champion (batch): predictions carry the model version and scoring time."""
        from amlops.config import load_settings

        settings = load_settings()
        path = pipeline or settings.pipeline_file("batch_inference")
        if not path.is_file():
            raise UserError(f"{path}: scoring pipeline not found")
        name, role, pinned = parse_model(model, settings.model_name, model_version)
        dest = out_dir.expanduser().resolve() if out_dir else None
        if target is Target.azure:
            with _azure_data(input_) as data_ref:
                _score_azure(settings, path, data_ref, name, role, pinned, env, dest)
            return
        if input_.startswith("azureml:") or "://" in input_:
            raise UserError(
                f"--input {input_}: Azure ML assets and URLs need --target azure (locally: a path)"
            )
        data = Path(input_).expanduser()
        if not data.exists():
            raise UserError(f"--input {input_}: not found")
        _score_local(settings, path, data.resolve(), name, role, pinned, dest)
