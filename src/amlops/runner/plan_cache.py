"""A parsed-plan cache for the local runner: `amlops run` skips azure-ai-ml when nothing it parsed changed.

Parsing a pipeline means `import azure.ai.ml` (1-2.5 s) plus `load_job` (~0.4 s), for a plan that is plain data.
The plan is kept under `<state_dir>/plans/`, keyed by the pipeline's path, the names of the `--set` inputs and
the runner's version (amlops, Python, azure-ai-ml and the source of the plan builder), and it is served only
when the content digest of every file the parse read is unchanged: the pipeline, its components, nested
pipeline components, conda files (they are recorded while `load_job` runs, by an audit hook on `open`), and
while every registered component reference (`azureml:name@latest`) still names the file it named: publishing a
new version adds a file no parse opened, so the references are resolved again on every hit. A changed file, a
changed literal `--set` value or a new runner version re-parses; there is no time-based expiry and no way to
serve a plan across a change.

Path inputs given with `--set` do not re-parse: the plan passes a path input's value through unchanged (the
same object from the pipeline input to every step that binds it), so the cached plan keeps which values came
from which input, and a new path is resolved exactly as `build_plan` resolves it (`resolve_location` against
the working directory, a data asset reference kept for the local asset registry).

Nor do new values of text inputs (a pipeline input whose YAML value is a string: `data_uri`, `model_version`),
which change with every training data and every champion. The values never reach azure-ai-ml (`build_plan` binds
them after `load_job`), and a text value is bound as it is or pasted into text. So on a parse the plan is built a
second time with a marker for each such value; the entry keeps that plan, and a hit pastes the new values where
the markers are. It is kept only when pasting the parsed values back gives exactly the plan parsed with them, no
marker was altered on the way, and the marked parse succeeded (a text input that a step reads as a number fails
it, and stays a literal that re-parses). An empty new value re-parses (it may mean "unset").

The cache holds pickles written by this user's own runs in the project's state folder (as MLflow's SQLite
store and the venv cache do); an unreadable or foreign entry is a miss. A run killed while writing leaves only
its own temporary file: the entry is replaced whole. Set AMLOPS_PLAN_CACHE=0 to turn it off.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import pickletools
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from amlops.runner.plan import PathValue, Plan, build_plan, resolve_location

CACHE_FORMAT = 1
# The modules whose code shapes a plan: a change to any of them is a new runner version.
_RUNNER_SOURCES = (
    "plan.py",
    "plan_cache.py",
    "preflight.py",
    "assets.py",
    "datastores.py",
    "overrides.py",
    "early_termination.py",
)
_recording = threading.local()
_hook_installed = False


def cached_build_plan(
    path: Path,
    overrides: dict[str, str] | None,
    cache_dir: Path,
    cwd: Path | None = None,
    components: Callable[[str], Path | None] | None = None,
) -> Plan:
    """`build_plan(path, overrides, cwd, components)`, from the cache when the files it parsed are unchanged
    (registered components resolved through `components` are files the parse reads, so they are tracked too)."""
    if os.environ.get("AMLOPS_PLAN_CACHE", "1") == "0" or not path.is_file():
        return build_plan(path, overrides, cwd, components)
    path = path.resolve()
    overrides = dict(overrides or {})
    cwd = cwd or Path.cwd()
    entry_file = cache_dir / f"{_entry_key(path, overrides)}.pickle"
    plan = _load(entry_file, overrides, cwd, components)
    if plan is not None:
        return plan
    resolved: dict[str, str | None] = {}
    recording = _recording_components(components, resolved)
    files, links, plan = _parse_recording_files(path, overrides, cwd, recording)
    markers, template = _text_template(path, overrides, cwd, recording, plan)
    _store(entry_file, path, overrides, files, template, markers, resolved, links)
    return plan


def _recording_components(
    components: Callable[[str], Path | None] | None, resolved: dict[str, str | None]
) -> Callable[[str], Path | None] | None:
    """`components`, noting which file each registered reference named (checked again on a hit)."""
    if components is None:
        return None
    resolve = components

    def recording(ref: str) -> Path | None:
        found = resolve(ref)
        resolved[ref] = None if found is None else str(found)
        return found

    return recording


def _same_components(
    resolved: dict[str, str | None], components: Callable[[str], Path | None] | None
) -> bool:
    """Every registered reference the parse resolved names the same file now (`@latest` moves on a publish)."""
    if not resolved:
        return True
    if components is None:
        return False
    for ref, then in resolved.items():
        try:
            now = components(ref)
        except Exception:  # e.g. the published file is gone: the parse says so
            return False
        if (None if now is None else str(now)) != then:
            return False
    return True


# ----------------------------------------------------------------------------------------------- keys
def runner_version() -> str:
    """What must match for a cached plan to be valid, besides the parsed files."""
    from importlib.metadata import PackageNotFoundError, version

    from amlops import __version__

    try:
        sdk = version("azure-ai-ml")
    except PackageNotFoundError:
        sdk = "none"
    here = Path(__file__).parent
    sources = hashlib.sha256(b"".join((here / name).read_bytes() for name in _RUNNER_SOURCES)).hexdigest()
    return f"{CACHE_FORMAT}|amlops {__version__}|py {sys.version_info[:2]}|azure-ai-ml {sdk}|{sources}"


def _entry_key(path: Path, overrides: dict[str, str]) -> str:
    text = "\n".join([runner_version(), str(path), *sorted(overrides)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# ----------------------------------------------------------------------------------------------- parse
def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open":  # the hook stays for the life of the process: keep the common case to one compare
        return
    files = getattr(_recording, "files", None)
    if files is not None and isinstance(args[0], (str, os.PathLike)):
        files.add(os.fspath(args[0]))


def _recording_realpath(filename: Any, *args: Any, **kwargs: Any) -> Any:
    """os.path.realpath (what `Path.resolve` calls: Lib/pathlib.py `resolve`), noting what each path resolved to
    while a parse records."""
    result = _realpath(filename, *args, **kwargs)
    links = getattr(_recording, "links", None)
    if links is not None and isinstance(filename, (str, os.PathLike)) and isinstance(result, str):
        given = os.path.abspath(os.fspath(filename))
        if isinstance(given, str):
            links[given] = result
    return result


_realpath = os.path.realpath


def _parse_recording_files(
    path: Path,
    overrides: dict[str, str],
    cwd: Path,
    components: Callable[[str], Path | None] | None = None,
) -> tuple[dict[str, str], dict[str, str], Plan]:
    """build_plan, the digest of every project file it opened (library files are covered by the runner
    version), and what every project path it resolved resolved to. A plan holds resolved paths
    (`resolve_location`, a step's code folder): a symlink retargeted later (`data/current -> week2`) changes
    what a parse gives without changing any file it read."""
    global _hook_installed
    if not _hook_installed:  # an audit hook cannot be removed: it records only while `_recording` is set
        sys.addaudithook(_audit)
        _hook_installed = True
    _recording.files = set()
    _recording.links = {}
    os.path.realpath = _recording_realpath
    try:
        plan = build_plan(path, overrides, cwd, components)
        opened = {Path(p).resolve() for p in _recording.files if isinstance(p, str)}
        # Components a library may have kept from an earlier parse in this process were not opened again.
        opened |= {path, *(s.source.resolve() for s in plan.steps if s.source is not None)}
        links: dict[str, str] = _recording.links
    finally:
        os.path.realpath = _realpath
        _recording.files = None
        _recording.links = None
    libraries = {Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    files: dict[str, str] = {}
    for f in sorted(opened):
        if any(f.is_relative_to(lib) for lib in libraries) or not f.is_file():
            continue
        digest = _digest(f)
        if digest is not None:
            files[str(f)] = digest
    project_links = {
        given: real
        for given, real in sorted(links.items())
        if not any(Path(given).is_relative_to(lib) or Path(real).is_relative_to(lib) for lib in libraries)
    }
    return files, project_links, plan


# ----------------------------------------------------------------------------------------------- entries
def _store(
    entry_file: Path,
    path: Path,
    overrides: dict[str, str],
    files: dict[str, str],
    plan: Plan,
    markers: dict[str, str],
    resolved: dict[str, str | None] | None = None,
    links: dict[str, str] | None = None,
) -> None:
    path_keys = sorted(k for k in overrides if isinstance(plan.inputs.get(k), PathValue))
    entry = {
        "format": CACHE_FORMAT,
        "pipeline": str(path),
        "files": files,
        "literals": {k: v for k, v in overrides.items() if k not in path_keys and k not in markers},
        "path_keys": path_keys,
        "markers": markers,
        "components": dict(resolved or {}),
        "links": dict(links or {}),
        "plan": _portable(plan),
    }
    data = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    if _needs_sdk(data):  # something in the plan would import azure-ai-ml to load: not worth caching
        return
    entry_file.parent.mkdir(parents=True, exist_ok=True)
    # Unique per writer, not per process: two threads writing one entry must not replace each other's file.
    tmp = entry_file.with_name(f".{entry_file.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, entry_file)  # atomic: a concurrent run reads the old entry or the new one


def _load(
    entry_file: Path,
    overrides: dict[str, str],
    cwd: Path,
    components: Callable[[str], Path | None] | None = None,
) -> Plan | None:
    try:
        entry = pickle.loads(entry_file.read_bytes())
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file is a miss, rebuilt below
        return None
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
        return None
    try:
        plan = _served(entry, overrides, components)
    except Exception:  # an entry of another shape (a foreign or hand-made file): a miss, not a crash
        return None
    if plan is None:
        return None
    # Outside the try: a path a parse would refuse is refused here, with the parse's message.
    return _with_paths(plan, {k: overrides[k] for k in entry["path_keys"]}, cwd)


def _served(
    entry: dict[str, Any], overrides: dict[str, str], components: Callable[[str], Path | None] | None
) -> Plan | None:
    """The entry's plan with the text values pasted in, or None when it is not valid for this call."""
    if any(overrides.get(k) != v for k, v in entry["literals"].items()):
        return None
    markers: dict[str, str] = entry.get("markers", {})
    if any(not overrides.get(k) for k in markers):
        return None
    if any(k not in overrides for k in entry["path_keys"]):
        return None
    if any(_digest(Path(f)) != digest for f, digest in entry["files"].items()):
        return None
    if not _same_components(entry.get("components", {}), components):
        return None
    if any(os.path.realpath(given) != real for given, real in entry.get("links", {}).items()):
        return None
    plan: Plan = _pasted(entry["plan"], {marker: overrides[k] for k, marker in markers.items()})
    if any(s.code_dir is not None and not s.code_dir.exists() for s in plan.steps):
        return None  # build_plan would refuse a missing code folder: let it say so
    if not all(isinstance(plan.inputs.get(k), PathValue) for k in entry["path_keys"]):
        return None
    return plan


def _with_paths(plan: Plan, raw: dict[str, str], cwd: Path) -> Plan:
    """The cached plan with its `--set` path inputs replaced, resolved as build_plan resolves them."""
    swap: dict[int, PathValue] = {}
    for key, value in raw.items():
        old = plan.inputs[key]
        assert isinstance(old, PathValue)
        # allow_asset as build_plan's `--set inputs.<path input>` (`amlops train --data azureml:demand:1`): the
        # local asset registry resolves the reference when the run starts (runner/assets.py resolve_plan_assets).
        new = PathValue(resolve_location(value, cwd, f"--set inputs.{key}", allow_asset=True), old.type)
        swap[id(old)] = new
        plan.inputs[key] = new
    if swap:
        # Unpickling kept the sharing: a step input bound to a pipeline input is that very object.
        for step in plan.steps:
            step.inputs = {k: swap.get(id(v), v) for k, v in step.inputs.items()}
    return plan


# ----------------------------------------------------------------------------------------------- text inputs
def _text_template(
    path: Path,
    overrides: dict[str, str],
    cwd: Path,
    components: Callable[[str], Path | None] | None,
    plan: Plan,
) -> tuple[dict[str, str], Plan]:
    """({input: marker}, the plan parsed with the markers) for the `--set` text inputs whose new values can be
    pasted into a cached plan; ({}, plan) when there are none or the check fails (see the module docstring)."""
    texts = [k for k in sorted(overrides) if overrides[k] and k in _text_inputs(path)]
    if not texts:
        return {}, plan
    token = uuid.uuid4().hex
    # The check runs with one real value, so the marker is what shows a parse that alters text: spaces at both
    # ends, both cases, both quotes, a backslash, a newline, a tab and a binding, so that quoting, escaping,
    # stripping, changing case or expanding would alter it and be caught.
    markers = {k: f" Amlops-Text\t{k} '{token}' \"{i}\" \\ ${{{{x}}}}\n " for i, k in enumerate(texts)}
    try:
        template = build_plan(path, {**overrides, **markers}, cwd, components)
    except Exception:  # e.g. a text input a step reads as a number: it stays a literal that re-parses
        return {}, plan
    try:
        pasted = _portable(_pasted(template, {marker: overrides[k] for k, marker in markers.items()}))
        same = token not in repr(pasted) and _canonical(pasted) == _canonical(_portable(plan))
    except Exception:  # a part of the plan that cannot be copied: keep keying by value
        same = False
    return (markers, template) if same else ({}, plan)


def _canonical(obj: Any) -> bytes:
    """The plan as bytes that two equal plans share: pickle's, except that a set is pickled in its iteration
    order, which depends on the order its items went in and on the process's string hash seed
    (PYTHONHASHSEED), so a pasted copy of `optional_inputs` may iterate otherwise than the parsed set."""
    return pickle.dumps(_sorted_sets(obj), protocol=pickle.HIGHEST_PROTOCOL)


def _sorted_sets(obj: Any, memo: dict[int, Any] | None = None) -> Any:
    """`obj` with every set as a tagged, sorted tuple; the rest keeps its type (1, 1.0 and True stay apart)."""
    if obj is None or isinstance(obj, (str, bytes, bool, int, float, Path)):
        return obj
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    out: Any = obj
    if isinstance(obj, (set, frozenset)):
        items = [_sorted_sets(v, memo) for v in obj]
        out = (f"<{type(obj).__name__}>", *sorted(items, key=lambda v: pickle.dumps(v)))
    elif isinstance(obj, dict):
        out = {_sorted_sets(k, memo): _sorted_sets(v, memo) for k, v in obj.items()}
        # A pasted copy is a plain dict: a subclass in the parse must not compare equal to it.
        if type(obj) is not dict:
            out = (f"<{type(obj).__module__}.{type(obj).__qualname__}>", out)
    elif isinstance(obj, (list, tuple)):
        out = type(obj)(_sorted_sets(v, memo) for v in obj) if type(obj) in (list, tuple) else obj
    elif isinstance(obj, SimpleNamespace):
        out = ("<namespace>", _sorted_sets(vars(obj), memo))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = [(f.name, _sorted_sets(getattr(obj, f.name), memo)) for f in dataclasses.fields(obj)]
        out = (f"<{type(obj).__qualname__}>", *fields)
    memo[id(obj)] = out
    return out


def _text_inputs(path: Path) -> set[str]:
    """The pipeline's inputs whose YAML value is text (`data_uri: ""`) or declared `type: string`."""
    import yaml

    try:
        inputs = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("inputs") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return set()
    return {
        k
        for k, v in inputs.items()
        if isinstance(v, str) or (isinstance(v, dict) and str(v.get("type", "")).lower() == "string")
    }


def _pasted(obj: Any, values: dict[str, str], memo: dict[int, Any] | None = None) -> Any:
    """A copy of a plan (or any part of one) with each marker replaced by its value wherever text holds it. An
    object held in several places stays one object (a path input and the step inputs bound to it: _with_paths)."""
    if isinstance(obj, str):
        # Bound whole: the value itself, one object wherever the input is bound, as a parse gives it.
        if obj in values:
            return values[obj]
        for marker, value in values.items():
            if marker in obj:
                obj = obj.replace(marker, value)
        return obj
    if not values or obj is None or isinstance(obj, (bool, int, float, Path)):
        return obj
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    copy: Any = obj
    if isinstance(obj, dict):
        copy = {_pasted(k, values, memo): _pasted(v, values, memo) for k, v in obj.items()}
    elif isinstance(obj, (list, tuple, set, frozenset)):
        copy = type(obj)(_pasted(v, values, memo) for v in obj)
    elif isinstance(obj, SimpleNamespace):
        copy = SimpleNamespace(**_pasted(vars(obj), values, memo))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: _pasted(getattr(obj, f.name), values, memo) for f in dataclasses.fields(obj)}
        copy = replace(obj, **fields)
    memo[id(obj)] = copy
    return copy


