"""`amlops score`: batch-score new data with the champion (or a given version): pipelines/batch_inference.yml.

The work is in `amlops.scoring`; this module parses the flags and prints.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from amlops.commands.options import EnvOption, JsonOption, PipelineOption, TargetOption
from amlops.console import UserError, emit_json, handle_errors, machine_readable, out
from amlops.job_inputs import Target

if TYPE_CHECKING:
    from amlops.config import Settings


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
        target: TargetOption = Target.local,
        env: EnvOption = None,
        id_column: Annotated[
            str | None,
            typer.Option(
                "--id-column",
                help="Row id column; default: the schema's id_column (ids are generated when the data has none)",
            ),
        ] = None,
        prediction_column: Annotated[
            str | None,
            typer.Option(
                "--prediction-column", help="Name of the added prediction column (default: prediction)"
            ),
        ] = None,
        pipeline: PipelineOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Score new data with the champion (batch): predictions carry the row id, model version and scoring time."""
        from amlops.commands.monitor import set_roles
        from amlops.config import load_settings

        settings = load_settings()
        set_roles(settings, id_column=id_column, prediction_column=prediction_column)
        with machine_readable(as_json):
            document = _score(settings, input_, model, model_version, out_dir, target, env, pipeline)
        if as_json:
            emit_json(document)


def _score(
    settings: Settings,
    input_: str,
    model: str | None,
    model_version: str | None,
    out_dir: Path | None,
    target: Target,
    env: str | None,
    pipeline: Path | None,
) -> dict[str, Any]:
    from amlops import scoring

    path = pipeline or settings.pipeline_file("batch_inference")
    name, role, pinned = scoring.parse_model(model, settings.model_name, model_version)
    dest = out_dir.expanduser().resolve() if out_dir else None
    if target is Target.azure:
        with scoring.azure_data(input_) as data_ref:
            submitted, version = scoring.submit(
                settings, data_ref, name, role, pinned, env=env, pipeline=path, say=out.print
            )
        out.print(f"job {submitted.name}: {submitted.status}")
        where = f" --download-path {dest}" if dest else ""
        out.print(f"  predictions: az ml job download -n {submitted.name} --output-name predictions{where}")
        return {
            "target": "azure",
            "model_name": name,
            "version": version,
            "role": role,
            "job": submitted.name,
            "status": submitted.status,
            "studio_url": submitted.studio_url,
        }
    if input_.startswith("azureml:") or "://" in input_:
        raise UserError(f"--input {input_}: Azure ML assets and URLs need --target azure (locally: a path)")
    data = Path(input_).expanduser()
    if not data.exists():
        raise UserError(f"--input {input_}: not found")
    run = scoring.run_local(
        settings, data.resolve(), name, role, pinned, pipeline=path, dest=dest, say=out.print
    )
    out.print(f"[green]scored[/] {run.rows:,} rows in {run.files} file(s) with {name} v{run.version}")
    out.print(f"  predictions: {run.predictions}")
    out.print(f"  run folder: {run.run_dir}")
    return {"target": "local", **asdict(run)}
