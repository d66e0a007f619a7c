"""`amlops run PIPELINE.yml`: the same pipeline YAML on the local runner (default) or on Azure ML."""

from __future__ import annotations

from pathlib import Path

import typer

from amlops.commands.options import EnvOption, TargetOption
from amlops.console import handle_errors, out
from amlops.errors import UsageError
from amlops.job_inputs import Target


def register(app: typer.Typer) -> None:
    @app.command("run")
    @handle_errors
    def run(
        pipeline: Path = typer.Argument(..., help="Pipeline job YAML, e.g. pipelines/training.yml"),
        set_: list[str] = typer.Option(
            None,
            "--set",
            help="Override inputs.<name>=…, a step's jobs.<job>.inputs.<name>=… or outputs.<name>=<path> (local)",
        ),
        target: TargetOption = Target.local,
        env: EnvOption = None,
        stream: bool = typer.Option(False, "--stream", help="Print step logs as they are written (local)"),
        wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the Azure job to finish (azure)"),
        isolated: bool = typer.Option(
            False,
            "--isolated",
            help="Run each step in a venv built from its component's environment (cached; local)",
        ),
        reuse: bool = typer.Option(
            True,
            "--reuse/--no-reuse",
            help="Reuse a deterministic step's outputs from an earlier run with identical inputs and code (local)",
        ),
    ) -> None:
        """Run a pipeline job YAML locally (subprocess per step) or submit it to Azure ML."""
        from amlops.config import load_settings
        from amlops.runner.overrides import parse_run_sets

        settings = load_settings()
        sets = parse_run_sets(set_)
        if target is Target.azure:
            from amlops.azure.jobs import submit_pipeline

            if sets.job_inputs or sets.outputs:
                raise UsageError(
                    "--target azure takes --set inputs.<name>=… only; set a step's input or an output path in "
                    "the pipeline YAML (or bind it to a pipeline input)"
                )
            submitted = submit_pipeline(pipeline, sets.inputs, settings, env=env, wait=wait)
            out.print(f"job {submitted.name}: {submitted.status}")
            return
        from amlops.runner.local import run_pipeline

        result = run_pipeline(pipeline, sets, settings, stream_logs=stream, isolated=isolated, reuse=reuse)
        out.print(f"[green]completed[/] {result.pipeline} run {result.run_id}")
        out.print(f"  run folder: {result.run_dir}")
        for name, path in result.outputs.items():
            out.print(f"  output {name}: {path}")
