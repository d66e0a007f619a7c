"""Azure ML commands: `amlops deploy`, `amlops components publish`, `amlops schedule create|list|disable`.

The work is in `amlops.azure.*` (imported inside the commands: azure-ai-ml takes seconds to import).
"""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from pathlib import Path

import typer

from amlops.commands.options import EnvOption, JsonOption
from amlops.console import emit_json, handle_errors, machine_readable, out

_SMOKE = typer.Option(
    None,
    "--smoke-input",
    help="Small CSV/Parquet file or folder scored before the default switches "
    "(default: azure.smoke_input, only when something changed).",
)


class Which(StrEnum):
    monitoring = "monitoring"
    training = "training"


def register(app: typer.Typer) -> None:
    @app.command("deploy")
    @handle_errors
    def deploy(
        env: EnvOption = None,
        smoke_input: Path | None = _SMOKE,
        as_json: JsonOption = False,
    ) -> None:
        """Deploy the champion MLflow model to a batch endpoint: create or update, smoke job, default."""
        from amlops.azure.deploy import deploy_champion
        from amlops.config import load_settings

        with machine_readable(as_json):
            result = deploy_champion(load_settings(), env, smoke_input=smoke_input)
            out.print(
                f"endpoint {result.endpoint}: deployment {result.deployment} serves {result.model}"
                + ("" if result.changed else " (unchanged)")
            )
            if result.smoke_job:
                out.print(f"smoke job: {result.smoke_job}")
        if as_json:
            emit_json(asdict(result))

    components = typer.Typer(help="Azure ML components built from components/*.yml.", no_args_is_help=True)

    @components.command("publish")
    @handle_errors
    def publish(
        env: EnvOption = None,
        registry: str | None = typer.Option(
            None, "--registry", help="Publish to this AML registry instead of the workspace."
        ),
        target: str = typer.Option(
            "azure",
            "--target",
            "-t",
            help="azure (default): the workspace or --registry; local: the local asset registry `amlops run` "
            "resolves azureml: components from",
        ),
    ) -> None:
        """Register every component with a version derived from its content (unchanged ones are skipped)."""
        from amlops.azure.components import publish_components
        from amlops.config import load_settings

        if target == "local":
            _publish_local()
            return
        done = publish_components(load_settings(), env, registry=registry)
        created = sum(1 for c in done if c.created)
        out.print(f"{created} published, {len(done) - created} already up to date")

    app.add_typer(components, name="components")

    schedule = typer.Typer(
        help="The monitoring and retraining schedules in the workspace.", no_args_is_help=True
    )
    which_option = typer.Option(None, "--which", "-w", help="Only this schedule (default: both).")

    @schedule.command("create")
    @handle_errors
    def create(env: EnvOption = None, which: Which | None = which_option) -> None:
        """Create or update the schedule(s) from amlops.yaml (monitoring pins the current champion)."""
        from amlops.azure.schedules import create_schedules
        from amlops.config import load_settings

        names = create_schedules(load_settings(), env, which.value if which else None)  # type: ignore[arg-type]
        out.print(f"scheduled: {', '.join(names)}")

    @schedule.command("list")
    @handle_errors
    def list_(env: EnvOption = None) -> None:
        """Schedules of the workspace, enabled or not."""
        from amlops.azure.schedules import list_schedules
        from amlops.config import load_settings

        found = list_schedules(load_settings(), env)
        if not found:
            out.print("no schedules (create them with `amlops schedule create`)")
            return
        from rich.table import Table

        table = Table(title_justify="left")
        for column in ("name", "enabled", "cron", "time zone", "amlops"):
            table.add_column(column)
        for s in found:
            table.add_row(
                s.name, "yes" if s.enabled else "[yellow]no[/]", s.expression, s.time_zone, s.which or "-"
            )
        out.print(table)

    @schedule.command("disable")
    @handle_errors
    def disable(env: EnvOption = None, which: Which | None = which_option) -> None:
        """Disable the schedule(s); `amlops schedule create` enables them again."""
        from amlops.azure.schedules import disable_schedules
        from amlops.config import load_settings

        names = disable_schedules(load_settings(), env, which.value if which else None)  # type: ignore[arg-type]
        out.print(f"disabled: {', '.join(names) or 'nothing'}")

    app.add_typer(schedule, name="schedule")


def _publish_local() -> None:
    """`components publish --target local`: each components/*.yml at its content version (as on Azure) and as
    `@latest`, in the local asset registry."""
    from amlops.azure.components import component_files, content_version
    from amlops.config import load_settings
    from amlops.runner.assets import publish_component
    from amlops.runner.plan import load_component_file

    settings = load_settings()
    created = 0
    files = component_files(settings)
    for path in files:
        component = load_component_file(path)
        version = content_version(path, component)
        if publish_component(settings, path, str(component.name), version):
            created += 1
            out.print(f"  azureml:{component.name}:{version}")
    out.print(f"{created} published locally, {len(files) - created} already up to date")
