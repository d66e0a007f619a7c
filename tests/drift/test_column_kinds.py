"""A 0/1 column is compared as categories: no alarm on what is not a change, an alarm on a real change of its rate.

Foreign data (not the demo generator's), through the monitor step as a pipeline runs it, with the reference
profiled on the fly. Two 0/1 columns, each planted both ways:
- `closed`: a property of the day (a shop closed for a public holiday), set on 2 of 126 reference days. A week
  has no such day, or one: its share is 0 % or 14 %, never the reference's 1.6 %. Compared as a number
  (normalized Wasserstein) every week without a closed day drifts; compared as categories only the week with one.
- `returned`: a property of the row, 10 % in the reference. Its weekly share moves by sampling only until week 7,
  when it rises to 25 %: from then on every week drifts, before it none.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amlops.drift import kinds
from amlops.drift.profile import build_profile
from amlops.steps import monitor as step

ROWS_PER_DAY = 200
CHANGE_WEEK = 7  # `returned` rises from 10 % to 25 % from this week (1-based) of the current data on
CLOSED_CURRENT_DAY = 30  # day index of the one closed day in the current data (week 5)


def _frame(days: int, start: str, closed_days: list[int], rate: np.ndarray, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days), ROWS_PER_DAY)
    return pd.DataFrame(
        {
            "order_day": pd.Timestamp(start) + pd.to_timedelta(day, unit="D"),
            "basket": rng.lognormal(3.0, 0.5, day.size),
            "closed": np.isin(day, closed_days).astype(np.int64),
            "returned": (rng.random(day.size) < rate[day]).astype(np.int64),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("foreign")
    reference = _frame(126, "2024-01-01", [0, 120], np.full(126, 0.10), seed=1)
    days = 13 * 7
    rate = np.where(np.arange(days) >= (CHANGE_WEEK - 1) * 7, 0.25, 0.10)
    current = _frame(days, "2024-06-03", [CLOSED_CURRENT_DAY], rate, seed=2)
    reference.to_parquet(folder / "reference.parquet", index=False)
    current.to_parquet(folder / "current.parquet", index=False)
    return folder / "reference.parquet", folder / "current.parquet"


def _weeks_drifted(data: tuple[Path, Path], out: Path, kinds_declared: dict[str, str] | None) -> dict:
    reference, current = data
    result = step.monitor(
        str(current),
        out,
        reference_data=str(reference),
        window="weekly",
        timestamp_column="order_day",
        min_window_rows=500,
        column_kinds=kinds_declared,
    )
    judged = [w for w in result.windows if w.judged]
    assert len(judged) == 13
    return {
        f: [i + 1 for i, w in enumerate(judged) if f in w.drifted_features] for f in ("closed", "returned")
    }


def test_zero_one_columns_alarm_on_real_changes_only(data: tuple[Path, Path], tmp_path: Path) -> None:
    drifted = _weeks_drifted(data, tmp_path / "auto", None)
    assert drifted["closed"] == [CLOSED_CURRENT_DAY // 7 + 1]  # the week with a closed day, no other
    assert drifted["returned"] == list(range(CHANGE_WEEK, 14))  # from the change on, every week, none before
    html = (tmp_path / "auto" / "report.html").read_text(encoding="utf-8")
    row = re.search(r"<tr[^>]*data-feature='closed'>(.*?)</tr>", html)
    assert row, "no feature row for closed"
    text = re.sub(r"<[^>]+>", " ", row.group(1))
    assert "categorical (number, 2 distinct values)" in " ".join(text.split())
    assert "(2024-W27)" in text  # the worst window: the week with the closed day


def test_declared_numeric_brings_back_the_weekly_alarm(data: tuple[Path, Path], tmp_path: Path) -> None:
    """The planted fault: the same columns compared as numbers. A day-level flag then drifts in every week (a
    week without a closed day: |0 - 1.6 %| / 0.125 = 0.127 > 0.1), which is what the rule above prevents."""
    drifted = _weeks_drifted(data, tmp_path / "numeric", {"closed": "numeric", "returned": "numeric"})
    assert drifted["closed"] == list(range(1, 14))
    assert drifted["returned"] == list(range(CHANGE_WEEK, 14))  # both ways see the real change


def test_the_rule_and_its_overrides() -> None:
    frame = pd.DataFrame(
        {
            "flag": np.r_[np.zeros(90), np.ones(10)],
            "five": np.arange(100) % 5,
            "six": np.arange(100) % 6,
            "x": np.linspace(0, 1, 100),
        }
    )
    profile = build_profile(frame, ["flag", "five", "six", "x"], [])
    auto = kinds.with_comparison_kinds(profile)
    assert set(auto.categorical) == {"flag", "five"} and set(auto.numeric) == {"six", "x"}
    assert auto.categorical["flag"].categories == {"0": 90, "1": 10}
    assert auto.metadata[kinds.METADATA_KEY] == {"flag": "2 distinct values", "five": "5 distinct values"}
    declared = kinds.with_comparison_kinds(
        profile, {"flag": "numeric", "six": "categorical", "other": "numeric"}
    )
    assert set(declared.categorical) == {"five", "six"}
    assert declared.metadata[kinds.METADATA_KEY]["six"] == "declared in the schema"
    assert set(profile.numeric) == {"flag", "five", "six", "x"}, "the stored profile is left as it was"
    # Declared categorical: compared as categories while the profile counted each value exactly (up to its
    # bins); a continuous column has no exact counts to compare and stays a number.
    assert "x" in kinds.with_comparison_kinds(profile, {"x": "categorical"}).categorical
    wide = build_profile(pd.DataFrame({"x": np.linspace(0, 1, 2_000)}), ["x"], [])
    assert "x" in kinds.with_comparison_kinds(wide, {"x": "categorical"}).numeric


def test_category_names_meet_the_current_values() -> None:
    """Reference values are named as the monitor names current ones (Arrow's cast to text), for int and float
    columns alike: 1, 1.0 and "1" are one category."""
    assert kinds.value_labels(np.array([0.0, 1.0, 2.5, -3.0])) == ["0", "1", "2.5", "-3"]


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError, match="name=numeric"):
        kinds.parse_declared("holiday=ordinal")
    assert kinds.parse_declared(" a=numeric, b=categorical ,") == {"a": "numeric", "b": "categorical"}
    assert kinds.parse_declared(kinds.declared_text({"b": "numeric", "a": "categorical"})) == {
        "a": "categorical",
        "b": "numeric",
    }
    text = build_profile(pd.DataFrame({"s": ["a", "b"]}), [], ["s"])
    with pytest.raises(ValueError, match="text column"):
        kinds.with_comparison_kinds(text, {"s": "numeric"})


SCHEMA = """\
name: orders
date_column: order_day
target: qty
features:
  numeric: [closed, rating]
columns:
  order_day: {dtype: date}
  closed: {dtype: int, allowed: [0, 1], monitor_as: numeric}
  rating: {dtype: int, monitor_as: categorical}
  qty: {dtype: int}
"""


def test_the_schema_declares_kinds_and_the_monitor_receives_them(tmp_path: Path) -> None:
    from amlops.config import Settings
    from amlops.data.schema import SchemaFileError, load_schema, parse_schema
    from amlops.job_inputs import monitoring_inputs

    path = tmp_path / "orders.yaml"
    path.write_text(SCHEMA, encoding="utf-8")
    schema = load_schema(path)
    assert schema.monitor_as == {"closed": "numeric", "rating": "categorical"}
    settings = Settings(base_dir=tmp_path)
    settings.data.schema_file = str(path)
    data = tmp_path / "new.csv"
    data.write_text("order_day,closed\n2026-01-01,1\n")
    inputs, _ = monitoring_inputs(settings, str(data), model="m@champion")
    assert kinds.parse_declared(inputs["column_kinds"]) == schema.monitor_as
    import yaml

    raw = yaml.safe_load(SCHEMA)
    raw["columns"]["closed"]["monitor_as"] = "ordinal"
    with pytest.raises(
        SchemaFileError, match=r"columns\.closed\.monitor_as: must be one of numeric, categorical"
    ):
        parse_schema(raw, "orders.yaml")
    raw["columns"]["order_day"]["monitor_as"] = "numeric"
    raw["columns"]["closed"]["monitor_as"] = "numeric"
    with pytest.raises(SchemaFileError, match="a date column cannot be compared as numeric"):
        parse_schema(raw, "orders.yaml")


@pytest.mark.parametrize("share_now", [0.3, 0.6], ids=["same-share", "doubled-share"])
def test_a_bool_column_compared_as_categories_meets_its_current_values(
    tmp_path: Path, share_now: float
) -> None:
    """A bool column is profiled as a discrete number (0/1) but Arrow spells current bools "true"/"false": the
    reference's category names must be spelt the same, or every value looks unseen and the column always
    drifts (a review found JS 1.0 on an unchanged 30 % share)."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"a": rng.normal(size=4_000), "flag": rng.random(4_000) < 0.3})
    build_profile(ref, ["a", "flag"], []).to_json(tmp_path / "profile.json")
    current = tmp_path / "current"
    current.mkdir()
    pd.DataFrame({"a": rng.normal(size=2_000), "flag": rng.random(2_000) < share_now}).to_parquet(
        current / "part.parquet"
    )
    result = step.monitor(
        str(current), tmp_path / "out", reference_profile=str(tmp_path / "profile.json"), window="all"
    )
    flag = result.overall.features["flag"]
    assert "jensen_shannon_distance" in flag.metrics
    assert flag.drifted is (share_now != 0.3)


@pytest.mark.parametrize("reference_type", ["int64", "bool"])
def test_a_flag_stored_as_booleans_on_one_side_and_numbers_on_the_other_is_the_same_flag(
    reference_type: str,
) -> None:
    """A 0/1 flag the reference stored one way (numbers: "0"/"1"; booleans: "false"/"true") and the current data
    the other: the same values, no drift, nothing unseen. Before, every current row was an unseen category and the
    flag drifted at its maximum; a folder mixing both read as numbers in one process and each file's own type in
    the map."""
    import pyarrow as pa

    from amlops.drift.monitor import MonitorOptions, run_monitor

    rng = np.random.default_rng(3)
    flag = rng.random(4_000) < 0.3
    reference = pd.DataFrame({"x": rng.normal(size=2_000), "flag": flag[:2_000].astype(reference_type)})
    profile = kinds.with_comparison_kinds(build_profile(reference, ["x", "flag"], []))
    assert "flag" in profile.categorical
    current_type = pa.int64() if reference_type == "bool" else pa.bool_()
    current = pa.table({"x": rng.normal(size=2_000), "flag": pa.array(flag[2_000:]).cast(current_type)})
    result = run_monitor([current], profile, MonitorOptions())
    summary = result["overall"]["features"]["flag"]
    assert summary["summary"]["unseen_count"] == 0
    assert not summary["drifted"]
