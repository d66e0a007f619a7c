"""The README's first session, verbatim, ends with a DRIFT verdict that names price and the week it started.

The commands are read from README.md (not copied here), so an edit to the README that breaks the story fails
this test. A second session runs the same train → score → monitor lines on a foreign CSV described by a schema
only (other column names, its own id column): the roles come from the schema, nothing else is configured.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from session import (
    assert_drift_from,
    first_session_commands,
    flag,
    new_project,
    run,
)

from amlops.config import MonitorSettings
from amlops.data.generate import GeneratorConfig, generate
from amlops.drift.result import MonitorResult

pytestmark = pytest.mark.slow


def _drift_date(commands: list[list[str]]) -> date:
    generate_new = next(c for c in commands if "--drift-date" in c)
    return date.fromisoformat(flag(generate_new, "--drift-date"))


def test_the_readme_first_session_shows_price_drift_from_the_drift_week(tmp_path: Path) -> None:
    commands = first_session_commands()
    assert [c[1] for c in commands] == ["data", "data", "train", "models", "score", "monitor", "history"]
    project = new_project(tmp_path / "project")
    outputs = {c[1]: run(c, project).output for c in commands}
    monitor = outputs["monitor"]
    assert monitor.startswith("DRIFT") or "\nDRIFT" in monitor, monitor
    assert "price" in monitor and "not judged" not in monitor
    reports = project / flag(next(c for c in commands if c[1] == "monitor"), "--out")
    result = MonitorResult.read(reports / "result.json")
    assert_drift_from(result, "price", _drift_date(commands))
    assert (reports / "report.html").is_file()
    # A 0/1 column is compared as categories: `holiday` drifts in the week of 4 July (1 day in 7 a holiday),
    # not in every week without one (docs/monitor.md, Column kinds).
    holiday = [w.window for w in result.windows if "holiday" in w.drifted_features]
    assert holiday == ["2024-W27"], holiday
    assert result.overall.features["holiday"].type == "categorical"


FOREIGN_SCHEMA = """\
name: orders
date_column: order_day
id_column: order_id
target: qty
features:
  numeric: [unit_price, on_offer, temp_c]
  categorical: [shop, sku]
columns:
  order_id: {dtype: string, unique: true}
  order_day: {dtype: date}
  shop: {dtype: string}
  sku: {dtype: string}
  unit_price: {dtype: float, min: 0.01}
  on_offer: {dtype: int, allowed: [0, 1]}
  temp_c: {dtype: float, nullable: true, max_null_share: 0.2}
  qty: {dtype: int, min: 0}
"""
FOREIGN_NAMES = {
    "row_id": "order_id",
    "date": "order_day",
    "store_id": "shop",
    "product_id": "sku",
    "price": "unit_price",
    "promotion": "on_offer",
    "temperature": "temp_c",
    "units_sold": "qty",
}


def _foreign(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(FOREIGN_NAMES)].rename(columns=FOREIGN_NAMES)
    out["order_id"] = "o-" + out["order_id"]
    return out


def test_the_same_session_on_a_foreign_csv_with_a_schema_only(tmp_path: Path) -> None:
    commands = first_session_commands()
    drift = _drift_date(commands)
    schema = tmp_path / "orders.yaml"
    schema.write_text(FOREIGN_SCHEMA, encoding="utf-8")
    project = new_project(tmp_path / "project", schema=schema)
    # The README's data, renamed: the same days before and after the drift as the README's two files.
    history_cmd, new_cmd = (c for c in commands if c[1:3] == ["data", "generate"])
    full = generate(
        GeneratorConfig(
            days=int(flag(new_cmd, "--days")), drift_date=drift, drifts=(flag(new_cmd, "--drift"),)
        )
    )
    cut = pd.Timestamp(flag(new_cmd, "--from"))
    assert cut == pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(flag(history_cmd, "--days")))
    history = full[full["date"] < cut]
    (project / "data").mkdir()
    _foreign(history).to_csv(project / flag(history_cmd, "--out"), index=False)
    _foreign(full[full["date"] >= cut]).to_csv(project / flag(new_cmd, "--out"), index=False)

    for c in commands:
        if c[1] in ("train", "score", "monitor"):
            out = run(c, project).output
    assert "DRIFT" in out and "unit_price" in out, out
    monitor_cmd = next(c for c in commands if c[1] == "monitor")
    result = MonitorResult.read(project / flag(monitor_cmd, "--out") / "result.json")
    assert result.settings.timestamp_column == "order_day" and result.settings.label_column == "qty"
    assert result.settings.id_column == "order_id"
    assert result.verdict.performance and result.verdict.performance.count > 0  # labels joined on order_id
    assert_drift_from(result, "unit_price", drift)

    # New data without any id column: ids are generated, written out, and the monitor still judges it.
    noid = pd.read_csv(project / flag(new_cmd, "--out")).drop(columns=["order_id"])
    noid.to_csv(project / "data" / "noid.csv", index=False)
    run(["amlops", "score", "--input", "data/noid.csv", "--out", "noid-predictions/"], project)
    written = pq.read_table(project / "noid-predictions" / "noid.parquet")
    assert written.column_names[0] == "order_id"
    ids = written.column("order_id").to_pylist()
    assert ids[:2] == ["noid:0", "noid:1"] and len(set(ids)) == len(ids)
    out = run(
        ["amlops", "monitor", "--current", "noid-predictions/", "--out", "noid-reports/"], project
    ).output
    assert_drift_from(MonitorResult.read(project / "noid-reports" / "result.json"), "unit_price", drift)
    assert "DRIFT" in out


def test_generator_and_monitor_defaults_agree() -> None:
    """A week of the generator's default data is a judged weekly window."""
    from amlops.commands.data import DEFAULT_PRODUCTS, DEFAULT_STORES

    config = GeneratorConfig()
    assert (config.stores, config.products) == (DEFAULT_STORES, DEFAULT_PRODUCTS)
    assert config.stores * config.products * 7 >= MonitorSettings().min_window_rows


def test_the_drift_check_fails_on_a_session_without_drift() -> None:
    """The planted fault for assert_drift_from: the same monitor on data without the price drift."""
    import pyarrow as pa

    from amlops.drift.monitor import MonitorOptions, run_monitor
    from amlops.drift.profile import build_profile

    full = generate(GeneratorConfig(days=245))
    prof = build_profile(full[full["date"] < "2024-05-06"], ["price"], ["product_id"])
    current = pa.Table.from_pandas(full[full["date"] >= "2024-06-03"], preserve_index=False)
    result = run_monitor([current], prof, MonitorOptions(window="weekly", timestamp_column="date"))
    with pytest.raises(AssertionError):
        assert_drift_from(result, "price", date(2024, 7, 1))
