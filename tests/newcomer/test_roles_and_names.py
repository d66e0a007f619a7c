"""Column roles come from the schema (one home), flags and set keys override it; MLflow runs have readable names."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.commands.monitor import set_roles
from amlops.config import Settings
from amlops.errors import UsageError
from amlops.job_inputs import column_roles, monitoring_inputs, scoring_inputs
from amlops.tracking import RUN_NOTE_TAG, event_note, log_scoring_run, run_name, start_run_args

SCHEMA = """\
name: orders
date_column: order_day
target: qty
features: {numeric: [unit_price]}
columns:
  order_day: {dtype: date}
  unit_price: {dtype: float}
  qty: {dtype: int}
"""


def _settings(tmp_path: Path, schema: str = SCHEMA) -> Settings:
    (tmp_path / "orders.yaml").write_text(schema, encoding="utf-8")
    return Settings.model_validate({"data": {"schema_file": "orders.yaml"}, "base_dir": tmp_path})


def test_the_schema_gives_the_roles_to_scoring_and_monitoring(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.base_dir = tmp_path
    roles = column_roles(s)
    # No id column in the schema: the built-in name, which the scoring step generates.
    assert roles == {
        "timestamp_column": "order_day",
        "id_column": "row_id",
        "label_column": "qty",
        "prediction_column": "prediction",
    }
    data = tmp_path / "new.csv"
    data.write_text("order_day,unit_price\n2024-01-01,1.0\n")
    inputs, _ = monitoring_inputs(s, str(data), profile=str(data))
    assert (inputs["timestamp_column"], inputs["label_column"]) == ("order_day", "qty")
    assert scoring_inputs(s, str(data), str(tmp_path), "1")["id_column"] == "row_id"


def test_a_flag_or_a_set_key_wins_over_the_schema(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.base_dir = tmp_path
    set_roles(s, label_column="actual", id_column=None, timestamp_column="ts")
    roles = column_roles(s)
    assert (roles["label_column"], roles["timestamp_column"]) == ("actual", "ts")
    assert roles["id_column"] == "row_id"  # a flag not given changes nothing


def test_the_planted_fault_a_key_left_at_its_default_does_not_beat_the_schema(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    s.base_dir = tmp_path
    assert s.monitor.label_column == "units_sold"  # the built-in default
    assert column_roles(s)["label_column"] == "qty"
    s.monitor.label_column = "units_sold"  # set explicitly (as amlops.yaml or a flag would): now it wins
    assert column_roles(s)["label_column"] == "units_sold"


def test_a_configured_schema_that_is_missing_is_a_usage_error(tmp_path: Path) -> None:
    s = Settings.model_validate({"data": {"schema_file": "nope.yaml"}})
    s.base_dir = tmp_path
    with pytest.raises(UsageError, match=r"nope\.yaml not found"):
        column_roles(s)
    assert column_roles(Settings(base_dir=tmp_path))["label_column"] == "units_sold"  # no schema, defaults


def test_run_names_people_can_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_name("score", "demand-forecaster", "3", "20261130-064547-622402_score") == (
        "score demand-forecaster v3 (20261130-064547-622402)"
    )
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    assert start_run_args("train x", "note") == {"run_name": "train x", "description": "note"}
    monkeypatch.setenv("MLFLOW_RUN_ID", "aml-job-run")  # inside an Azure ML job: keep the job's name
    assert start_run_args("train x", "note") == {"description": "note"}
    note = event_note(
        {
            "time": "2026-11-30T06:46:01Z",
            "action": "promote",
            "version": "2",
            "previous": "1",
            "actor": "pipeline:abc",
            "reason": "gate passed",
        }
    )
    assert note == "2026-11-30 06:46 UTC: v2 promoted to champion (was v1) by pipeline:abc: gate passed"


def test_a_scoring_job_is_a_run_in_its_experiment(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    s = Settings(base_dir=tmp_path)
    run_id = log_scoring_run(
        s,
        "amlops-scoring",
        model="m",
        version="4",
        data="new.csv",
        predictions="out/",
        rows=1234,
        files=1,
        pipeline_run="20261130-070000-abcdef",
    )
    client = MlflowClient(tracking_uri=s.tracking_uri)
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "amlops-scoring"
    assert run.info.run_name == "score m v4 (20261130-070000-abcdef)"
    assert run.data.tags["model.version"] == "4" and "1,234" in run.data.tags[RUN_NOTE_TAG]
    assert run.data.metrics["rows"] == 1234 and run.info.status == "FINISHED"


def test_a_folder_without_amlops_yaml_gets_the_shipped_schemas_roles_even_when_every_key_is_set(
    tmp_path: Path,
) -> None:
    """`amlops demo` in an empty folder: its settings are rebuilt from a dump, so every key counts as set,
    `data.schema_file` too, at its default name, which does not exist there. Training falls back to the shipped
    schema (Settings.schema_path); the column roles must find it the same way, not stop the demo with "not
    found"."""
    from amlops.demo import demo_settings

    base = Settings.model_validate({"base_dir": tmp_path})
    settings = demo_settings(base, tmp_path / "demo")
    assert "schema_file" in settings.data.model_fields_set
    shipped = settings.schema_path()
    assert shipped.is_file() and not shipped.is_relative_to(tmp_path)
    assert column_roles(settings)["label_column"] == "units_sold"
    # A schema file the user named and that is missing still stops the command, naming it.
    settings.data.schema_file = "mine.yaml"
    with pytest.raises(UsageError, match=r"data\.schema_file: .*mine\.yaml not found"):
        column_roles(settings)


def test_the_demo_uses_the_generators_schema_and_roles_not_the_projects(tmp_path: Path) -> None:
    """`amlops demo` in a project that declares its own data (its schema, its label column): the demo generates
    demand data, so it must train and monitor with the shipped schema's roles, or its first training stops on
    a missing column. The project's other settings still apply."""
    from amlops.config import shipped_schema
    from amlops.demo import demo_settings

    base = _settings(tmp_path)
    base.base_dir = tmp_path
    set_roles(base, label_column="qty", id_column="order_id", timestamp_column="order_day")
    base.train.seed = 5
    settings = demo_settings(base, tmp_path / "demo")
    assert settings.schema_path() == shipped_schema()
    assert column_roles(settings) == {
        "timestamp_column": "date",
        "id_column": "row_id",
        "label_column": "units_sold",
        "prediction_column": "prediction",
    }
    assert settings.train.seed == 5
