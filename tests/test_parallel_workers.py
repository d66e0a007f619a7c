"""The test suite runs in pytest-xdist workers (make test): a worker must see what a serial run sees."""

from __future__ import annotations

import os

import pytest


def test_a_worker_draws_tables_as_wide_as_a_serial_run() -> None:
    """xdist workers start with COLUMNS=80 (a serial run has none): tables read by the CLI tests would be drawn
    80 columns wide in a worker only. tests/conftest.py drops it; without that, this fails under `-n 2`."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("checks an xdist worker; run under make test (-n)")
    from amlops import console

    assert "COLUMNS" not in os.environ and "LINES" not in os.environ
    assert console.out.width == 160  # amlops/console.py's width for piped output
