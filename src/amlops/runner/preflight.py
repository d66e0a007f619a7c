"""Refuse, before anything runs, the pipeline YAML the local runner cannot execute, with one line per refusal.

The raw YAML is read (not azure-ai-ml's `load_job`) because a node type the SDK does not know, a prompt flow whose
`flow.dag.yaml` needs the promptflow package, or a pipeline *component* file all fail inside `load_job` with a
multi-page schema dump that never says "this cannot run locally".

Node types of a pipeline job (Microsoft Learn "CLI (v2) pipeline job YAML schema", reference-yaml-job-pipeline:
`jobs.<job_name>`; azure-ai-ml `_schema/pipeline/pipeline_job.py` accepts command, import, sweep, parallel, pipeline,
automl, spark, data_transfer). The runner executes command, parallel, sweep and pipeline nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amlops.errors import UserError

RUNS_LOCALLY = {"command", "parallel", "sweep", "pipeline"}

# Why a node type cannot run here, and what runs it: one phrase each, so the refusal stays on one line.
_WHY = {
    "automl": "AutoML chooses and trains models on Azure ML compute",
    "spark": "Spark jobs run on Azure ML's serverless Spark or an attached Synapse pool",
    "flow": "prompt flows need the promptflow runtime and their connections",
    "import": "import jobs copy from external databases through Azure ML connections",
    "data_transfer": "data transfer jobs copy through Azure ML connections",
}


def refuse_unrunnable(path: Path) -> None:
    """Raise UserError naming the first job the local runner cannot execute (or a component given as a job)."""
    doc = _load(path)
    if not isinstance(doc, dict):
        return
    if is_component_document(doc):
        raise UserError(
            f"{path}: this is a {doc.get('type', 'pipeline')} *component* (a reusable definition), not a pipeline "
            f"job; reference it from a pipeline job (jobs.<name>.component: ./{path.name}, with its inputs bound) "
            f"and run that file with `amlops run`"
        )
    _scan_jobs(path, doc, prefix="", seen=set())


def is_component_document(doc: dict[str, Any]) -> bool:
    """A component YAML: its `$schema` names a component schema, or it carries `version` (a job never does:
    reference-yaml-component-pipeline lists `version`, reference-yaml-job-pipeline does not)."""
    schema = str(doc.get("$schema") or "")
    if "Component.schema" in schema or "component.schema" in schema.lower():
        return True
    return doc.get("type") == "pipeline" and "version" in doc


def _load(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # load_job reports unreadable YAML with its own message


def _scan_jobs(source: Path, doc: dict[str, Any], prefix: str, seen: set[Path]) -> None:
    for name, node in (doc.get("jobs") or {}).items():
        if not isinstance(node, dict):
            continue
        qual = f"{prefix}{name}"
        kind = str(node.get("type") or "command")
        component = node.get("component")
        comp_path = _local_file(source, component)
        if comp_path is not None and _is_flow(comp_path):
            kind = "flow"
        if kind not in RUNS_LOCALLY:
            raise UserError(refusal(source, qual, kind))
        if kind == "pipeline" and comp_path is not None and comp_path.is_file() and comp_path not in seen:
            inner = _load(comp_path)
            if isinstance(inner, dict):
                _scan_jobs(comp_path, inner, f"{qual}.", seen | {comp_path})
        elif kind == "pipeline" and isinstance(component, dict):
            _scan_jobs(source, component, f"{qual}.", seen)


def refusal(source: Path, job: str, kind: str) -> str:
    why = _WHY.get(kind, "the local runner executes command, parallel, sweep and pipeline nodes")
    return (
        f"{source.name}: job {job!r} has type {kind!r}, which the local runner does not run ({why}); "
        f"run this pipeline with --target azure"
    )


def _local_file(source: Path, component: Any) -> Path | None:
    if not isinstance(component, str) or component.startswith("azureml:") or "://" in component:
        return None
    candidate = (source.parent / component).resolve()
    if candidate.is_dir() and (candidate / "flow.dag.yaml").is_file():
        return candidate / "flow.dag.yaml"
    return candidate


def _is_flow(path: Path) -> bool:
    """A prompt flow: `flow.dag.yaml` (or a `*.dag.yaml`), or a YAML with `nodes:` and no `jobs:`/`command:`
    (promptflow's flow schema; azure-ai-ml loads it as a FlowComponent only with promptflow installed)."""
    if path.name.endswith(".dag.yaml") or path.name.endswith(".dag.yml"):
        return True
    if path.suffix not in {".yml", ".yaml"} or not path.is_file():
        return False
    doc = _load(path)
    return isinstance(doc, dict) and "nodes" in doc and "jobs" not in doc and "command" not in doc
