"""Every `amlops …` command line in the workflows and composite actions is parsed by the real CLI.

test_workflows.py checks that the commands and options named exist; this goes further and lets click parse each
line as `amlops` would, without running anything: required options (`promote` without `--reason` exits 2),
choices (`--target nowhere`), unknown flags, missing arguments and values of the wrong type all fail here. The
click command is built from the typer app (`typer.main.get_command`; typer ≥ 0.24 vendors click as
`typer._click`, so groups are recognised by shape, not class) and each level of the subcommand chain gets
`make_context(..., resilient_parsing=False)`, which parses and converts but never invokes a callback.

What a shell would substitute is replaced by a placeholder: `$VAR`, `"${VAR}"`, `$(…)` and GitHub's `${{ … }}`.
A placeholder cannot match a choice, so choice-valued options must be written literally in workflows (they are).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.exceptions import Exit

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "workflows"
PLACEHOLDER = "placeholder"
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", ";;", "|&"}
KEYWORDS = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "!", "time", "{", "}"}


@dataclass(frozen=True)
class CommandLine:
    where: str  # file (job or action), for the failure message
    args: tuple[str, ...]  # what follows `amlops`

    def __str__(self) -> str:
        return f"{self.where}: amlops {shlex.join(self.args)}"


def workflow_sources() -> list[Path]:
    github = ROOT / ".github"
    return sorted([*github.glob("workflows/*.yml"), *github.glob("actions/**/action.yml")])


def run_scripts(path: Path) -> list[tuple[str, str]]:
    """(job, script) of every `run:` in a workflow or composite action."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    jobs = doc.get("jobs") or {"(action)": doc.get("runs") or {}}
    return [
        (str(job_name), str(step["run"]))
        for job_name, job in jobs.items()
        for step in (job.get("steps") or [])
        if isinstance(step, dict) and "run" in step
    ]


def _substitute(script: str) -> str:
    """Shell and GitHub expansions become one placeholder word (quotes around them are kept); the body of each
    `$(…)` is kept as a line of its own, so a command inside one is checked too."""
    inner = re.findall(r"\$\(([^()]*)\)", script)
    script = "\n".join([script, *inner])
    script = re.sub(r"\$\{\{.*?\}\}", PLACEHOLDER, script)
    script = re.sub(r"\$\([^()]*\)", PLACEHOLDER, script)
    script = re.sub(r"\$\{[^}]*\}", PLACEHOLDER, script)
    return re.sub(r"\$[A-Za-z_][A-Za-z0-9_]*", PLACEHOLDER, script)


def _simple_commands(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def amlops_args(command: list[str]) -> tuple[str, ...] | None:
    """The arguments after amlops, for `amlops`, `.venv/bin/amlops`, `uv run [opts] amlops`, `python -m amlops.cli`."""
    while command and (command[0] in KEYWORDS or re.match(r"^[A-Za-z_]\w*=", command[0])):
        command = command[1:]
    if not command:
        return None
    head = Path(command[0]).name
    if head == "amlops":
        return tuple(command[1:])
    if head == "uv" and command[1:2] == ["run"]:
        rest = command[2:]
        while rest and rest[0].startswith("-"):
            rest = rest[1:]
        return amlops_args(rest)
    if head.startswith("python") and command[1:3] in (["-m", "amlops.cli"], ["-m", "amlops"]):
        return tuple(command[3:])
    return None


def extract(paths: list[Path]) -> list[CommandLine]:
    found: list[CommandLine] = []
    for path in paths:
        label = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
        for job, script in run_scripts(path):
            text = _substitute(script.replace("\\\n", " "))
            for line in text.splitlines():
                for command in _simple_commands(line):
                    args = amlops_args(command)
                    if args is not None:
                        found.append(CommandLine(f"{label} ({job})", args))
    return found


def _app() -> Any:
    from amlops.cli import app

    return typer.main.get_command(app)


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict) and hasattr(command, "resolve_command")


def parse_problem(root: Any, args: tuple[str, ...]) -> str | None:
    """None when click accepts the line down to a leaf command, else click's own message. Nothing is invoked."""
    try:
        ctx = root.make_context("amlops", list(args), resilient_parsing=False)
        command: Any = root
        while _is_group(command):
            rest = [*ctx._protected_args, *ctx.args]
            if not rest:
                return f"{ctx.command_path}: a command group, not a command"
            name, sub, rest = command.resolve_command(ctx, rest)
            assert sub is not None and name is not None
            if _is_group(sub) and not rest:  # parsing it would print its help (no_args_is_help)
                return f"{ctx.command_path} {name}: a command group, not a command"
            ctx = sub.make_context(name, rest, parent=ctx, resilient_parsing=False)
            command = sub
    except Exit:
        return None  # --help and friends
    except NoArgsIsHelpError:
        return "a command group, not a command"
    except ClickException as exc:
        return str(exc.format_message())
    return None


def problems(lines: list[CommandLine]) -> dict[str, str]:
    root = _app()
    found = {str(line): parse_problem(root, line.args) for line in lines}
    return {line: problem for line, problem in found.items() if problem is not None}


# --------------------------------------------------------------------------------------------- tests


def test_every_amlops_line_in_the_workflows_parses() -> None:
    lines = extract(workflow_sources())
    assert len(lines) >= 8, f"too few amlops lines found ({len(lines)}): the extraction is broken"
    assert any(line.args[:1] == ("promote",) for line in lines)
    found = problems(lines)
    assert found == {}, "\n".join(f"{line}\n    -> {problem}" for line, problem in found.items())


def test_the_planted_workflow_fails_exactly_where_planted() -> None:
    lines = extract([FIXTURES / "cli_bad.yml"])
    found = problems(lines)
    failing = {line.split(": amlops ", 1)[1]: problem for line, problem in found.items()}
    assert set(failing) == {
        "promote --to prod --stage share",
        "train --target nowhere --env placeholder",
        "deploy --env placeholder --no-such-flag",
        "promote --to prod --stage everything --reason placeholder",
        "schedule",
        "infra deploy --env dev --parameter",
    }, failing
    assert "--reason" in failing["promote --to prod --stage share"]
    assert "nowhere" in failing["train --target nowhere --env placeholder"]
    assert "--no-such-flag" in failing["deploy --env placeholder --no-such-flag"]
    # The good lines of the fixture were found and accepted: the check is not failing everything.
    accepted = {shlex.join(line.args) for line in lines} - set(failing)
    assert accepted == {
        "promote --to prod --stage copy --reason placeholder placeholder",
        "train --target azure --env placeholder --summary placeholder",
        "infra what-if --env dev --summary placeholder",
        "loop --once --target azure --env placeholder --retrain-via github",
        "config show",
    }, accepted


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ('.venv/bin/amlops deploy \\\n  --env "$AMLOPS_ENV"', ("deploy", "--env", PLACEHOLDER)),
        ("uv run --frozen amlops config show", ("config", "show")),
        ("python -m amlops.cli train --env ${{ inputs.environment }}", ("train", "--env", PLACEHOLDER)),
        (
            'x=$(amlops promote --to "${TARGET}" -r why) && echo',
            ("promote", "--to", PLACEHOLDER, "-r", "why"),
        ),
    ],
)
def test_extraction_handles_continuations_expressions_and_launchers(
    tmp_path: Path, script: str, expected: tuple[str, ...]
) -> None:
    workflow = tmp_path / "w.yml"
    workflow.write_text(yaml.safe_dump({"jobs": {"j": {"steps": [{"run": script}]}}}), encoding="utf-8")
    assert [line.args for line in extract([workflow])] == [expected]
