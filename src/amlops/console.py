"""Shared terminal output and the error type every command turns into one clear line and a non-zero exit."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rich.console import Console

from amlops.errors import EXIT_INTERRUPTED, AmlopsError, UserError

# soft_wrap: paths and commands must stay copy-pasteable, never folded at the terminal width. Piped or captured
# output (CI logs) has no terminal width: rich would assume 80 columns and squash tables, so give it 160.
_PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
out = Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_PIPED_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])


__all__ = ["AmlopsError", "UserError", "err", "error", "handle_errors", "info", "out", "warn"]


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}", markup=True, soft_wrap=True)


def info(message: str) -> None:
    out.print(message, soft_wrap=True)


@contextmanager
def machine_readable(enabled: bool) -> Iterator[None]:
    """For --json: what is meant for people goes to stderr while the command runs, so stdout carries only the
    JSON document (`emit_json`)."""
    if not enabled:
        yield
        return
    # Rich resolves an unset file to the current sys.stdout at each print; restore "unset", not the stream of
    # the moment (a test runner swaps sys.stdout per invocation).
    saved = getattr(out, "_file", None)
    out.file = sys.stderr
    try:
        yield
    finally:
        out._file = saved


def emit_json(document: Any) -> None:
    """The command's result as JSON on stdout (paths and datetimes as text)."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def handle_errors(func: F) -> F:
    """Decorator for typer commands: any amlops error becomes one line and its exit code (so tests through
    CliRunner see the exit codes the console script gives)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AmlopsError as exc:
            error(str(exc))
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise SystemExit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]
