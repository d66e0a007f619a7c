"""Datastore URIs on this machine: `azureml://datastores/<name>/paths/<path>` maps to a local folder per datastore.

The URI forms come from Microsoft Learn "Access data in a job" (how-to-read-write-data-v2) and "CLI (v2) data YAML
schema" (reference-yaml-data): `azureml://datastores/<data_store_name>/paths/<path>`, and the long form
`azureml://subscriptions/<sub>/resourcegroups/<rg>/workspaces/<ws>/datastores/<name>/paths/<path>`. An output path
may hold `${{name}}` (the job's name) and `${{output_name}}` (the output's name): Azure ML's default output path is
`azureml://datastores/workspaceblobstore/paths/azureml/${{name}}/${{output_name}}/`.

Each datastore is a folder: `datastores.<name>` in amlops.yaml, else `<state_dir>/datastores/<name>`;
`workspaceblobstore` (the workspace's default datastore) always exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from amlops.errors import UserError

DEFAULT_DATASTORE = "workspaceblobstore"

_URI = re.compile(
    r"^azureml://(?:subscriptions/[^/]+/resource[gG]roups/[^/]+/(?:providers/[^/]+/)?workspaces/[^/]+/)?"
    r"datastores/(?P<name>[^/]+)/paths/(?P<path>.*)$"
)
_PLACEHOLDER = re.compile(r"\$\{\{\s*(name|output_name)\s*\}\}")
# Server expressions of an output path (Microsoft Learn "Expressions in Azure Machine Learning SDK and CLI v2",
# concept-expressions, "Server expressions"): ${{default_datastore}} is the pipeline's settings.default_datastore, else
# the workspace's default; ${{name}} is "the job name. For pipelines, it's the step job name, not the pipeline job
# name"; ${{output_name}} is "the job output name".
_DEFAULT_DATASTORE = re.compile(r"\$\{\{\s*default_datastore\s*\}\}")


def is_datastore_uri(location: str) -> bool:
    return _URI.match(location) is not None


def with_default_datastore(uri: str, default: str | None) -> str:
    """The URI with ${{default_datastore}} filled in (workspaceblobstore, this machine's workspace default)."""
    return _DEFAULT_DATASTORE.sub(default or DEFAULT_DATASTORE, uri)


def datastore_root(settings: Any, name: str) -> Path:
    """The local folder standing in for datastore `name`."""
    configured = dict(getattr(settings, "datastores", None) or {})
    if name in configured:
        return Path(settings.path(configured[name]))
    root = Path(settings.state_path) / "datastores" / name
    if name == DEFAULT_DATASTORE:
        root.mkdir(parents=True, exist_ok=True)
    return root


def local_path(
    settings: Any,
    uri: str,
    *,
    job_name: str = "",
    output_name: str = "",
    default_datastore: str | None = None,
) -> Path:
    """The local path of a datastore URI, its `${{default_datastore}}`/`${{name}}`/`${{output_name}}` filled in; an
    unknown datastore is refused with the setting that defines it."""
    uri = with_default_datastore(uri, default_datastore)
    match = _URI.match(uri)
    if match is None:
        raise UserError(f"{uri}: not a datastore URI (azureml://datastores/<name>/paths/<path>)")
    name = match.group("name")
    root = datastore_root(settings, name)
    if not root.is_dir():
        raise UserError(
            f"{uri}: datastore {name!r} has no local folder; create {root} or map it in amlops.yaml "
            f"(datastores: {{{name}: <folder>}})"
        )
    values = {"name": job_name, "output_name": output_name}
    relative = _PLACEHOLDER.sub(lambda m: values[m.group(1)], match.group("path")).strip("/")
    if "${{" in relative:
        raise UserError(
            f"{uri}: only ${{{{default_datastore}}}}, ${{{{name}}}} and ${{{{output_name}}}} can be filled in an "
            "output path"
        )
    resolved = (root / relative).resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise UserError(f"{uri}: the path leaves datastore {name!r}")
    return resolved


def check_plan_datastores(settings: Any, plan: Any) -> None:
    """Refuse, before any step runs, a datastore URI whose datastore has no local folder."""
    from amlops.runner.plan import PathValue

    uris = [v.path for s in plan.steps for v in s.inputs.values() if isinstance(v, PathValue)]
    uris += [spec.target for s in plan.steps for spec in s.outputs.values() if spec.target]
    for uri in uris:
        match = _URI.match(with_default_datastore(uri, plan.default_datastore))
        if match is None:
            continue
        root = datastore_root(settings, match.group("name"))
        if not root.is_dir():
            name = match.group("name")
            raise UserError(
                f"{plan.source.name}: {uri}: datastore {name!r} has no local folder; create {root} or map it in "
                f"amlops.yaml (datastores: {{{name}: <folder>}})"
            )
