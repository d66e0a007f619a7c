"""Render a component's `command:` the way Azure ML does: `${{inputs.x}}`, `${{outputs.y}}` and `$[[...]]` blocks.

An optional block `$[[ ... ]]` is kept only when every input it mentions has a (non-empty) value.

Literal values (string, integer, number, boolean inputs) are pasted into the command as they are, unquoted, as
Azure ML pastes them: a value with spaces becomes several arguments there, and so it does here, so the local run
shows the bug the cloud run would have (quote the placeholder in the component, '${{inputs.x}}', where a value
may hold spaces). Paths are quoted when they need it: Azure ML's mount paths never do, a local folder may.

No value may carry shell syntax (amlops.shell_values): a literal that does, or an input path whose file name does
(Azure ML's mount path ends with it), is refused before the step runs, as the Azure ML submission refuses it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping

from amlops.console import UserError
from amlops.shell_values import check_value, last_segment

_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


def _quote(value: str) -> str:
    return shlex.quote(value) if value == "" or shlex.quote(value) != value else value


def _kept_blocks(template: str, inputs: Mapping[str, str | None]) -> str:
    """The template with each `$[[...]]` block kept (unwrapped) or dropped, and its whitespace collapsed (before
    any value is pasted in, so that a value's own spaces survive)."""

    def keep_block(match: re.Match[str]) -> str:
        body = match.group(1)
        for kind, name in _PLACEHOLDER.findall(body):
            # An empty string counts as "not given": pipeline inputs cannot be null, so "" is how YAML says none.
            if kind == "inputs" and inputs.get(name) in (None, ""):
                return ""
        return body

    return " ".join(_OPTIONAL.sub(keep_block, template).split())


def render(
    template: str,
    inputs: Mapping[str, str | None],
    outputs: Mapping[str, str],
    what: str,
    literal: Collection[str] = (),
) -> str:
    """Substitute placeholders (the inputs named in `literal` unquoted); raise UserError naming the placeholder
    when it cannot be filled."""

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        table: Mapping[str, str | None] = inputs if kind == "inputs" else outputs
        if name not in table:
            raise UserError(
                f"{what}: the command uses ${{{{{kind}.{name}}}}}, which the component does not declare"
            )
        value = table[name]
        if value is None:
            raise UserError(
                f"{what}: input {name!r} has no value; mark it optional and wrap it in $[[...]] or give it a value"
            )
        return value if kind == "inputs" and name in literal else _quote(value)

    text = _kept_blocks(template, inputs)
    check_pasted(text, inputs, what, literal)
    return _PLACEHOLDER.sub(fill, text)


def substitute(template: str, inputs: Mapping[str, str | None], outputs: Mapping[str, str], what: str) -> str:
    """Fill placeholders with the raw values, for a value that is written to a file (the parallel driver's
    JSON spec) and never parsed by a shell: quoting there would become part of the path."""

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        table: Mapping[str, str | None] = inputs if kind == "inputs" else outputs
        value = table.get(name)
        if value is None:
            raise UserError(f"{what}: ${{{{{kind}.{name}}}}} has no value")
        return value

    return _PLACEHOLDER.sub(fill, template.strip())


def check_literals(template: str, literals: Mapping[str, str], what: str) -> None:
    """check_pasted for the literal values alone: what the runner checks for every step before the first one
    runs, so a hostile value in the last step's command does not wait for the first steps to finish."""
    check_pasted(_kept_blocks(template, literals), literals, what, set(literals))


def check_pasted(text: str, inputs: Mapping[str, str | None], what: str, literal: Collection[str]) -> None:
    """Refuse an input that reaches the command line carrying shell syntax: a literal's whole value, a path's
    last segment (outputs are the runner's own folders)."""
    for kind, name in dict.fromkeys(_PLACEHOLDER.findall(text)):
        value = inputs.get(name) if kind == "inputs" else None
        if value is None:
            continue
        if name in literal:
            check_value(name, value, where=what)
        else:
            check_value(name, last_segment(value), where=what, file_name=True)


def unquoted_notes(template: str, inputs: Mapping[str, str | None], literal: Collection[str]) -> list[str]:
    """One line per literal input pasted bare that the shell will split, drop or reinterpret (spaces, quotes, $,
    ;, an empty value): the step log says so, since the argument parser's complaint alone rarely points at the
    value. A placeholder written inside single quotes in the component is left alone."""
    text = _kept_blocks(template, inputs)
    bare = {
        m.group(2)
        for m in _PLACEHOLDER.finditer(text)
        if m.group(1) == "inputs"
        and not (text[m.start() - 1 : m.start()] == "'" == text[m.end() : m.end() + 1])
    }
    notes = []
    for name in sorted(bare & set(literal)):
        value = inputs.get(name)
        if value == "":
            notes.append(
                f"input {name!r} is empty: pasted unquoted, as Azure ML does, it leaves no argument (wrap it in "
                "$[[...]] if it is optional, or give it a value)"
            )
        elif value and shlex.quote(value) != value:
            notes.append(
                f"input {name!r} = {value!r} is pasted into the command unquoted, as Azure ML does: the shell "
                "splits or interprets it (quote the placeholder in the component if that is not meant)"
            )
    return notes
