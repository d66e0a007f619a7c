"""The one check that no value reaching a step's command line carries shell syntax — on either runner.

Azure ML pastes an input's value into the component's `command:` as it is, and runs the result with a shell
(https://learn.microsoft.com/en-us/azure/machine-learning/reference-yaml-component-command, `command`: "the
command to execute", inputs referenced as `${{inputs.<name>}}`). Quoting the placeholder in the component
('${{inputs.x}}') cannot help: a `'` in the value closes the quote and what follows runs as shell code. So the value
itself must be inert: the local runner (runner/command.py) and the Azure ML submission (azure/jobs.py) refuse the
same characters, with the same message, before anything runs.

What is refused: the characters that close a quote, start a command, substitute one or redirect
(`'` `` ` `` `$` `;` `&` `|` `<` `>` `\\`) and control characters (a newline ends a command). What stays allowed:
spaces, braces, commas and double quotes — the JSON of `params`/`thresholds` needs them, and inside the single quotes
the components put around text inputs they are plain text; without `$` and `` ` `` nothing in them can execute.

Data files are inputs of type uri_file/uri_folder: Azure ML mounts them and pastes the mount path, which ends with
the file's own name (the SDK uploads a local file to `LocalUpload/<hash>/<file name>`), so a file named
`O'Brien.csv` would break the step on Azure ML even though the local runner could quote it. Such a name is refused
on both runners, by the same rule, with a hint to rename the file.
"""

from __future__ import annotations

from collections.abc import Mapping

from amlops.errors import UsageError

SHELL_SYNTAX = frozenset("'`$;&|<>\\")


def shell_syntax(value: str) -> list[str]:
    """The offending characters of `value`, in order of first appearance (empty when it is inert)."""
    found: list[str] = []
    for ch in value:
        bad = ch in SHELL_SYNTAX or (ord(ch) < 32 and ch != " ") or ord(ch) == 127
        if bad and ch not in found:
            found.append(ch)
    return found


def shown(chars: list[str]) -> str:
    return " ".join(repr(c) for c in chars)


def check_value(name: str, value: str, *, where: str = "", file_name: bool = False) -> None:
    """Raise UsageError naming the input when `value` carries shell syntax. `file_name`: the value is a data
    file's name (the part of its path that reaches the command line on Azure ML)."""
    chars = shell_syntax(value)
    if not chars:
        return
    prefix = f"{where}: " if where else ""
    if file_name:
        raise UsageError(
            f"{prefix}input {name!r}: the file name {value!r} has shell syntax ({shown(chars)}); Azure ML pastes "
            "a data input's mount path, which ends with that name, into the step's command line as it is: "
            "rename the file (or copy it) to a name without those characters"
        )
    raise UsageError(
        f"{prefix}input {name!r} = {value!r} has shell syntax ({shown(chars)}); Azure ML pastes input values "
        "into the step's command line as they are, so it would run as shell code: use a value without those "
        "characters"
    )


def check_values(values: Mapping[str, str | None], *, where: str = "") -> None:
    """check_value for every given value (None: not given)."""
    for name, value in values.items():
        if value is not None:
            check_value(name, value, where=where)


def last_segment(path: str) -> str:
    """The file or folder name at the end of a local path or URL (what a mount path keeps)."""
    return path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
