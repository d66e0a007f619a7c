"""`amlops run PIPELINE.yml`: the same pipeline YAML on the local runner (default) or on Azure ML."""

from __future__ import annotations

from pathlib import Path

import typer

from amlops.commands.options import EnvOption, TargetOption
from amlops.console import handle_errors, out
from amlops.job_inputs import Target, parse_sets


def register(app: typer.Typer) -> None:
    @app.command("run")
    @handle_errors
    def run(
        pipeline: Path = typer.Argument(..., help="Pipeline job YAML, e.g. pipelines/training.yml"),
        set_: list[str] = typer.Option(
            None, "--set", help="Override a pipeline input: inputs.<name>=<value>"
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
    ) -> None:
        """Run a pipeline job YAML locally (subprocess per step) or submit it to Azure ML."""
        from amlops.config import load_settings

        settings = load_settings()
        inputs = parse_sets(set_)
        if target is Target.azure:
            from amlops.azure.jobs import submit_pipeline

            submitted = submit_pipeline(pipeline, inputs, settings, env=env, wait=wait)
            out.print(f"job {submitted.name}: {submitted.status}")
            return
        from amlops.runner.local import run_pipeline

        result = run_pipeline(pipeline, inputs, settings, stream_logs=stream, isolated=isolated)
        out.print(f"[green]completed[/] {result.pipeline} run {result.run_id}")
        out.print(f"  run folder: {result.run_dir}")
        for name, path in result.outputs.items():
            out.print(f"  output {name}: {path}")
