"""Shared terminal output and the error type every command turns into one clear line and a non-zero exit."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from rich.console import Console

# soft_wrap: paths and commands must stay copy-pasteable, never folded at the terminal width. Piped or captured
# output (CI logs) has no terminal width: rich would assume 80 columns and squash tables, so give it 160.
_PIPED_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
out = Console(highlight=False, soft_wrap=True, width=_PIPED_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_PIPED_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """An expected failure (bad input, missing file, failed step): printed as one line, never a traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}", markup=True, soft_wrap=True)


def info(message: str) -> None:
    out.print(message, soft_wrap=True)


def handle_errors(func: F) -> F:
    """Decorator for typer commands: map known exceptions to UserError (so tests via CliRunner see exit codes)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from amlops.config import ConfigError

        try:
            return func(*args, **kwargs)
        except UserError as exc:
            error(str(exc))
            raise SystemExit(exc.exit_code) from None
        except ConfigError as exc:
            error(str(exc))
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
