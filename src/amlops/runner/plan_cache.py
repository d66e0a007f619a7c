"""A parsed-plan cache for the local runner: `amlops run` skips azure-ai-ml when nothing it parsed changed.

Parsing a pipeline means `import azure.ai.ml` (1-2.5 s) plus `load_job` (~0.4 s), for a plan that is plain data.
The plan is kept under `<state_dir>/plans/`, keyed by the pipeline's path, the names of the `--set` inputs and
the runner's version (amlops, Python, azure-ai-ml and the source of the plan builder), and it is served only
when the content digest of every file the parse read is unchanged: the pipeline, its components, nested
pipeline components, conda files (they are recorded while `load_job` runs, by an audit hook on `open`). A
changed file, a changed literal `--set` value or a new runner version re-parses; there is no time-based
expiry and no way to serve a plan across a change.

Path inputs given with `--set` do not re-parse: the plan passes a path input's value through unchanged (the
same object from the pipeline input to every step that binds it), so the cached plan keeps which values came
from which input, and a new path is resolved exactly as `build_plan` resolves it (`resolve_location` against
the working directory).

The cache holds pickles written by this user's own runs in the project's state folder (as MLflow's SQLite
store and the venv cache do); an unreadable or foreign entry is a miss. Set AMLOPS_PLAN_CACHE=0 to turn it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import pickletools
import sys
import threading
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
    plan = _load(entry_file, overrides, cwd)
    if plan is not None:
        return plan
    files, plan = _parse_recording_files(path, overrides, cwd, components)
    _store(entry_file, path, overrides, files, plan)
    return plan


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


def _parse_recording_files(
    path: Path,
    overrides: dict[str, str],
    cwd: Path,
    components: Callable[[str], Path | None] | None = None,
) -> tuple[dict[str, str], Plan]:
    """build_plan, and the digest of every project file it opened (library files are covered by the
    runner version)."""
    global _hook_installed
    if not _hook_installed:  # an audit hook cannot be removed: it records only while `_recording` is set
        sys.addaudithook(_audit)
        _hook_installed = True
    _recording.files = set()
    try:
        plan = build_plan(path, overrides, cwd, components)
        opened = {Path(p).resolve() for p in _recording.files if isinstance(p, str)}
    finally:
        _recording.files = None
    # Components a library may have kept from an earlier parse in this process were not opened again.
    opened |= {path, *(s.source.resolve() for s in plan.steps if s.source is not None)}
    libraries = {Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    files: dict[str, str] = {}
    for f in sorted(opened):
        if any(f.is_relative_to(lib) for lib in libraries) or not f.is_file():
            continue
        digest = _digest(f)
        if digest is not None:
            files[str(f)] = digest
    return files, plan


# ----------------------------------------------------------------------------------------------- entries
def _store(
    entry_file: Path, path: Path, overrides: dict[str, str], files: dict[str, str], plan: Plan
) -> None:
    path_keys = sorted(k for k in overrides if isinstance(plan.inputs.get(k), PathValue))
    entry = {
        "format": CACHE_FORMAT,
        "pipeline": str(path),
        "files": files,
        "literals": {k: v for k, v in overrides.items() if k not in path_keys},
        "path_keys": path_keys,
        "plan": _portable(plan),
    }
    data = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
    if _needs_sdk(data):  # something in the plan would import azure-ai-ml to load: not worth caching
        return
    entry_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry_file.with_name(f".{entry_file.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, entry_file)  # atomic: a concurrent run reads the old entry or the new one


def _load(entry_file: Path, overrides: dict[str, str], cwd: Path) -> Plan | None:
    try:
        entry = pickle.loads(entry_file.read_bytes())
    except FileNotFoundError:
        return None
    except Exception:  # a truncated or foreign file is a miss, rebuilt below
        return None
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT:
        return None
    if any(overrides.get(k) != v for k, v in entry["literals"].items()):
        return None
    if any(_digest(Path(f)) != digest for f, digest in entry["files"].items()):
        return None
    plan: Plan = entry["plan"]
    if any(s.code_dir is not None and not s.code_dir.exists() for s in plan.steps):
        return None  # build_plan would refuse a missing code folder: let it say so
    return _with_paths(plan, {k: overrides[k] for k in entry["path_keys"]}, cwd)


def _with_paths(plan: Plan, raw: dict[str, str], cwd: Path) -> Plan:
    """The cached plan with its `--set` path inputs replaced, resolved as build_plan resolves them."""
    swap: dict[int, PathValue] = {}
    for key, value in raw.items():
        old = plan.inputs[key]
        assert isinstance(old, PathValue)
        new = PathValue(resolve_location(value, cwd, f"--set inputs.{key}"), old.type)
        swap[id(old)] = new
        plan.inputs[key] = new
    if swap:
        # Unpickling kept the sharing: a step input bound to a pipeline input is that very object.
        for step in plan.steps:
            step.inputs = {k: swap.get(id(v), v) for k, v in step.inputs.items()}
    return plan


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