# ----------------------------------------------------------------------------------------------- portability
def _portable(plan: Plan) -> Plan:
    """The plan with azure-ai-ml objects (a step's environment) replaced by plain data with the attributes
    `runner.environment.spec_of` reads, so loading it imports nothing from the SDK."""
    steps = []
    for step in plan.steps:
        parallel = step.parallel
        if parallel is not None and "task" in parallel:
            task = dict(parallel["task"])
            if "environment" in task:
                task["environment"] = _plain_environment(task["environment"])
            parallel = {**parallel, "task": task}
        steps.append(replace(step, environment=_plain_environment(step.environment), parallel=parallel))
    return replace(plan, steps=steps)


def _plain_environment(env: Any) -> Any:
    if env is None or isinstance(env, (str, SimpleNamespace)):
        return env
    build = getattr(env, "build", None)
    return SimpleNamespace(
        name=getattr(env, "name", None),
        image=getattr(env, "image", None),
        conda_file=getattr(env, "conda_file", None),
        base_path=str(getattr(env, "base_path", None) or "") or None,
        build=SimpleNamespace(path=getattr(build, "path", "")) if build is not None else None,
    )


def _needs_sdk(data: bytes) -> bool:
    """True when unpickling would import a module of the Azure SDK (a class left in the plan)."""
    try:
        return any(
            isinstance(arg, str) and (arg == "azure" or arg.startswith("azure."))
            for _op, arg, _pos in pickletools.genops(data)
        )
    except Exception:
        return True
