"""Turn an AML CLI v2 pipeline job (parsed by azure-ai-ml's own `load_job`) into a flat, ordered plan of steps.

The plan is plain data: every leaf step (command or parallel) with its inputs resolved to a literal, a path/URL
or a reference to another step's output. Nested pipeline components are flattened (`outer.inner` names), and
`${{parent.jobs.<job>.outputs.<name>}}` bindings through them are followed to the leaf that produces the data.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from amlops.console import UserError
from amlops.runner.datastores import is_datastore_uri
from amlops.runner.early_termination import parse_policy
from amlops.runner.overrides import RunOverrides
from amlops.runner.preflight import refusal, refuse_unrunnable

PRIMITIVE_TYPES = {"string", "integer", "number", "boolean"}
PATH_TYPES = {"uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"}

_PARENT_INPUT = re.compile(r"\$\{\{\s*parent\.inputs\.([A-Za-z0-9_]+)\s*\}\}")
_PARENT_JOB_OUTPUT = re.compile(r"^\$\{\{\s*parent\.jobs\.([A-Za-z0-9_]+)\.outputs\.([A-Za-z0-9_]+)\s*\}\}$")
_PARENT_OUTPUT = re.compile(r"^\$\{\{\s*parent\.outputs\.([A-Za-z0-9_]+)\s*\}\}$")

# Every command job has a default output named "default": the job's artifact store, holding what the job wrote to
# ./outputs and ./logs and its user_logs/ (Microsoft Learn "Where to save and write files for Azure Machine Learning
# experiments", how-to-save-write-experiment-files). The name is azure-ai-ml's: constants/_common.py
# `DEFAULT_ARTIFACT_STORE_OUTPUT_NAME = "default"`, which operations/_job_operations.py `_get_named_output_uri` reads
# from `job.outputs` (the store is azureml://datastores/workspaceartifactstore/paths/ExperimentRun/dcid.<job>/);
# `az ml job download` saves it in a folder called "artifacts" (JobOperations.download `artifact_directory_name`), and
# the azureml://jobs/<job>/outputs/artifacts/paths/<path> URI form (constants/_common.py JOB_URI_FORMAT) names it
# "artifacts" too — but a job's outputs carry it as "default". A later step binds it as
# ${{parent.jobs.<job>.outputs.default}} unless the component declares an output of that name itself.
DEFAULT_OUTPUT = "default"
# The name the URI form and the download folder use; as a binding it is refused with the name to use instead.
ARTIFACTS_ALIAS = "artifacts"


@dataclass(frozen=True)
class OutputRef:
    """The output `output` of the (qualified) job `job`; may point at a nested pipeline until resolved."""

    job: str
    output: str

    def __str__(self) -> str:
        return f"{self.job}.outputs.{self.output}"


@dataclass(frozen=True)
class PathValue:
    """A data input: a local absolute path or a URL (abfs://, models:/ ...)."""

    path: str
    type: str


Value = Any  # a primitive, PathValue, OutputRef or None (unset)


@dataclass
class OutputSpec:
    type: str
    target: str | None = None  # a pipeline-level output path (local or URL) the data must also land in


@dataclass
class StepPlan:
    name: str  # qualified: "train" or "nested.s1"
    kind: str  # "command" | "parallel"
    component: str  # component name (or "inline")
    source: Path | None  # the component YAML
    code_dir: Path | None
    command: str | None  # command template (command steps)
    parallel: dict[str, Any] | None  # task + batching settings (parallel steps)
    input_types: dict[str, str]
    optional_inputs: set[str]
    inputs: dict[str, Value]
    outputs: dict[str, OutputSpec]
    environment_variables: dict[str, str] = field(default_factory=dict)
    # The component's `environment:` as azure-ai-ml loaded it: an Environment (image, conda_file dict) or a
    # reference string (azureml:name:version, a registry asset); parallel components carry it on `task`.
    environment: Any = None
    # The node's `limits.timeout` in seconds (azure-ai-ml CommandJobLimits; "Azure ML kills the job after it").
    timeout: float | None = None
    # A sweep node's search space, sampling, objective and limits (runner/sweep.py), as plain data.
    sweep: dict[str, Any] | None = None
    # `distribution:` (pytorch / mpi / tensorflow) and `resources.instance_count` (runner/distributed.py).
    distribution: dict[str, Any] | None = None
    instance_count: int = 1
    # The node's compute after ${{parent.inputs.x}} is resolved: recorded, not used (the runner is the compute).
    compute: str | None = None
    # Component `is_deterministic` (default true, reference-yaml-component-command): reusable from an earlier run.
    deterministic: bool = True

    def literal_inputs(self) -> set[str]:
        """The inputs that are values, not paths (Azure ML pastes these into a command as they are)."""
        return {name for name, typ in self.input_types.items() if typ in PRIMITIVE_TYPES}

    def upstream(self) -> set[str]:
        return {v.job for v in self.inputs.values() if isinstance(v, OutputRef)}


@dataclass
class Plan:
    name: str
    experiment: str | None
    source: Path
    steps: list[StepPlan]  # topological order
    outputs: dict[str, OutputRef]  # pipeline outputs -> leaf output
    inputs: dict[str, Value]
    default_compute: str | None = None
    # settings.default_datastore: what ${{default_datastore}} in an output path names (None: workspaceblobstore).
    default_datastore: str | None = None
    # settings.continue_on_step_failure (reference-yaml-job-pipeline): steps not depending on a failed one go on.
    continue_on_step_failure: bool = False
    # settings.force_rerun: run every step even where an earlier result could be reused.
    force_rerun: bool = False

    def step(self, name: str) -> StepPlan:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)


