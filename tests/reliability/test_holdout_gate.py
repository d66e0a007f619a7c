"""Issue 15 #8: a few future-dated rows shrank the gate's holdout to one day, and the gate still passed
"confidently" on 12 rows. Now dates far beyond the data's own range are a validation finding (the rows are
quarantined with their reason), and the gate refuses to decide below a minimum holdout (rows and days): it fails
closed, says why, and the champion stays where it was."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from training_helpers import SCHEMA, run_steps

from amlops import registry
from amlops.config import Settings
from amlops.data.io import write_table
from amlops.data.schema import load_schema
from amlops.data.validate import BEYOND_RULE, validate_frame
from amlops.errors import EXIT_USAGE, UsageError
from amlops.job_inputs import training_inputs

WEAK = {"max_iter": 3}


def _future_rows(df: pd.DataFrame, n: int = 12, when: str = "2099-01-15") -> pd.DataFrame:
    last_day = df[df["date"] == df["date"].max()].head(n).copy()
    last_day["date"] = when
    last_day["row_id"] = when.replace("-", "") + last_day["row_id"].str[8:]
    return pd.concat([df, last_day], ignore_index=True)


def test_future_dated_rows_are_a_validation_finding(demand_df: pd.DataFrame) -> None:
    raw = _future_rows(demand_df.astype({"date": str}))
    report = validate_frame(raw, load_schema(SCHEMA), "sales.csv")
    assert report.rule_counts[("date", BEYOND_RULE)] == 12
    assert len(report.clean) == len(demand_df) and report.clean["date"].max() < pd.Timestamp("2030-01-01")
    assert set(report.quarantine["_reason"]) == {f"date: {BEYOND_RULE} ('2099-01-15')"}


def test_dense_recent_data_is_not_flagged(demand_df: pd.DataFrame) -> None:
    """The rule is about outliers, not the latest week: data ending today is its own range."""
    report = validate_frame(demand_df.astype({"date": str}), load_schema(SCHEMA), "sales.csv")
    assert ("date", BEYOND_RULE) not in report.rule_counts and report.bad_rows == 0


@pytest.fixture
def with_champion(
    tracked: Settings, demand_df: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):  # type: ignore[no-untyped-def]
    raw = write_table(demand_df, tmp_path / "raw" / "demand.csv")
    run_steps(tracked, raw, tmp_path / "first", monkeypatch, run_id="run-1", params=WEAK)
    assert registry.resolve_champion(tracked, tracked.model_name)[0] == "1"  # type: ignore[index]
    return tracked


def test_future_rows_no_longer_shrink_the_holdout(
    with_champion: Settings, demand_df: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = write_table(_future_rows(demand_df), tmp_path / "raw2" / "demand.csv")
    second = run_steps(with_champion, raw, tmp_path / "second", monkeypatch, run_id="run-2")
    verdict = json.loads((second.verdict / "verdict.json").read_text())
    assert verdict["holdout"]["days"] == with_champion.train.holdout_days  # not one day of 2099
    quarantined = pd.read_csv(next(second.quarantine.glob("*.csv")))
    assert len(quarantined) == 12 and quarantined["_reason"].str.contains(BEYOND_RULE).all()


def test_the_gate_refuses_to_decide_on_a_tiny_holdout(
    with_champion: Settings, demand_df: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproducer's shape without the validator's help: the last holdout_days hold a single day of rows
    (a gap too short to be a finding). The old gate passed this "confidently" — one day resampled is always the
    same day, so the interval has no width."""
    dates = pd.to_datetime(demand_df["date"])
    last = dates.max()
    cut = last - pd.Timedelta(days=with_champion.train.holdout_days - 1)
    thin = demand_df[(dates < cut) | (dates == last)]
    raw = write_table(thin, tmp_path / "raw3" / "demand.csv")
    second = run_steps(with_champion, raw, tmp_path / "third", monkeypatch, run_id="run-3")
    verdict = json.loads((second.verdict / "verdict.json").read_text())
    assert not verdict["passed"]
    assert verdict["reasons"][0] == (
        "holdout too small to decide: 12 row(s) over 1 day(s), the gate needs at least 50 rows and 7 days "
        "(gate.min_holdout_rows / min_holdout_days; future-dated rows shrink the holdout to their own days)"
    )
    assert registry.resolve_champion(with_champion, with_champion.model_name)[0] == "1"  # type: ignore[index]


def test_min_holdout_days_above_holdout_days_is_a_config_error(tmp_path: Path) -> None:
    s = Settings(base_dir=tmp_path)
    s.train.holdout_days = 5
    data = tmp_path / "d.csv"
    data.write_text("date\n")
    with pytest.raises(
        UsageError, match=r"gate.min_holdout_days \(7\) is more than train.holdout_days \(5\)"
    ) as info:
        training_inputs(s, str(data))
    assert info.value.exit_code == EXIT_USAGE


def test_the_minimums_reach_the_pipeline(tmp_path: Path) -> None:
    s = Settings(base_dir=tmp_path)
    s.gate.min_holdout_rows, s.gate.min_holdout_days = 500, 14
    data = tmp_path / "d.csv"
    data.write_text("date\n")
    inputs = training_inputs(s, str(data))
    assert (inputs["min_holdout_rows"], inputs["min_holdout_days"]) == ("500", "14")
