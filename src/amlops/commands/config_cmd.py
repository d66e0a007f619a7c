"""`amlops config show`: the effective settings after the file and AMLOPS_* overrides."""

from __future__ import annotations

import typer

from amlops.console import handle_errors, out


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)

    @group.command("show")
    @handle_errors
    def show() -> None:
        """Print the effective settings (file + environment overrides) as YAML."""
        import yaml

        from amlops.config import load_settings

        s = load_settings()
        data = s.model_dump(mode="json")
        data["_resolved"] = {
            "config_file": str(s.source) if s.source else None,
            "tracking_uri": s.tracking_uri,
            "artifact_root": s.artifact_root,
            "storage_root": s.storage_root,
            "runs_dir": str(s.runs_path),
        }
        out.print(yaml.safe_dump(data, sort_keys=False), end="", markup=False)

    app.add_typer(group, name="config")
