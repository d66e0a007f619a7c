"""Which pip packages of a component's environment the project's venv lacks, for a plain (not --isolated) run.

A step that imports a package its environment declares but this venv lacks would fail with an ImportError deep in
its log; the runner says so up front, naming the package and `--isolated` (which builds the component's own
environment, runner/environment.py). A note, not a refusal: a component may declare packages only some code paths
import (the scoring environment's Azure ML parallel runtime is one), and those steps run fine here.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from amlops.runner.environment import EnvironmentSpec, spec_of

# Azure ML's own job runtime (the parallel driver's azureml-core / azureml-dataset-runtime, …): the local runner
# stands in for it, so its absence here is expected, not a problem to report on every run.
AZURE_RUNTIME_PREFIX = "azureml-"


def missing_packages(environment: Any) -> list[str]:
    """The distribution names the environment's pip section lists and this interpreter lacks."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        spec = spec_of(environment)
    except Exception:  # a broken requirements file is --isolated's to report
        return []
    if not isinstance(spec, EnvironmentSpec):
        return []
    missing = []
    for line in spec.requirements:
        if line.startswith("-") or "://" in line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        name = req.name
        if req.marker is not None and not req.marker.evaluate():
            continue  # e.g. tzdata only on Windows: not part of this platform's environment
        if name.lower().startswith(AZURE_RUNTIME_PREFIX):
            continue
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def missing_note(step_name: str, environment: Any) -> str | None:
    missing = missing_packages(environment)
    if not missing:
        return None
    names = ", ".join(repr(m) for m in missing)
    return (
        f"job {step_name!r}: its environment lists pip package(s) {names} that this venv lacks; if the step "
        f"imports them, run with --isolated (builds the component's environment)"
    )
