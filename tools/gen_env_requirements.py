"""Generate each Azure ML environment's pinned pip requirements from its uv lock (never edit a conda.yml by hand),
and check that they agree, resolve and hold what the steps need.

    python tools/gen_env_requirements.py --write | --check

Environments (the `environment:` of the components under components/):
- amlops (components/environment/): every command component; pins from the project's own uv.lock, so Azure ML
  runs the library versions the local runner uses.
- amlops-scoring (components/environment/scoring/): the parallel score component; its own small uv project,
  since Azure ML's parallel runtime (azureml-core, azureml-dataset-runtime[fuse]) caps numpy, pyarrow and
  packaging below the project's versions.

`--check` fails when a conda.yml disagrees with its lock, when an environment's pins do not resolve together
(`uv pip compile`, from the uv cache when it can), or when an environment lacks a distribution its steps import
or the `azureml` MLflow tracking store (tests/static/test_environment.py runs these checks and plants faults).
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ROOT / "components"
SRC = ROOT / "src"
ENV_DIR = COMPONENTS / "environment"
HEADER = """\
# GENERATED from {lock} by `make env-requirements` (tools/gen_env_requirements.py). Do not edit by hand:
# a test fails when this file and the lock disagree.
name: {name}
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""
# Inside an Azure ML job MLFLOW_TRACKING_URI is `azureml://...`; MLflow resolves a URI scheme through the entry
# point groups `mlflow.tracking_store` and `mlflow.model_registry_store` (mlflow/tracking/registry.py
# StoreRegistry.register_entrypoints / get_store_builder, called from mlflow/tracking/_tracking_service/utils.py
# and mlflow/tracking/_model_registry/registry.py), and azureml-mlflow registers `azureml` there (its entry_points.txt:
# [mlflow.tracking_store] azureml = azureml.mlflow.entry_point_loaders:azureml_store_builder, and the same name
# under [mlflow.model_registry_store]). Microsoft Learn "Track ML experiments and models with MLflow"
# (how-to-use-mlflow-configure-tracking): install mlflow and azureml-mlflow in the job's environment.
TRACKING_ENTRY_POINTS = ("mlflow.tracking_store", "mlflow.model_registry_store")
TRACKING_SCHEME = "azureml"
# Calls that talk to the tracking/registry store (not merely load a model folder).
_TRACKING_CALL = re.compile(
    r"\bmlflow\.(start_run|set_tracking_uri|log_\w+|register_model|set_experiment|tracking\.MlflowClient)\b"
    r"|\bMlflowClient\("
)
# Module names whose distribution differs from the import name and cannot be found from the project's venv.
_EXTRA_DISTRIBUTIONS: dict[str, list[str]] = {}


@dataclass(frozen=True)
class Environment:
    name: str
    project: Path  # folder holding pyproject.toml + uv.lock
    folder: Path  # folder holding environment.yml + conda.yml

    @property
    def conda_file(self) -> Path:
        return self.folder / "conda.yml"

    @property
    def definition(self) -> Path:
        return self.folder / "environment.yml"


ENVIRONMENTS = (
    Environment("amlops", ROOT, ENV_DIR),
    Environment("amlops-scoring", ENV_DIR / "scoring", ENV_DIR / "scoring"),
)


def find_uv() -> str:
    found = shutil.which("uv") or str(ROOT / "tools" / ".venv-uv" / "bin" / "uv")
    if not Path(found).exists():
        raise SystemExit("error: uv not found (run `make setup`)")
    return found


