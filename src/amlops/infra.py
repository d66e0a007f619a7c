"""Provisioning helpers behind `amlops infra`: build the `az` command lines, read deployment outputs,
and write them into `amlops.yaml` under `azure.environments.<env>`.

Everything here is pure (strings and paths in, strings and lists out); `amlops.commands.infra` runs the
commands. The config update edits the YAML text in place, so comments and the order of the rest of the file
survive, and re-reads the result to prove that only the target block changed.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Action = Literal["what-if", "deploy"]

MAIN_TEMPLATE = "main.bicep"
SUBSCRIPTION_TEMPLATE = "main.subscription.bicep"
AZ_INSTALL_HINT = "https://learn.microsoft.com/cli/azure/install-azure-cli"

# Deployment output -> AzureSettings key. Outputs are matched case-insensitively (ARM keeps the template's
# casing, older az versions lower-case the first letter).
OUTPUT_TO_SETTING = {
    "subscriptionId": "subscription_id",
    "resourceGroupName": "resource_group",
    "workspaceName": "workspace",
    "location": "location",
    "computeName": "compute",
    "mlRegistryName": "registry",
}


class InfraError(ValueError):
    """An expected problem (missing file, bad output, uneditable config); the message is one line."""


@dataclass(frozen=True)
class DeployRequest:
    """What the user asked for, resolved to concrete names."""

    action: Action
    env: str
    infra_dir: Path
    resource_group: str
    location: str | None = None
    subscription: str | None = None
    create_group: bool = False
    parameters: tuple[str, ...] = ()
    # Where `az bicep build-params` writes the JSON parameters for the subscription-scope entry.
    work_dir: Path = field(default_factory=lambda: Path("."))

    @property
    def deployment_name(self) -> str:
        return f"amlops-{self.env}"

    @property
    def param_file(self) -> Path:
        return self.infra_dir / "env" / f"{self.env}.bicepparam"


def available_envs(infra_dir: Path) -> list[str]:
    return sorted(p.name.removesuffix(".bicepparam") for p in (infra_dir / "env").glob("*.bicepparam"))


def param_file_for(infra_dir: Path, env: str) -> Path:
    """infra/env/<env>.bicepparam, or a one-line error naming the environments that exist."""
    path = infra_dir / "env" / f"{env}.bicepparam"
    if not path.is_file():
        known = ", ".join(available_envs(infra_dir)) or "none"
        raise InfraError(f"{path}: no parameter file for environment {env!r} (available: {known})")
    return path


def check_request(req: DeployRequest) -> None:
    """Fail early, with one line, on what `az` would reject after a slow start."""
    template = req.infra_dir / (SUBSCRIPTION_TEMPLATE if req.create_group else MAIN_TEMPLATE)
    if not template.is_file():
        raise InfraError(f"{template}: template not found (is --infra-dir the project's infra/ folder?)")
    param_file_for(req.infra_dir, req.env)
    if req.create_group and not req.location:
        raise InfraError(
            "--create-group deploys at subscription scope, which needs --location (e.g. westeurope)"
        )
    for item in req.parameters:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", item, flags=re.DOTALL):
            raise InfraError(f"--parameter {item!r}: expected NAME=VALUE")


def prefix_from_param_file(param_file: Path) -> str | None:
    """The `prefix` a parameter file sets, used for the default resource group name rg-<prefix>-<env>."""
    if not param_file.is_file():
        return None
    match = re.search(
        r"^param\s+prefix\s*=\s*'([^']+)'", param_file.read_text(encoding="utf-8"), re.MULTILINE
    )
    return match.group(1).lower() if match else None


def default_resource_group(param_file: Path, env: str) -> str | None:
    """The group main.subscription.bicep creates by default: rg-<prefix>-<env>."""
    prefix = prefix_from_param_file(param_file)
    return f"rg-{prefix}-{env}" if prefix else None


def build_commands(req: DeployRequest) -> list[list[str]]:
    """The `az` command lines for a what-if or a deployment, in the order to run them.

    Resource-group scope (the default): one `az deployment group what-if|create` with the environment's
    .bicepparam. With `create_group`, the subscription-scope entry creates the group first; a .bicepparam
    file is bound to main.bicep by its `using` line, so its values are first compiled to a JSON parameters
    file.
    """
    extra: list[str] = []
    for item in req.parameters:
        extra += ["--parameters", item]
    subscription = ["--subscription", req.subscription] if req.subscription else []
    output = ["--output", "json"] if req.action == "deploy" else []
    verb = "what-if" if req.action == "what-if" else "create"

    if not req.create_group:
        location = ["--parameters", f"location={req.location}"] if req.location else []
        return [
            [
                "az", "deployment", "group", verb,
                "--name", req.deployment_name,
                "--resource-group", req.resource_group,
                "--template-file", str(req.infra_dir / MAIN_TEMPLATE),
                "--parameters", str(req.param_file),
                *location, *extra, *subscription, *output,
            ]
        ]  # fmt: skip

    assert req.location, "check_request() guarantees a location with create_group"
    params_json = req.work_dir / f"{req.env}.parameters.json"
    return [
        ["az", "bicep", "build-params", "--file", str(req.param_file), "--outfile", str(params_json)],
        [
            "az", "deployment", "sub", verb,
            "--name", req.deployment_name,
            "--location", req.location,
            "--template-file", str(req.infra_dir / SUBSCRIPTION_TEMPLATE),
            "--parameters", f"@{params_json}",
            "--parameters", f"resourceGroupName={req.resource_group}",
            *extra, *subscription, *output,
        ],
    ]  # fmt: skip


def bicep_check_command() -> list[str]:
    """Succeeds only when `az` can compile Bicep (its own Bicep CLI, installed by `az bicep install`)."""
    return ["az", "bicep", "version"]


def parse_deployment_outputs(text: str) -> dict[str, Any]:
    """Output values of a deployment, from `az deployment ... create --output json` (or `... show`).

    Accepts the whole deployment object, its `properties`, or the bare `outputs` mapping
    ({"name": {"type": ..., "value": ...}}); returns {"name": value}.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InfraError(f"deployment output is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise InfraError("deployment output is not a JSON object")
    node: Any = data
    if isinstance(node.get("properties"), dict):
        node = node["properties"]
    if "outputs" in node:
        node = node["outputs"]
    if node is None:
        return {}
    if not isinstance(node, dict):
        raise InfraError("deployment outputs are not a JSON object")
    outputs: dict[str, Any] = {}
    for name, entry in node.items():
        if isinstance(entry, dict) and "value" in entry:
            outputs[name] = entry["value"]
        else:
            raise InfraError(f"deployment output {name!r} has no value")
    return outputs


def settings_from_outputs(outputs: dict[str, Any]) -> dict[str, str]:
    """The `azure.environments.<env>` keys the outputs provide (empty values are left out, not written)."""
    by_lower = {k.lower(): v for k, v in outputs.items()}
    values: dict[str, str] = {}
    for output_name, key in OUTPUT_TO_SETTING.items():
        value = by_lower.get(output_name.lower())
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InfraError(f"deployment output {output_name!r} is not a string: {value!r}")
        values[key] = value
    missing = [k for k in ("workspace", "resource_group") if k not in values]
    if missing:
        raise InfraError(f"deployment outputs lack {', '.join(missing)} (is this an amlops deployment?)")
    return values


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def what_if_markdown(env: str, command: list[str], text: str) -> str:
    """A what-if result as a Markdown section (for $GITHUB_STEP_SUMMARY): the command, then az's report."""
    body = _ANSI.sub("", text).rstrip() or "(no output)"
    fence = "~~~~" if "```" in body else "```"
    return f"### amlops infra what-if: {env}\n\n`{shlex.join(command)}`\n\n{fence}text\n{body}\n{fence}\n\n"


def outputs_markdown(env: str, outputs: dict[str, Any]) -> str:
    """A deployment's outputs as a Markdown table (every output is a name or an id, never a credential)."""
    rows = "\n".join(
        f"| `{name}` | `{json.dumps(value) if not isinstance(value, str) else value}` |"
        for name, value in outputs.items()
    )
    return f"### amlops infra deploy: {env}\n\n| output | value |\n| --- | --- |\n{rows}\n\n"


# --- config update: a small, careful text edit of a block-style YAML mapping ---------------------------


@dataclass(frozen=True)
class Change:
    key: str
    old: str | None
    new: str

    def describe(self) -> str:
        return f"{self.key}: {self.old if self.old is not None else '(unset)'} -> {self.new}"


_KEY_LINE = re.compile(r"^(?P<indent>[ ]*)(?P<key>[A-Za-z0-9_.\-]+|\"[^\"]*\"|'[^']*')[ ]*:(?P<rest>[ ].*|)$")
_VALUE_AND_COMMENT = re.compile(
    r"^(?P<sep>[ ]*)(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^#]*?)(?P<comment>[ ]+#.*)?[ ]*$"
)
_EMPTY_VALUES = {"", "{}", "null", "~"}


@dataclass
class _Line:
    text: str
    indent: int
    key: str | None  # the mapping key on this line, unquoted; None for blank, comment and other lines
    rest: str  # what follows the colon


def _split(text: str) -> list[_Line]:
    lines = []
    for raw in text.splitlines():
        stripped = raw.strip()
        match = _KEY_LINE.match(raw) if stripped and not stripped.startswith("#") else None
        indent = len(raw) - len(raw.lstrip(" "))
        if match:
            key = match.group("key").strip("\"'")
            lines.append(_Line(raw, indent, key, match.group("rest")))
        else:
            lines.append(_Line(raw, indent, None, ""))
    return lines


def _is_content(line: _Line) -> bool:
    stripped = line.text.strip()
    return bool(stripped) and not stripped.startswith("#")


def _find_child(lines: list[_Line], start: int, end: int, indent: int | None, key: str) -> int | None:
    """Index of `key:` among the direct children in lines[start:end] (they share the first child's indent)."""
    child_indent = indent
    for i in range(start, end):
        line = lines[i]
        if not _is_content(line):
            continue
        if child_indent is None:
            child_indent = line.indent
        if line.indent == child_indent and line.key == key:
            return i
    return None


def _block_end(lines: list[_Line], header: int) -> int:
    """One past the last content line belonging to the mapping opened at lines[header]."""
    last = header
    for i in range(header + 1, len(lines)):
        line = lines[i]
        if not _is_content(line):
            continue
        if line.indent <= lines[header].indent:
            break
        last = i
    return last + 1


def _child_indent(lines: list[_Line], header: int, end: int, step: int) -> int:
    for i in range(header + 1, end):
        if _is_content(lines[i]):
            return lines[i].indent
    return lines[header].indent + step


def _scalar(value: str) -> str:
    """YAML for a string value: plain when it reads back as the same string, else double-quoted (JSON)."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/\-]*", value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _open_block(lines: list[_Line], index: int, where: str) -> None:
    """Turn `key:`, `key: {}` or `key: null` into a block header; refuse other inline (flow) values."""
    line = lines[index]
    parts = _VALUE_AND_COMMENT.match(line.rest)
    value = parts.group("value").strip() if parts else line.rest.strip()
    if value not in _EMPTY_VALUES:
        raise InfraError(
            f"{where} is written inline ({value}); write it as a block mapping to let amlops edit it"
        )
    comment = (parts.group("comment") or "") if parts else ""
    new_text = f"{' ' * line.indent}{line.text.strip().split(':', 1)[0]}:{comment}"
    lines[index] = _Line(new_text, line.indent, line.key, comment)


def update_config_text(text: str, env: str, values: dict[str, str]) -> tuple[str, list[Change]]:
    """Set `azure.environments.<env>.<key>` for each value, changing nothing else in the text.

    Adds the missing levels (azure, environments, <env>) as block mappings, replaces existing values in
    place (keeping a trailing comment), and returns the new text plus the changes made (unchanged keys are
    left out).
    """
    try:
        before = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise InfraError(f"config is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if before is None:
        before = {}
    if not isinstance(before, dict):
        raise InfraError("config: expected a mapping at the top level")
    old_env = ((before.get("azure") or {}).get("environments") or {}).get(env) or {}
    if not isinstance(old_env, dict):
        raise InfraError(f"azure.environments.{env} is not a mapping")

    lines = _split(text)
    step = min((line.indent for line in lines if _is_content(line) and line.indent > 0), default=2)
    path = ["azure", "environments", env]
    parent = -1  # index of the current header line; -1 is the document
    for depth, key in enumerate(path):
        start, end = (0, len(lines)) if parent < 0 else (parent + 1, _block_end(lines, parent))
        indent = 0 if parent < 0 else None
        found = _find_child(lines, start, end, indent, key)
        where = ".".join(path[: depth + 1])
        if found is not None:
            if not _has_children(lines, found):
                _open_block(lines, found, where)
            parent = found
            continue
        child_indent = 0 if parent < 0 else _child_indent(lines, parent, end, step)
        new = _Line(f"{' ' * child_indent}{key}:", child_indent, key, "")
        insert_at = end if parent >= 0 else _document_end(lines)
        lines.insert(insert_at, new)
        parent = insert_at

    changes: list[Change] = []
    for key, value in values.items():
        end = _block_end(lines, parent)
        found = _find_child(lines, parent + 1, end, None, key)
        old = old_env.get(key)
        old_text = None if old is None else str(old)
        if old_text == value:
            continue
        changes.append(Change(f"azure.environments.{env}.{key}", old_text, value))
        if found is None:
            indent = _child_indent(lines, parent, end, step)
            lines.insert(end, _Line(f"{' ' * indent}{key}: {_scalar(value)}", indent, key, ""))
            continue
        line = lines[found]
        parts = _VALUE_AND_COMMENT.match(line.rest)
        comment = (parts.group("comment") or "") if parts else ""
        key_text = line.text.strip().split(":", 1)[0]
        lines[found] = _Line(
            f"{' ' * line.indent}{key_text}: {_scalar(value)}{comment}", line.indent, key, ""
        )

    new_text = "\n".join(line.text for line in lines) + "\n"
    _verify(before, new_text, env, values)
    return new_text, changes


def _has_children(lines: list[_Line], header: int) -> bool:
    return _block_end(lines, header) > header + 1


def _document_end(lines: list[_Line]) -> int:
    """Append new top-level keys after the last content line (trailing comments stay where they are)."""
    last = -1
    for i, line in enumerate(lines):
        if _is_content(line):
            last = i
    return last + 1


def _verify(before: dict[str, Any], new_text: str, env: str, values: dict[str, str]) -> None:
    """Re-read the edited text: the target keys hold the new values and nothing else moved."""
    try:
        after = yaml.safe_load(new_text) or {}
    except yaml.YAMLError as exc:  # pragma: no cover - a bug in the editor, not a user error
        raise InfraError(
            f"editing the config would break it ({getattr(exc, 'problem', exc)}); edit it by hand"
        ) from None
    expected = copy.deepcopy(before)
    azure = expected.setdefault("azure", {}) or {}
    expected["azure"] = azure
    environments = azure.setdefault("environments", {}) or {}
    azure["environments"] = environments
    target = environments.setdefault(env, {}) or {}
    environments[env] = target
    target.update(values)
    if after != expected:
        raise InfraError(
            "could not update the config without touching other keys; edit azure.environments by hand"
        )


def update_config_file(path: Path, env: str, values: dict[str, str]) -> list[Change]:
    """Apply `update_config_text` to a file (created when missing); returns the changes written."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    new_text, changes = update_config_text(text, env, values)
    if changes or not path.is_file():
        path.write_text(new_text, encoding="utf-8")
    return changes