def load_pipeline_job(path: Path) -> Any:
    """`azure.ai.ml.load_job` with its multi-page validation dumps reduced to one line."""
    if not path.is_file():
        raise UserError(f"{path}: pipeline file not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from azure.ai.ml import load_job

        try:
            job = load_job(path)
        except Exception as exc:
            raise UserError(f"{path}: {summarize_sdk_error(exc)}") from None
    if type(job).__name__ != "PipelineJob":
        raise UserError(f"{path}: expected a pipeline job (type: pipeline), got {type(job).__name__}")
    return job


def load_component_file(path: Path) -> Any:
    """`azure.ai.ml.load_component` with its validation dump reduced to one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from azure.ai.ml import load_component

        try:
            return load_component(path)
        except Exception as exc:
            raise UserError(f"{path}: {summarize_sdk_error(exc)}") from None


def summarize_sdk_error(exc: BaseException) -> str:
    """azure-ai-ml validation errors are long JSON dumps; keep the first message and its path."""
    text = str(exc)
    msg = re.search(r'"message":\s*"((?:[^"\\]|\\.)*)"', text)
    where = re.search(r'"path":\s*"([^"]*)"', text)
    if msg:
        first = msg.group(1).replace('\\"', '"')
        missing = re.search(r"No such file or directory: ([^'\]\\]+)", first)
        if missing:
            first = f"file not found: {os.path.normpath(missing.group(1))}"
        first = first.replace("\\n", " ").split("\n")[0]
        first = first if len(first) <= 300 else first[:297] + "..."
        return f"{where.group(1)}: {first}" if where else first
    first_line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return first_line if len(first_line) <= 300 else first_line[:297] + "..."


def _is_unset(value: Any) -> bool:
    return value is None


def _input_data(node_input: Any) -> Any:
    return getattr(node_input, "_data", node_input)


def _path_of(data: Any, base: Path, what: str) -> PathValue:
    """An Input(type, path) or {'type','path'} -> PathValue with local paths made absolute against `base`."""
    if isinstance(data, dict):
        typ, path = data.get("type", "uri_folder"), data.get("path")
    else:
        typ, path = getattr(data, "type", None) or "uri_folder", getattr(data, "path", None)
    if path is None:
        raise UserError(f"{what}: data input has no path")
    return PathValue(resolve_location(str(path), base, what, allow_asset=True), str(typ))


def resolve_location(path: str, base: Path, what: str, *, allow_asset: bool = False) -> str:
    """A local path made absolute against `base`; URLs pass through; a workspace asset reference is kept as
    `azureml:<name>:<version>` where `allow_asset` (a data input: the local asset registry resolves it when the
    run starts, runner/assets.py), else refused."""
    # load_job strips the `azureml:` prefix of asset references, leaving `name:version` or `name@label`.
    is_asset_ref = "/" not in path and re.fullmatch(r"[\w.-]+(:[\w.-]+|@[\w.-]+)", path) is not None
    if is_datastore_uri(path):
        return path  # mapped to a local folder when the step runs (runner/datastores.py)
    if path.startswith("azureml:") or path.startswith("azureml://") or is_asset_ref:
        shown = path if path.startswith("azureml:") else f"azureml:{path}"
        if allow_asset and not path.startswith("azureml://"):
            return shown
        raise UserError(
            f"{what}: {shown!r} is an Azure ML asset and cannot be read locally; "
            f"pass a local path or URL with --set, or run with --target azure"
        )
    if path.startswith("file://"):
        path = path[len("file://") :]
    elif path.startswith("file:"):
        path = path[len("file:") :]
    if "://" in path or path.startswith("models:/"):
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


class _Flattener:
    def __init__(
        self,
        source: Path,
        job_overrides: dict[str, dict[str, str]] | None = None,
        cwd: Path | None = None,
        components: Callable[[str], Path | None] | None = None,
    ) -> None:
        self.source = source
        self.components = components
        self.job_overrides = {k: dict(v) for k, v in (job_overrides or {}).items()}
        self.cwd = cwd or Path.cwd()
        self.steps: dict[str, StepPlan] = {}
        self.aliases: dict[OutputRef, OutputRef] = {}  # pipeline-node output -> inner producer
        self.top_outputs: dict[str, OutputRef] = {}

    def flatten(self, jobs: dict[str, Any], scope_inputs: dict[str, Value], prefix: str, base: Path) -> None:
        for name, node in jobs.items():
            qual = f"{prefix}{name}"
            kind = type(node).__name__.lower()
            if kind not in {"command", "parallel", "pipeline", "sweep"}:
                raise UserError(refusal(self.source, qual, str(getattr(node, "type", None) or kind)))
            # A sweep node's component is its `trial:` (reference-yaml-job-sweep: trial).
            component = node.trial if kind == "sweep" else node.component
            what = f"job {qual!r}"
            if isinstance(component, str):
                component = self._registered_component(component, what)
            node_base = Path(getattr(component, "base_path", None) or base)
            inputs: dict[str, Value] = {}
            declared = dict(component.inputs or {})
            for key, node_input in (node.inputs or {}).items():
                if key not in declared:
                    raise UserError(
                        f"{self.source}: {what} sets input {key!r}, which its component does not declare"
                    )
                inputs[key] = self._bind(
                    _input_data(node_input), scope_inputs, prefix, base, f"{what} input {key!r}"
                )
            self._apply_job_overrides(qual, declared, inputs)
            # defaults, optional inputs and required checks happen at resolve time (after aliases are known)
            for key, decl in declared.items():
                if _is_unset(inputs.get(key)) and getattr(decl, "default", None) is not None:
                    inputs[key] = decl.default
            if kind == "pipeline":
                self.flatten(dict(component.jobs), inputs, f"{qual}.", node_base)
                for out_name, node_output in (node.outputs or {}).items():
                    self._bind_output(qual, out_name, _input_data(node_output), prefix)
                continue
            outputs: dict[str, OutputSpec] = {}
            for out_name, decl in (component.outputs or {}).items():
                outputs[out_name] = OutputSpec(type=str(getattr(decl, "type", None) or "uri_folder"))
            for out_name, node_output in (node.outputs or {}).items():
                data = _input_data(node_output)
                if out_name not in outputs:
                    raise UserError(
                        f"{self.source}: {what} binds output {out_name!r}, which its component lacks"
                    )
                self._bind_output(qual, out_name, data, prefix)
                path = getattr(data, "path", None) if data is not None and not isinstance(data, str) else None
                if path:
                    outputs[out_name].target = resolve_location(
                        str(path), base, f"{what} output {out_name!r}"
                    )
            code = getattr(component, "code", None)
            if kind == "parallel":
                task = dict(component.task or {})
                code = task.get("code") or code
            code_dir = None
            if code is not None:
                if isinstance(code, str) and (code.startswith("azureml:") or "://" in code):
                    raise UserError(
                        f"{self.source}: {what} has remote code {code!r}; the local runner needs a folder"
                    )
                code_dir = Path(code) if Path(str(code)).is_absolute() else (node_base / str(code)).resolve()
                if not code_dir.exists():
                    raise UserError(f"{self.source}: {what}: code folder {code_dir} does not exist")
            env = {**(getattr(component, "environment_variables", None) or {})}
            env.update(getattr(node, "environment_variables", None) or {})
            parallel = None
            if kind == "parallel":
                parallel = {
                    "task": task,
                    "input_data": component.input_data,
                    "mini_batch_size": component.mini_batch_size,
                    "max_concurrency_per_instance": component.max_concurrency_per_instance or 1,
                    "error_threshold": component.error_threshold,
                    "mini_batch_error_threshold": component.mini_batch_error_threshold,
                    "retry_settings": dict(component.retry_settings or {}),
                }
                for attr in ("mini_batch_size", "max_concurrency_per_instance", "error_threshold"):
                    override = getattr(node, attr, None)
                    if override is not None:
                        parallel[attr] = self._node_literal(override, scope_inputs, f"{what} {attr}")
            environment = (
                task.get("environment") if kind == "parallel" else getattr(component, "environment", None)
            )
            limits = getattr(node, "limits", None) if kind in {"command", "sweep"} else None
            # A sweep's limits.timeout bounds the whole sweep; each trial has limits.trial_timeout.
            timeout = getattr(limits, "trial_timeout" if kind == "sweep" else "timeout", None)
            self.steps[qual] = StepPlan(
                name=qual,
                kind=kind,
                component=_component_label(component),
                source=Path(component._source_path) if getattr(component, "_source_path", None) else None,
                code_dir=code_dir,
                command=getattr(component, "command", None) if kind in {"command", "sweep"} else None,
                parallel=parallel,
                input_types={k: str(getattr(d, "type", "string")) for k, d in declared.items()},
                optional_inputs={k for k, d in declared.items() if getattr(d, "optional", False)},
                inputs=inputs,
                outputs=outputs,
                environment_variables={str(k): str(v) for k, v in env.items()},
                environment=environment,
                timeout=float(timeout) if timeout else None,
                sweep=_sweep_spec(node, f"{self.source.name}: {what}") if kind == "sweep" else None,
                distribution=_distribution(node, component),
                instance_count=int(
                    self._node_literal(
                        _instance_count(node, component), scope_inputs, f"{what} instance_count"
                    )
                ),
                compute=self._compute(node, scope_inputs, what),
                deterministic=getattr(component, "is_deterministic", True) is not False,
            )

    def _registered_component(self, ref: str, what: str) -> Any:
        """A registered component (azureml:<name>:<version> / @latest) from the local asset registry."""
        path = self.components(ref) if self.components else None
        if path is None:
            shown = ref if ref.startswith("azureml:") else f"azureml:{ref}"
            raise UserError(
                f"{self.source}: {what} uses the registered component {shown!r}, which the local asset registry "
                f"lacks; publish it (amlops components publish --target local) or give the component YAML file "
                f"(component: ./path/to/component.yml)"
            )
        return load_component_file(path)

    def _apply_job_overrides(self, qual: str, declared: dict[str, Any], inputs: dict[str, Value]) -> None:
        """`--set jobs.<job>.inputs.<name>=…` replaces whatever the YAML bound to that input."""
        for key, raw in self.job_overrides.pop(qual, {}).items():
            what = f"--set jobs.{qual}.inputs.{key}"
            if key not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise UserError(f"{self.source}: {what}: job {qual!r} has no input {key!r} (inputs: {known})")
            typ = str(getattr(declared[key], "type", "string"))
            location = resolve_location(raw, self.cwd, what, allow_asset=True)
            inputs[key] = PathValue(location, typ) if typ in PATH_TYPES else raw

    def _compute(self, node: Any, scope_inputs: dict[str, Value], what: str) -> str | None:
        compute = getattr(node, "compute", None)
        if not isinstance(compute, str):
            return None
        whole = _PARENT_INPUT.fullmatch(compute.strip())
        if whole:
            value = scope_inputs.get(whole.group(1))
            if value is None or isinstance(value, (OutputRef, PathValue)):
                raise UserError(
                    f"{self.source}: {what}: compute {compute} must bind a literal pipeline input"
                )
            return render_primitive(value)
        return compute

    def _node_literal(self, value: Any, scope_inputs: dict[str, Value], what: str) -> Any:
        """A node setting bound to a pipeline input (`max_concurrency_per_instance: ${{parent.inputs.n}}`), which
        azure-ai-ml accepts and Azure ML resolves at run time."""
        whole = _PARENT_INPUT.fullmatch(value.strip()) if isinstance(value, str) else None
        if whole is None:
            return value
        bound = scope_inputs.get(whole.group(1))
        if bound is None or isinstance(bound, (OutputRef, PathValue)):
            raise UserError(f"{self.source}: {what}: {value} must bind a literal pipeline input")
        return bound

    def _bind(self, data: Any, scope_inputs: dict[str, Value], prefix: str, base: Path, what: str) -> Value:
        if data is None:
            return None
        if isinstance(data, str):
            m = _PARENT_JOB_OUTPUT.match(data.strip())
            if m:
                return OutputRef(f"{prefix}{m.group(1)}", m.group(2))
            whole = _PARENT_INPUT.fullmatch(data.strip())
            if whole:
                return scope_inputs.get(whole.group(1))
            if _PARENT_INPUT.search(data):

                def sub(match: re.Match[str]) -> str:
                    value = scope_inputs.get(match.group(1))
                    if isinstance(value, (OutputRef, PathValue)) or value is None:
                        raise UserError(
                            f"{self.source}: {what}: {match.group(0)} must be a literal to embed in text"
                        )
                    return render_primitive(value)

                return _PARENT_INPUT.sub(sub, data)
            if "${{" in data:
                raise UserError(f"{self.source}: {what}: unsupported binding {data!r}")
            return data
        if isinstance(data, (int, float, bool)):
            return data
        if getattr(data, "path", None) is not None or (isinstance(data, dict) and "path" in data):
            return _path_of(data, base, f"{self.source}: {what}")
        default = getattr(data, "default", None)
        return default

    def _bind_output(self, qual: str, out_name: str, data: Any, prefix: str) -> None:
        if not isinstance(data, str):
            return
        m = _PARENT_OUTPUT.match(data.strip())
        if not m:
            return
        ref = OutputRef(qual, out_name)
        if prefix:
            self.aliases[OutputRef(prefix[:-1], m.group(1))] = ref
        else:
            self.top_outputs[m.group(1)] = ref

    def follow(self, ref: OutputRef) -> OutputRef:
        seen = set()
        while ref in self.aliases:
            if ref in seen:
                raise UserError(f"{self.source}: output binding loop at {ref}")
            seen.add(ref)
            ref = self.aliases[ref]
        return ref


def _component_label(component: Any) -> str:
    """Components loaded from files inside a job are named `azureml_anonymous`; the file name says more."""
    name = str(getattr(component, "name", None) or "")
    source = getattr(component, "_source_path", None)
    if not name or name == "azureml_anonymous":
        return Path(source).stem if source else "inline"
    return name


def render_primitive(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def coerce_primitive(value: Any, typ: str, what: str) -> Any:
    """Check a literal against its declared type (a `--set` value arrives as text)."""
    if typ not in PRIMITIVE_TYPES or value is None or isinstance(value, (OutputRef, PathValue)):
        return value
    try:
        if typ == "integer":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if typ == "number":
            return float(value) if isinstance(value, str) else value
        if typ == "boolean":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"true", "1", "yes"}:
                return True
            if text in {"false", "0", "no"}:
                return False
            raise ValueError
    except (TypeError, ValueError):
        raise UserError(f"{what}: expected {typ}, got {value!r}") from None
    return str(value)


def build_plan(
    path: Path,
    overrides: dict[str, str] | RunOverrides | None = None,
    cwd: Path | None = None,
    components: Callable[[str], Path | None] | None = None,
) -> Plan:
    """Parse `path` with azure-ai-ml and flatten it; `overrides` are `--set` values (a dict: pipeline inputs only;
    paths relative to cwd). Jobs the runner cannot execute are refused first, before anything runs."""
    if not path.is_file():
        raise UserError(f"{path}: pipeline file not found")
    path = path.resolve()
    sets = overrides if isinstance(overrides, RunOverrides) else RunOverrides(inputs=dict(overrides or {}))
    refuse_unrunnable(path)
    job = load_pipeline_job(path)
    base = Path(job.base_path)
    cwd = cwd or Path.cwd()
    top_inputs: dict[str, Value] = {}
    for key, pin in (job.inputs or {}).items():
        data = _input_data(pin)
        if isinstance(data, (int, float, bool, str)) or data is None:
            top_inputs[key] = data
        elif getattr(data, "path", None) is not None:
            top_inputs[key] = _path_of(data, base, f"{path}: pipeline input {key!r}")
        else:
            top_inputs[key] = getattr(data, "default", None)
    for key, raw in sets.inputs.items():
        if key not in top_inputs:
            raise UserError(_no_such_input(path, job, key, top_inputs))
        current = top_inputs[key]
        declared = job.inputs[key]._data if hasattr(job.inputs[key], "_data") else None
        typ = current.type if isinstance(current, PathValue) else getattr(declared, "type", None)
        if typ in PATH_TYPES:
            top_inputs[key] = PathValue(
                resolve_location(raw, cwd, f"--set inputs.{key}", allow_asset=True), str(typ)
            )
        else:
            top_inputs[key] = raw

    flat = _Flattener(path, sets.job_inputs, cwd, components)
    flat.flatten(dict(job.jobs), top_inputs, "", base)
    if flat.job_overrides:
        unknown = next(iter(flat.job_overrides))
        raise UserError(
            f"{path}: --set jobs.{unknown}.inputs.…: the pipeline has no job {unknown!r} "
            f"(jobs: {', '.join(flat.steps) or 'none'})"
        )

    steps = flat.steps
    for step in steps.values():
        for key, value in list(step.inputs.items()):
            what = f"{path}: job {step.name!r} input {key!r}"
            if isinstance(value, OutputRef):
                target = flat.follow(value)
                if target.job not in steps:
                    raise UserError(f"{what}: binds to {value}, but there is no such job")
                producer = steps[target.job]
                has_default = producer.kind in {"command", "sweep"}  # a sweep's is its best trial's
                implicit = target.output == DEFAULT_OUTPUT and has_default
                if target.output not in producer.outputs and not implicit:
                    hint = ""
                    if target.output == ARTIFACTS_ALIAS and has_default:
                        hint = (
                            f"; a job's default output (its ./outputs, ./logs and user_logs/) is named "
                            f"{DEFAULT_OUTPUT!r}: bind ${{{{parent.jobs.{target.job}.outputs.{DEFAULT_OUTPUT}}}}} and "
                            "read <input>/outputs/... ('artifacts' names it only in azureml://jobs/<job>/outputs/"
                            "artifacts/paths/ URIs)"
                        )
                    raise UserError(f"{what}: job {target.job!r} has no output {target.output!r}{hint}")
                step.inputs[key] = target
            else:
                step.inputs[key] = coerce_primitive(value, step.input_types.get(key, "string"), what)
        searched = set((step.sweep or {}).get("search_space") or {})
        for key, typ in step.input_types.items():
            if _is_unset(step.inputs.get(key)) and key not in step.optional_inputs and key not in searched:
                raise UserError(
                    f"{path}: job {step.name!r} input {key!r} ({typ}) is required but has no value; "
                    f"bind it in the YAML or pass it with --set jobs.{step.name}.inputs.{key}=..."
                )
    outputs = {k: flat.follow(v) for k, v in flat.top_outputs.items()}
    for key, pout in (job.outputs or {}).items():
        out_data = _input_data(pout)
        sink = (
            getattr(out_data, "path", None)
            if out_data is not None and not isinstance(out_data, str)
            else None
        )
        if sink and key in outputs:
            ref = outputs[key]
            steps[ref.job].outputs[ref.output].target = resolve_location(str(sink), base, f"output {key!r}")
    for key, raw in sets.outputs.items():
        if key not in outputs:
            known = ", ".join(sorted(outputs)) or "none"
            raise UserError(
                f"{path}: --set outputs.{key}: the pipeline has no output {key!r} bound to a step "
                f"(outputs: {known})"
            )
        ref = outputs[key]
        steps[ref.job].outputs[ref.output].target = resolve_location(raw, cwd, f"--set outputs.{key}")

    graph = {name: step.upstream() for name, step in steps.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise UserError(f"{path}: the jobs form a cycle: {' -> '.join(exc.args[1])}") from None
    # Stable: keep YAML order among steps that are ready at the same time.
    yaml_order = {name: i for i, name in enumerate(steps)}
    ordered: list[str] = []
    done: set[str] = set()
    pending = set(order)
    while pending:
        ready = sorted((n for n in pending if graph[n] <= done), key=yaml_order.__getitem__)
        ordered.append(ready[0])
        done.add(ready[0])
        pending.remove(ready[0])
    settings = getattr(job, "settings", None)
    default_compute = getattr(settings, "default_compute", None)
    default_datastore = getattr(settings, "default_datastore", None)
    for hook in ("on_init", "on_finalize"):
        if getattr(settings, hook, None):
            raise UserError(
                f"{path}: settings.{hook} (a setup/cleanup job) is not run by the local runner; remove it for a "
                f"local run, or run this pipeline with --target azure"
            )
    return Plan(
        name=str(job.display_name or job.name or path.stem),
        experiment=job.experiment_name,
        source=path,
        steps=[steps[n] for n in ordered],
        outputs=outputs,
        inputs=top_inputs,
        default_compute=default_compute,
        default_datastore=str(default_datastore).removeprefix("azureml:") if default_datastore else None,
        continue_on_step_failure=bool(getattr(settings, "continue_on_step_failure", None)),
        force_rerun=bool(getattr(settings, "force_rerun", None)),
    )


def _no_such_input(path: Path, job: Any, key: str, top_inputs: dict[str, Value]) -> str:
    """`--set inputs.<key>` names no pipeline input: point at the form that applies (a step input, an output)."""
    known = ", ".join(sorted(top_inputs)) or "none"
    owners = []
    for name, node in (job.jobs or {}).items():
        component = getattr(node, "trial", None) or getattr(node, "component", None)
        if key in dict(getattr(component, "inputs", None) or {}):
            owners.append(name)
    hint = ""
    if owners:
        hint = f"; to set job {owners[0]!r}'s own input use --set jobs.{owners[0]}.inputs.{key}=…"
    elif key in dict(job.outputs or {}):
        hint = f"; {key!r} is a pipeline output: use --set outputs.{key}=<path>"
    return f"{path}: --set inputs.{key}: the pipeline has no input {key!r} (inputs: {known}){hint}"


def _sweep_spec(node: Any, what: str) -> dict[str, Any]:
    """The sweep node as plain data (azure-ai-ml entities/_job/sweep: search_space classes, Objective,
    SweepJobLimits, early termination policies); an early termination policy that cannot apply is refused here,
    before any step runs."""

    space = {}
    for name, dist in (node.search_space or {}).items():
        space[name] = {k: v for k, v in vars(dist).items() if not k.startswith("_")}
    sampling = node.sampling_algorithm
    if not isinstance(sampling, str):
        sampling = (
            {k: v for k, v in vars(sampling).items() if not k.startswith("_")} if sampling else "random"
        )
    objective = node.objective
    limits = node.limits
    early = node.early_termination
    early_spec = (
        {k: v for k, v in vars(early).items() if not k.startswith("_")} if early is not None else None
    )
    parse_policy(early_spec, what)
    return {
        "search_space": space,
        "sampling_algorithm": sampling,
        "goal": str(getattr(objective, "goal", "") or "").lower(),
        "primary_metric": getattr(objective, "primary_metric", None),
        "max_total_trials": getattr(limits, "max_total_trials", None),
        "max_concurrent_trials": getattr(limits, "max_concurrent_trials", None),
        "timeout": getattr(limits, "timeout", None),
        "early_termination": early_spec,
    }


def _distribution(node: Any, component: Any) -> dict[str, Any] | None:
    dist = getattr(node, "distribution", None) or getattr(component, "distribution", None)
    if dist is None:
        return None
    if isinstance(dist, dict):
        return dict(dist)
    return {k: v for k, v in vars(dist).items() if not k.startswith("_")}


def _instance_count(node: Any, component: Any) -> Any:
    """The node's (else the component's) resources.instance_count: an int, or a ${{parent.inputs.x}} binding."""
    for holder in (node, component):
        resources = getattr(holder, "resources", None)
        count = (
            resources.get("instance_count")
            if isinstance(resources, dict)
            else getattr(resources, "instance_count", None)
        )
        if count:
            return count if isinstance(count, str) and "${{" in count else int(count)  # type: ignore[no-any-return]
    return 1
