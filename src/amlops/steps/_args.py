"""Argument types the steps' `python -m` entries share (Azure ML passes every input as text)."""

from __future__ import annotations

import argparse


def parse_bool(text: str) -> bool:
    """A boolean pipeline input: AML renders `type: boolean` as True/False; people type true/1/yes."""
    value = str(text).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
