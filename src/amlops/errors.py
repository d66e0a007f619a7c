"""The one base class of amlops' expected failures. The CLI (`console.handle_errors`) turns any of them into one
line on stderr and the error's exit code; everything else is a bug and keeps its traceback.

Exit codes (README, "Exit codes"): 1 a failure of the work (bad data, failed step, gate refused with --strict is
3), 2 a usage or configuration error (bad flag, invalid amlops.yaml, a missing Azure setting), 130 interrupted.
"""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_GATE = 3
EXIT_DRIFT = 4  # `amlops monitor --fail-on-drift`
EXIT_INTERRUPTED = 130


class AmlopsError(Exception):
    """An expected failure: printed as one line, never a traceback."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UserError(AmlopsError):
    """Bad input, a missing file, a failed step: what the user can act on."""


class UsageError(UserError):
    """A usage or configuration problem: a missing or contradictory flag or setting (exit code 2)."""

    exit_code = EXIT_USAGE
