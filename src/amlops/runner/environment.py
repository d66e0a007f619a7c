"""Build a step's Azure ML environment locally (`amlops run ... --isolated`): a venv with exactly the pip packages
the component's `environment:` lists, so a package missing from the AML environment fails here first.

The venv is cached under `<state_dir>/envs/<name>-<digest>` by the digest of what it installs (Python version and
pip lines), built with uv into a temporary folder and renamed into place (a half-built venv is never used), under
a file lock (two runs building the same environment wait for one build). A cached venv costs a directory check.

What Azure ML builds (Microsoft Learn "Manage Azure Machine Learning environments with the CLI (v2)",
how-to-manage-environments-v2): an environment is a Docker image plus, optionally, a conda specification whose pip
section is installed into it. Only the pip section is rebuilt here: the conda channel packages besides python and
pip, and the image's own system libraries, are not (they are reported in the step log).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.console import UserError

DEFAULT_PYTHON = "3.11"
_BUILD_TIMEOUT_S = 1800
# Part of the digest: a change to how venvs are built invalidates the cached ones.
_BUILD_RECIPE = "uv-venv-relocatable+compile-bytecode"


@dataclass(frozen=True)
class EnvironmentSpec:
    """The pip-installable part of a component's environment."""

    name: str
    python: str
    requirements: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        text = "\n".join([_BUILD_RECIPE, f"python={self.python}", *self.requirements])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Interpreter:
    """Where a step's `python` comes from: a built venv, or the project's own (with the reason)."""

    python: Path
    venv: Path | None
    note: str | None = None
    built_seconds: float | None = None


def _find_uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    # make setup installs uv into tools/.venv-uv when it is not on PATH
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "tools" / ".venv-uv" / "bin" / "uv"
        if candidate.exists():
            return str(candidate)
    raise UserError("--isolated needs uv (run `make setup`, or install uv)")


def spec_of(environment: Any) -> EnvironmentSpec | str:
    """The environment's pip part, or a one-line reason it runs in the project venv (a registry or curated
    environment, or an image without a conda file)."""
    if environment is None:
        return "the component has no environment"
    if isinstance(environment, str):
        return f"environment {environment!r} is a workspace/registry asset, not a local definition"
    conda = getattr(environment, "conda_file", None)
    name = str(getattr(environment, "name", None) or "environment")
    if not conda:
        image = getattr(environment, "image", None) or getattr(
            getattr(environment, "build", None), "path", ""
        )
        return f"environment {name!r} is an image ({image}) without a conda file: nothing to build locally"
    if not isinstance(conda, dict):
        return f"environment {name!r}: conda file is not a mapping"
    base = Path(getattr(environment, "base_path", None) or ".")
    python, pip, conda_only = _conda_parts(conda)
    requirements = tuple(_expand(line, base) for line in pip)
    flat = tuple(req for chunk in requirements for req in chunk)
    conda_name = str(conda.get("name") or name)
    notes = tuple(f"conda package {pkg!r} is not installed locally (conda channel)" for pkg in conda_only)
    return EnvironmentSpec(conda_name, python, flat, notes)


def _conda_parts(conda: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    python = DEFAULT_PYTHON
    pip: list[str] = []
    other: list[str] = []
    for dep in conda.get("dependencies") or []:
        if isinstance(dep, dict):
            pip.extend(str(x) for x in dep.get("pip") or [])
            continue
        text = str(dep).strip()
        m = re.fullmatch(r"python\s*[=<>]=?\s*([\d.]+)\*?", text)
        if m:
            python = ".".join(m.group(1).split(".")[:2])
        elif text != "pip" and not text.startswith("pip="):
            other.append(text)
    return python, pip, other


def _expand(line: str, base: Path) -> tuple[str, ...]:
    """A pip line; `-r file` is read relative to the environment's folder (a pip requirements file)."""
    text = line.strip()
    m = re.match(r"^(-r|--requirement)\s+(.+)$", text)
    if not m:
        return (text,)
    path = (base / m.group(2).strip()).resolve()
    if not path.is_file():
        raise UserError(f"environment requirements file {path} not found")
    lines = [ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return tuple(req for ln in lines if ln for req in _expand(ln, path.parent))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(spec: EnvironmentSpec, cache_dir: Path, log: Any = None) -> tuple[Path, float | None]:
    """The venv for `spec` (built when missing) and the seconds the build took (None: cached)."""
    import time

    target = cache_dir / f"{_slug(spec.name)}-{spec.digest}"
    if _venv_python(target).exists():
        return target, None
    with _file_lock(cache_dir / f".{spec.digest}.lock"):
        if _venv_python(target).exists():  # another run built it while this one waited
            return target, None
        started = time.perf_counter()
        tmp = cache_dir / f".build-{spec.digest}-{secrets.token_hex(3)}"
        try:
            _build(spec, tmp, log)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return target, time.perf_counter() - started


def _build(spec: EnvironmentSpec, venv: Path, log: Any) -> None:
    uv = _find_uv()
    requirements = venv.parent / f"{venv.name}.requirements.txt"
    requirements.parent.mkdir(parents=True, exist_ok=True)
    requirements.write_text("\n".join(spec.requirements) + "\n", encoding="utf-8")
    # --relocatable: the venv is built under a temporary name and renamed into place.
    commands = [
        [uv, "venv", "--quiet", "--relocatable", "--python", spec.python, str(venv)],
        # Bytecode compiled once here: a step's interpreter may not write it (PYTHONDONTWRITEBYTECODE), and
        # importing mlflow/sklearn/azure from source costs each step seconds.
        [
            *(uv, "pip", "install", "--quiet", "--compile-bytecode"),
            *("--python", str(_venv_python(venv)), "-r", str(requirements)),
        ],
    ]
    try:
        for command in commands:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S)
            if log is not None and (proc.stdout or proc.stderr):
                log.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                detail = (proc.stderr.strip().splitlines() or ["(no output)"])[-8:]
                raise UserError(
                    f"environment {spec.name!r} cannot be built (this is what Azure ML would install):\n  "
                    + "\n  ".join(detail)
                )
    finally:
        requirements.unlink(missing_ok=True)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "environment"


def interpreter_for(environment: Any, cache_dir: Path, log: Any = None) -> Interpreter:
    """The interpreter a step runs with under --isolated."""
    spec = spec_of(environment)
    if isinstance(spec, str):
        return Interpreter(Path(sys.executable), None, f"{spec}; the step runs in the project venv")
    venv, seconds = ensure_venv(spec, cache_dir, log)
    return Interpreter(_venv_python(venv), venv, "; ".join(spec.notes) or None, seconds)


def isolated_env(base: dict[str, str], interpreter: Interpreter, code_dir: Path | None) -> dict[str, str]:
    """The step's process environment: the venv's `python` first on PATH, nothing of the project's venv, and the
    component's `code:` folder importable (Azure ML runs the command in a copy of it)."""
    if interpreter.venv is None:
        return base
    env = dict(base)
    project_bin = str(Path(sys.executable).parent)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != project_bin]
    env["PATH"] = os.pathsep.join([str(interpreter.venv / "bin"), *path])
    env["VIRTUAL_ENV"] = str(interpreter.venv)
    env.pop("PYTHONHOME", None)
    env["PYTHONPATH"] = str(code_dir) if code_dir else ""
    return env
