"""Options several commands share, declared once so their names, short forms and help read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from amlops.job_inputs import Target

TargetOption = Annotated[
    Target, typer.Option("--target", "-t", help="Where the jobs run: local (default) or azure")
]
EnvOption = Annotated[
    str | None,
    typer.Option("--env", "-e", help="Azure environment from azure.environments (dev, prod); for Azure ML"),
]
PipelineOption = Annotated[
    Path | None,
    typer.Option("--pipeline", help="Pipeline YAML (default: the project's pipelines/<name>.yml)"),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout for scripts and CI; progress and messages go to stderr",
    ),
]