def pinned_requirements(env: Environment) -> list[str]:
    """Runtime (non-dev) dependencies of the environment's project, pinned as in its uv.lock, with markers."""
    text = subprocess.run(
        [
            find_uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
        ],
        cwd=env.project,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = (ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#"))
    return sorted((_without_platform_marker(ln) for ln in lines), key=str.lower)


def _without_platform_marker(requirement: str) -> str:
    """Drop the marker a Linux-only lock puts on every line (Azure ML's platform: it always holds there)."""
    req, sep, marker = requirement.partition(";")
    return req.strip() if sep and marker.strip() == LINUX_X86_64 else requirement


LINUX_X86_64 = "platform_machine == 'x86_64' and sys_platform == 'linux'"


def render(env: Environment, requirements: list[str]) -> str:
    lock = _shown(env.project / "uv.lock")
    return HEADER.format(lock=lock, name=env.name) + "".join(f'      - "{req}"\n' for req in requirements)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def conda_pip(conda_file: Path) -> list[str]:
    """The pip section of a conda file."""
    data = yaml.safe_load(conda_file.read_text(encoding="utf-8")) or {}
    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict) and "pip" in dep:
            return [str(x) for x in dep["pip"]]
    return []


def distribution_name(requirement: str) -> str:
    """`azure-ai-ml==1.35.2 ; marker` -> `azure-ai-ml` (normalized: lower case, `_`/`.` as `-`)."""
    name = re.split(r"[\s\[=<>!~;@]", requirement.strip(), maxsplit=1)[0]
    return normalize(name)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- resolution ------------------------------------------------------------------------------------------------
def resolve_errors(requirements: Iterable[str]) -> str | None:
    """None when the pins resolve together for Azure ML's platform (Linux x86_64, Python 3.11), else uv's
    explanation. Tries the uv cache first (offline), then the index."""
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        base = [
            find_uv(),
            "pip",
            "compile",
            "--quiet",
            "--no-header",
            "--python-version",
            "3.11",
            "--python-platform",
            "x86_64-manylinux_2_28",
            str(reqs),
        ]
        proc = subprocess.run([*base, "--offline"], capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0 and _needs_network(proc.stderr):
            proc = subprocess.run(base, capture_output=True, text=True, cwd=tmp)
    if proc.returncode == 0:
        return None
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return "\n".join(lines[:12])


def _needs_network(stderr: str) -> bool:
    low = stderr.lower()
    return any(
        phrase in low
        for phrase in ("network was disabled", "network connectivity is disabled", "needs to be downloaded")
    )


# -- what the steps need ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepNeeds:
    component: Path
    module: Path  # the step's entry (python -m amlops.steps.X or the parallel entry_script)
    distributions: frozenset[str]
    uses_tracking: bool


def component_environments() -> dict[Path, list[Path]]:
    """Environment definition file -> the component files that use it (file: environments only)."""
    uses: dict[Path, list[Path]] = {}
    for component in sorted(COMPONENTS.glob("*.yml")):
        spec = yaml.safe_load(component.read_text(encoding="utf-8")) or {}
        env = spec.get("environment") or (spec.get("task") or {}).get("environment")
        if isinstance(env, str) and env.startswith("file:"):
            path = (component.parent / env[len("file:") :]).resolve()
            uses.setdefault(path, []).append(component)
    return uses


def step_module(component: Path) -> Path | None:
    """The Python file a component runs: `python -m amlops.steps.X` or the parallel task's entry_script."""
    spec = yaml.safe_load(component.read_text(encoding="utf-8")) or {}
    task = spec.get("task") or {}
    code = task.get("code") or spec.get("code")
    if not code:
        return None
    code_dir = (component.parent / str(code)).resolve()
    if task.get("entry_script"):
        return code_dir / str(task["entry_script"])
    m = re.search(r"python\s+-m\s+([\w.]+)", str(spec.get("command") or ""))
    if not m:
        return None
    base = code_dir / Path(*m.group(1).split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


def _module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_modules(entry: Path) -> tuple[set[str], str]:
    """Every non-amlops top-level module imported (at any depth, lazily too: those imports run when the step
    does) by `entry` and the amlops modules it reaches, plus their source text (to look for tracking calls)."""
    seen: set[Path] = set()
    external: set[str] = set()
    texts: list[str] = []
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        source = path.read_text(encoding="utf-8")
        texts.append(source)
        for node in ast.walk(ast.parse(source)):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] == "amlops":
                    found = _module_file(name)
                    if found:
                        todo.append(found)
                    parent = _module_file(name.rsplit(".", 1)[0]) if "." in name else None
                    if parent:
                        todo.append(parent)
                else:
                    external.add(name.split(".")[0])
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    return {m for m in external if m not in stdlib}, "\n".join(texts)


def needs_of(component: Path) -> StepNeeds | None:
    module = step_module(component)
    if module is None:
        return None
    modules, text = imported_modules(module)
    by_module = importlib.metadata.packages_distributions()
    dists: set[str] = set()
    for name in modules:
        found = by_module.get(name) or _EXTRA_DISTRIBUTIONS.get(name)
        if not found:
            raise SystemExit(
                f"error: {_shown(module)} imports {name!r}, which no installed distribution provides"
            )
        # One import name may come from several distributions (mlflow from mlflow-skinny or mlflow): any will do.
        dists.add("|".join(sorted(normalize(d) for d in found)))
    return StepNeeds(component, module, frozenset(dists), bool(_TRACKING_CALL.search(text)))


def provides_entry_point(pins: Iterable[str], groups: Iterable[str], name: str) -> dict[str, str | None]:
    """For each entry point group: the pinned distribution registering `name` in it (from the installed metadata
    of that distribution), or None."""
    pinned = {distribution_name(p) for p in pins}
    found: dict[str, str | None] = dict.fromkeys(groups)
    for dist in importlib.metadata.distributions():
        dname = normalize(dist.metadata["Name"] or "")
        if dname not in pinned:
            continue
        for ep in dist.entry_points:
            if ep.group in found and ep.name == name and found[ep.group] is None:
                found[ep.group] = dname
    return found


def content_problems(env: Environment, pins: list[str]) -> list[str]:
    """What the environment's components need and its pins lack."""
    problems: list[str] = []
    pinned = {distribution_name(p) for p in pins}
    users = component_environments().get(env.definition.resolve(), [])
    tracking = False
    for component in users:
        needs = needs_of(component)
        if needs is None:
            continue
        tracking = tracking or needs.uses_tracking
        for alternatives in sorted(needs.distributions):
            if not set(alternatives.split("|")) & pinned:
                problems.append(
                    f"{env.name}: {_shown(needs.module)} (component {component.name}) imports a module of "
                    f"{alternatives.replace('|', ' or ')}, which {_shown(env.conda_file)} does not pin"
                )
    if tracking:
        for group, dist in provides_entry_point(pins, TRACKING_ENTRY_POINTS, TRACKING_SCHEME).items():
            if dist is None:
                problems.append(
                    f"{env.name}: no pinned distribution registers the {TRACKING_SCHEME!r} scheme in the "
                    f"{group!r} entry points: inside an Azure ML job MLFLOW_TRACKING_URI is azureml://..., and "
                    "MLflow cannot open it without azureml-mlflow"
                )
    return problems


def check_environment(env: Environment, pins: list[str] | None = None, *, resolve: bool = True) -> list[str]:
    """Every problem with one environment (its conda.yml against its lock, resolution, content)."""
    problems: list[str] = []
    expected = render(env, pinned_requirements(env))
    current = env.conda_file.read_text(encoding="utf-8") if env.conda_file.exists() else ""
    if pins is None and current != expected:
        lock = _shown(env.project / "uv.lock")
        problems.append(f"{_shown(env.conda_file)} disagrees with {lock}: run `make env-requirements`")
    pins = conda_pip(env.conda_file) if pins is None else pins
    if resolve:
        error = resolve_errors(pins)
        if error:
            problems.append(
                f"{env.name}: the pins in {_shown(env.conda_file)} do not resolve together:\n{error}"
            )
    problems.extend(content_problems(env, pins))
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    parser.add_argument("--no-resolve", action="store_true", help="--check without the resolution step")
    args = parser.parse_args(argv)
    if args.write:
        for env in ENVIRONMENTS:
            env.conda_file.write_text(render(env, pinned_requirements(env)), encoding="utf-8")
            print(f"wrote {_shown(env.conda_file)}")
        return 0
    problems = [p for env in ENVIRONMENTS for p in check_environment(env, resolve=not args.no_resolve)]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print("environments match their locks, resolve, and hold what their steps import")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
