"""MLflow on a local store without remote-only costs: no azureml-mlflow plugin import, a new SQLite store copied
from a migrated template. Each check runs in a fresh interpreter (the import is what is measured)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from amlops import mlflow_local

PROBE = """
import json, sys
from amlops.mlflow_local import skip_azureml_plugins
hidden = skip_azureml_plugins() if sys.argv[1] == "skip" else False
import mlflow
client = mlflow.MlflowClient()
exp = client.create_experiment("probe")
run = client.create_run(exp)
client.log_metric(run.info.run_id, "m", 1.5)
print(json.dumps({
    "hidden": hidden,
    "azureml_loaded": any(m == "azureml" or m.startswith("azureml.") for m in sys.modules),
    "metric": client.get_run(run.info.run_id).data.metrics["m"],
}))
"""


def probe(tmp_path: Path, mode: str, uri: str, **env: str) -> dict[str, object]:
    import os

    environ = {k: v for k, v in os.environ.items() if k != "AMLOPS_MLFLOW_PLUGINS"}
    environ |= {"MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri, **env}
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def test_a_local_store_works_without_the_azureml_plugin_loaded(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    got = probe(tmp_path, "skip", uri)
    assert got == {"hidden": True, "azureml_loaded": False, "metric": 1.5}


def test_the_planted_fault_without_the_filter_mlflow_loads_the_plugin(tmp_path: Path) -> None:
    """The check above can fail: MLflow left alone imports azureml-mlflow (and so does an opt-out)."""
    assert probe(tmp_path, "plain", f"sqlite:///{tmp_path / 'a.db'}")["azureml_loaded"] is True
    opted_out = probe(tmp_path, "skip", f"sqlite:///{tmp_path / 'b.db'}", AMLOPS_MLFLOW_PLUGINS="all")
    assert opted_out["azureml_loaded"] is True


@pytest.mark.parametrize(
    ("uris", "hidden"),
    [
        (("sqlite:///x.db", "sqlite:///x.db"), True),
        (("file:///tmp/mlruns", None), True),
        (("mlruns", ""), True),
        (("azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/s", None), False),
        (("sqlite:///x.db", "azureml://eastus.api.azureml.ms/mlflow"), False),
        (("http://127.0.0.1:5000", None), False),
    ],
)
def test_only_local_uris_hide_the_plugin(uris: tuple[str | None, ...], hidden: bool) -> None:
    assert all(mlflow_local.is_local(u) for u in uris) is hidden


def _schema(db: Path) -> tuple[list[tuple[str, list[str]]], str]:
    """Each table's and index's definition as its sorted clauses. MLflow's own migrations write a table's CHECK
    constraints in an order that varies from one process to the next (alembic's batch copy iterates a set, so
    PYTHONHASHSEED decides: two fresh builds of the same revision differ in clause order only), so the order is
    not compared; every column, constraint, index and the head revision are."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name"
        ).fetchall()
        head = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    return [(name, sorted(line.strip().rstrip(",") for line in sql.splitlines())) for name, sql in rows], head


def test_a_seeded_store_is_the_store_mlflow_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    seeded, built = tmp_path / "seeded" / "mlflow.db", tmp_path / "built" / "mlflow.db"
    assert mlflow_local.seed_sqlite(f"sqlite:///{seeded}")
    assert not mlflow_local.seed_sqlite(f"sqlite:///{seeded}")  # an existing store is never replaced
    built.parent.mkdir()
    for db in (seeded, built):
        client = MlflowClient(tracking_uri=f"sqlite:///{db}")
        client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    assert _schema(seeded) == _schema(built)
    # MLflow added its default experiment on first open, as for any store; the template held none.
    template = next((tmp_path / "cache" / "amlops").glob("mlflow-*-empty.db"))
    with sqlite3.connect(template) as conn:
        assert conn.execute("SELECT count(*) FROM experiments").fetchone()[0] == 0
    names = {e.name for e in MlflowClient(tracking_uri=f"sqlite:///{seeded}").search_experiments()}
    assert names == {"Default", "e"}


def test_the_planted_fault_a_broken_template_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = mlflow_local._template_path()
    template.parent.mkdir(parents=True)
    template.write_bytes(b"not a database")
    db = tmp_path / "s" / "mlflow.db"
    assert mlflow_local.seed_sqlite(f"sqlite:///{db}")
    assert _schema(db)[1]  # migrated to a head revision, from a rebuilt template
    assert _schema(template) == _schema(db)


def test_a_store_uri_with_query_options_seeds_the_file_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert mlflow_local.seed_sqlite(f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}?timeout=20")
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["mlflow.db"]
