"""The monitor step warms MLflow up in the background only when it will log, and a failed warm-up is silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.steps import _mlflow_warm


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_mlflow_warm, "_thread", None)


def test_no_tracking_uri_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _mlflow_warm.start("x")
    assert _mlflow_warm._thread is None
    _mlflow_warm.wait()  # nothing to wait for


def test_warm_up_builds_the_store_in_the_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    _mlflow_warm.start("warm-test")
    thread = _mlflow_warm._thread
    assert thread is not None and thread.daemon
    _mlflow_warm.wait()
    assert not thread.is_alive()
    assert db.is_file()  # the SQLite store (tables and all) exists before the step's first MLflow call


def test_a_failing_warm_up_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere")
    _mlflow_warm.start("warm-test")
    _mlflow_warm.wait()  # the error is left to the step's own logging, in the step's thread
