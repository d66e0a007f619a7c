"""Render a component's `command:` the way Azure ML does: `${{inputs.x}}`, `${{outputs.y}}` and `$[[...]]` blocks.

An optional block `$[[ ... ]]` is kept only when every input it mentions has a (non-empty) value.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from amlops.console import UserError

_PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)


def _quote(value: str) -> str:
    return shlex.quote(value) if value == "" or shlex.quote(value) != value else value


def render(template: str, inputs: Mapping[str, str | None], outputs: Mapping[str, str], what: str) -> str:
    """Substitute placeholders; raise UserError naming the placeholder when it cannot be filled."""

    def keep_block(match: re.Match[str]) -> str:
        body = match.group(1)
        for kind, name in _PLACEHOLDER.findall(body):
            # An empty string counts as "not given": pipeline inputs cannot be null, so "" is how YAML says none.
            if kind == "inputs" and inputs.get(name) in (None, ""):
                return ""
        return body

    text = _OPTIONAL.sub(keep_block, template)

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
        return _quote(value)

    return " ".join(_PLACEHOLDER.sub(fill, text).split())
