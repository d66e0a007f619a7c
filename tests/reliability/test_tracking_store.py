"""Corrupt or unreachable tracking state gives one clear line, never a new registry or minutes of retries.

- An empty mlflow.db used to become a new, empty registry silently (SQLAlchemy creates the tables in it): the
  champion "disappeared". Now it is refused, and the file is left as it was.
- A truncated or overwritten mlflow.db: refused by its SQLite header, before MLflow fails deep in a query.
- An unreachable MLflow server: one line naming the URI within ~10 s (MLflow's own retries take minutes)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from training_helpers import fresh_store
from typer.testing import CliRunner

from amlops import registry
from amlops.cli import app
from amlops.config import Settings, load_settings
from amlops.errors import UserError


def cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "amlops.yaml"
    config.write_text("model_name: m\n")
    monkeypatch.setenv("AMLOPS_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _db(project: Path) -> Path:
    return load_settings(path=project / "amlops.yaml").state_path / "mlflow.db"


def test_an_empty_mlflow_db_is_refused_not_recreated(project: Path) -> None:
    db = _db(project)
    db.parent.mkdir(parents=True)
    db.touch()
    result = cli("models")
    assert result.exit_code == 1, result.output
    assert f"MLflow store {db} is empty (0 bytes): refusing to start a new registry" in " ".join(
        result.output.split()
    )
    assert db.stat().st_size == 0  # not turned into a new registry


def test_a_truncated_mlflow_db_is_refused(project: Path, store_template: Path) -> None:
    settings = load_settings(path=project / "amlops.yaml")
    fresh_store(settings, store_template)
    db = _db(project)
    whole = db.read_bytes()
    db.write_bytes(whole[: len(whole) // 2])
    result = cli("history")
    assert result.exit_code == 1, result.output
    assert f"MLflow store {db} is truncated ({len(whole) // 2} of {len(whole)} bytes)" in " ".join(
        result.output.split()
    )
    assert db.read_bytes() == whole[: len(whole) // 2]


def test_an_overwritten_mlflow_db_is_refused(project: Path) -> None:
    db = _db(project)
    db.parent.mkdir(parents=True)
    db.write_text("not a database\n")
    with pytest.raises(UserError, match="is not an SQLite database"):
        registry.client_for(load_settings(path=project / "amlops.yaml"))
    assert db.read_text() == "not a database\n"


def test_a_whole_mlflow_db_is_accepted(tmp_path: Path, store_template: Path) -> None:
    settings = Settings(base_dir=tmp_path)
    fresh_store(settings, store_template)
    registry.client_for(settings).search_experiments()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung server, a firewall that drops replies)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("kind", ["hung", "refused"])
def test_an_unreachable_server_fails_fast_naming_the_uri(
    project: Path, silent_server: str, kind: str
) -> None:
    uri = silent_server if kind == "hung" else _closed_port()
    (project / "amlops.yaml").write_text(f"model_name: m\nmlflow:\n  tracking_uri: {uri}\n")
    started = time.monotonic()
    result = cli("models")
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"MLflow tracking server {uri} is unreachable" in lines[0]
    assert elapsed < 10


def test_a_run_refuses_an_empty_store_before_any_step(project: Path) -> None:
    db = _db(project)
    db.parent.mkdir(parents=True)
    db.touch()
    data = project / "sales.csv"
    data.write_text("date\n2024-01-01\n")
    result = cli("train", "--data", str(data))
    assert result.exit_code == 1 and "is empty (0 bytes)" in result.output
    assert db.stat().st_size == 0 and not list((project / "runs").rglob("std_log.txt"))
