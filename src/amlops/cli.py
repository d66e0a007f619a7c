"""The `amlops` command line. Command groups live in `amlops.commands.<name>`; each exposes `register(app)`.

Only typer/rich are imported here: heavy libraries (azure.ai.ml, mlflow, sklearn) are imported inside the
command functions, so `amlops --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperOption

from amlops import console

# Each module's register(app) adds its commands or sub-groups. Order is the order of `amlops --help`.
COMMAND_MODULES = [
    "amlops.commands.run",
    "amlops.commands.validate",
    "amlops.commands.config_cmd",
    "amlops.commands.infra",
    "amlops.commands.data",
    "amlops.commands.train",
    "amlops.commands.registry_cmds",
    "amlops.commands.monitor",
    "amlops.commands.score",
    "amlops.commands.azure_cmds",
    "amlops.commands.loop_cmd",
]

app = typer.Typer(
    name="amlops",
    help="Azure ML MLOps accelerator: one pipeline YAML, run locally or on Azure ML.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},  # as az and mlflow users type it
)


def _display_type(self: TyperOption, ctx: Any) -> str | None:
    """The value column of `--help`: nothing for a flag (it takes no value), `<text> …` for a repeatable option,
    instead of typer's `<bool>` and `<list[str]>`."""
    if self.is_flag:
        return None
    shown = _typer_display_type(self, ctx)
    if shown and shown.startswith("<list[") and shown.endswith("]>"):
        shown = f"<{shown[6:-2]}> (repeatable)"
    return shown.replace("<str>", "<text>") if shown else shown


_typer_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _display_type  # type: ignore[method-assign,assignment]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.out.print(f"amlops {version('amlops')}")
        raise typer.Exit()


@app.callback()
def _main(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Config file (default: $AMLOPS_CONFIG or the nearest amlops.yaml).",
        envvar="AMLOPS_CONFIG",
    ),
    _show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    if config is not None:
        os.environ["AMLOPS_CONFIG"] = str(config)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry: one-line errors for expected failures, exit code 1 (2 for usage errors)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        app(standalone_mode=True)
    except console.AmlopsError as exc:
        console.error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.error("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
