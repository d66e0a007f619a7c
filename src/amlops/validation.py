"""Offline validation of AML YAML with azure-ai-ml's loaders (`load_component`, `load_job`, `load_schedule`...)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import yaml

from amlops.runner.plan import summarize_sdk_error


def find_yaml(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(x for x in p.rglob("*") if x.suffix in {".yml", ".yaml"}))
        elif p.is_file():
            files.append(p)
    return files


def kind_of(doc: dict[str, Any], path: Path) -> str:
    """Which AML entity a YAML document is, from its $schema or its keys."""
    schema = str(doc.get("$schema", ""))
    for marker, kind in (
        ("pipelineJob", "pipeline"),
        ("commandComponent", "component"),
        ("parallelComponent", "component"),
        ("pipelineComponent", "component"),
        ("schedule", "schedule"),
        ("environment", "environment"),
        ("data.schema", "data"),
        ("commandJob", "job"),
    ):
        if marker in schema:
            return kind
    if "trigger" in doc and "create_job" in doc:
        return "schedule"
    if doc.get("type") == "pipeline" and "jobs" in doc:
        return "pipeline"
    if doc.get("type") in {"command", "parallel"}:
        return "component"
    if "conda_file" in doc or "image" in doc or "dependencies" in doc:
        return "environment" if "image" in doc or "build" in doc else "conda"
    return "unknown"


def validate_file(path: Path) -> tuple[str, str | None]:
    """(kind, problem or None)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        return "yaml", f"not valid YAML: {exc}".splitlines()[0]
    if not isinstance(doc, dict):
        return "yaml", "expected a mapping at the top level"
    kind = kind_of(doc, path)
    if kind in {"conda", "unknown"}:
        return kind, None if kind == "conda" else "unknown AML YAML (no $schema and no recognisable keys)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from azure.ai.ml import load_component, load_data, load_environment, load_job
        from azure.ai.ml.entities._load_functions import load_schedule

        loader: Any = {
            "pipeline": load_job,
            "job": load_job,
            "component": load_component,
            "schedule": load_schedule,
            "environment": load_environment,
            "data": load_data,
        }[kind]
        try:
            entity = loader(path)
            validate = getattr(entity, "_validate", None)
            if validate is not None:
                result = validate()
                # Compute is chosen at submission (`azure.compute` in amlops.yaml, or --set), as in the
                # official examples that pass `--set settings.default_compute=...`; everything else must pass.
                problems = {
                    where: message
                    for where, message in (getattr(result, "error_messages", None) or {}).items()
                    if message != "Compute not set"
                }
                if problems:
                    where, message = next(iter(problems.items()))
                    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                    return kind, f"{where}: {message}{more}"
        except Exception as exc:
            return kind, summarize_sdk_error(exc)
    return kind, None
