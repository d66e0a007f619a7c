"""`amlops validate`: every component, pipeline, schedule and environment YAML loads and validates offline."""

from __future__ import annotations

from pathlib import Path

import typer

from amlops.console import UserError, handle_errors, out


def register(app: typer.Typer) -> None:
    @app.command("validate")
    @handle_errors
    def validate(
        paths: list[Path] = typer.Argument(
            None, help="Files or folders (default: components/ and pipelines/)"
        ),
    ) -> None:
        """Load and validate AML YAML with azure-ai-ml's own loaders and validators (no Azure access)."""
        from amlops.validation import find_yaml, validate_file

        roots = paths or [Path("components"), Path("pipelines")]
        files = find_yaml(roots)
        if not files:
            raise UserError("no YAML files found under " + ", ".join(str(p) for p in roots))
        failures = 0
        for file in files:
            kind, problem = validate_file(file)
            if problem:
                failures += 1
                out.print(f"[red]✗[/] {file} ({kind}): {problem}")
            else:
                out.print(f"[green]✓[/] {file} ({kind})")
        if failures:
            raise UserError(f"{failures} of {len(files)} YAML files failed validation")
        out.print(f"{len(files)} files valid")
