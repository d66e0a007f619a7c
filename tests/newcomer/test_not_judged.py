"""A window below the minimum reads "not judged (1,400 < 5,000 rows)" with the flags that change it, never "ok";
result.json never says drift in one place and no drift in another."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from amlops.commands.monitor import print_summary
from amlops.data.generate import GeneratorConfig, generate
from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.profile import build_profile
from amlops.drift.result import MonitorResult


def _monitor(min_window_rows: int, window: str = "weekly") -> MonitorResult:
    full = generate(GeneratorConfig(days=245, drift_date=date(2024, 7, 1), drifts=("price_shift",)))
    full["prediction"] = full["units_sold"] * 1.0
    profile = build_profile(
        full[full["date"] < "2024-05-06"], ["price", "temperature"], ["store_id"], prediction="prediction"
    )
    current = pa.Table.from_pandas(full[full["date"] >= "2024-06-03"], preserve_index=False)
    options = MonitorOptions(
        window=window,
        timestamp_column="date",
        prediction_column="prediction",
        min_window_rows=min_window_rows,
    )
    return run_monitor([current], profile, options)


def test_windows_below_the_minimum_are_not_judged_and_say_how_to_change_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _monitor(5000)
    v = result.verdict
    assert v.status == "insufficient_data"
    assert "1,400 < 5,000" in v.summary and "--window all" in v.summary and "--min-window-rows" in v.summary
    # The pooled data would drift, but nothing was judged: the result says the same everywhere.
    assert result.overall.drift_detected is False and not any(
        f.drifted for f in result.overall.features.values()
    )
    print_summary(result, Path("report.html"))
    printed = capsys.readouterr().out
    assert "not judged (1,400 < 5,000 rows)" in printed and "--min-window-rows N" in printed
    assert "prediction drift: not judged" in printed and " ok " not in printed.replace("ok (", "")


def test_judged_windows_say_ok_and_the_result_agrees_with_itself(capsys: pytest.CaptureFixture[str]) -> None:
    """The planted contrast: the same data with the default minimum is judged, drifts, and says so once."""
    result = _monitor(500)
    assert result.verdict.status == "drift"
    assert result.overall.drift_detected == result.verdict.drift_detected
    assert set(result.overall.drifted_features) == set(result.verdict.drifted_features)
    print_summary(result, Path("report.html"))
    printed = capsys.readouterr().out
    assert "not judged" not in printed and "price (from 2024-W27)" in printed


def test_one_window_over_all_rows_is_judged_on_its_own() -> None:
    result = _monitor(500, window="all")
    assert result.windows == [] and result.overall.judged
    assert result.verdict.drift_detected == result.overall.drift_detected
