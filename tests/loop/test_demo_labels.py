"""The demo's late labels: the week the policy judges has no labels (its estimate only); the labels of an
earlier week arrive later and are judged on the measured error, against the champion that served that week."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from amlops.config import Settings
from amlops.demo import WeekRow, confirm_labels, demo_settings, judge_week, without_labels
from amlops.drift.policy import WindowSignal, window_signals
from amlops.drift.result import (
    CurrentInfo,
    EstimatedPerformance,
    MonitorResult,
    Performance,
    ReferenceInfo,
    RunSettings,
    Verdict,
    WindowResult,
)

REF = {"mae": 2.0, "wape": 0.2}
EST_REF = {"estimated_mae": 2.0, "mean_prediction": 10.0, "realized_mae": 2.0}


def window(measured_wape: float, est_mae: float, est_low: float) -> WindowResult:
    return WindowResult(
        window="2025-09-08/2025-09-14",
        start="2025-09-08",
        end="2025-09-14",
        row_count=800,
        status="ok",
        drift_detected=True,
        drifted_features=["product_id"],
        features={},
        data_quality_findings=[],
        prediction_drift=None,
        performance=Performance(
            count=800, mae=10 * measured_wape, rmse=None, mape=None, wape=measured_wape, reference=REF
        ),
        estimated_performance=EstimatedPerformance(
            count=800,
            mae=est_mae,
            rmse=None,
            mae_low=est_low,
            mae_high=est_mae * 1.2,
            mean_prediction=10.0,
            unsupported_share=0.0,
            reference=EST_REF,
        ),
    )


def signals(w: WindowResult | None) -> list[WindowSignal]:
    assert w is not None
    return window_signals(SimpleNamespace(windows=[w], overall=w))  # what the policy reads of a result


def test_the_week_the_policy_judges_has_no_labels_but_keeps_its_estimate() -> None:
    w = window(measured_wape=0.3, est_mae=3.0, est_low=2.8)
    [full] = signals(w)
    [judged] = signals(without_labels(w))
    assert full.wape == 0.3 and full.mae is not None
    assert judged.wape is None and judged.mae is None  # the labels have not arrived
    assert judged.estimated_loss_low == full.estimated_loss_low and judged.estimated_loss_low is not None
    assert judged.drifted_features == full.drifted_features
    stripped = without_labels(w)
    assert stripped is not None and stripped.performance is not None
    assert stripped.performance.reference == REF  # the champion's baseline stays known
    assert w.performance is not None and w.performance.wape == 0.3  # the monitor's window is not changed


def test_labels_that_arrive_later_are_judged_on_the_measured_error() -> None:
    settings = Settings()
    row = WeekRow(35, "2025-09-08", "v1", [], "ALARM", None, "-", True)
    # measured WAPE 0.3 vs the champion's 0.2: +50 %, past the default limit
    confirm_labels(row, ("1", window(0.3, 2.0, 1.9)), settings, {"1": None}, k=36)
    assert (row.mae, row.labels_week, row.measured_verdict) == (3.0, 37, "ALARM")
    calm = WeekRow(35, "2025-09-08", "v1", [], "ok", None, "-", True)
    # the estimate would alarm, the labels say the error held: labels overrule it
    confirm_labels(calm, ("1", window(0.2, 4.0, 3.8)), settings, {"1": None}, k=36)
    assert calm.measured_verdict == "ok"


def monitored(overall: WindowResult, windows: list[WindowResult]) -> MonitorResult:
    """A champion's weekly monitoring run, as the demo keeps it (only what the policy reads is filled in)."""
    return MonitorResult(
        created_at="2025-09-15T00:00:00+00:00",
        settings=RunSettings(
            window="weekly",
            timestamp_column="date",
            id_column="row_id",
            prediction_column="prediction",
            label_column="units_sold",
            numeric_metric="psi",
            categorical_metric="psi",
            min_window_rows=300,
            thresholds={},
        ),
        reference=ReferenceInfo(
            row_count=1000,
            created_at=None,
            numeric_features=[],
            categorical_features=[],
            prediction_reference=None,
            metadata={},
        ),
        current=CurrentInfo(row_count=overall.row_count, missing_columns=[]),
        verdict=Verdict(
            status="drift",
            drift_detected=True,
            drifted_features=list(overall.drifted_features),
            first_drifted_window=None,
            drifted_window_count=len(windows),
            window_count=len(windows),
            evaluated_window_count=len(windows),
            prediction_drift=False,
            data_quality_findings=[],
            performance=None,
            summary="",
        ),
        overall=overall,
        windows=windows,
    )


def test_a_week_without_a_window_is_not_judged(tmp_path: Path) -> None:
    """A week the policy sees no window for (neither its own nor one whose labels came) gets no decision: the
    same result without windows reads as its overall window, every monitored week at once, which alarms here."""
    from amlops.loop import evaluate_policy
    from amlops.retrain import FolderStore

    settings = demo_settings(Settings(), tmp_path)
    store = FolderStore(tmp_path / "retrain")
    week = window(measured_wape=0.3, est_mae=4.0, est_low=3.8)
    overall = week.model_copy(update={"window": "overall", "start": None, "end": None, "row_count": 8000})
    result = monitored(overall, [week])
    earlier = [WindowSignal(window="2025-W36", rows=800, estimated_loss_low=0.5, estimated_loss=0.6)]
    now = datetime(2025, 9, 15, tzinfo=UTC)
    decision, history = judge_week(settings, store, result, [], "1", {"1": None}, now, earlier)
    assert decision is None and history == earlier
    # what judging that week would have done: the whole run's overall window counted as this week's alarm
    wrong, _ = evaluate_policy(
        settings, store, result.model_copy(update={"windows": []}), "1", None, now, earlier
    )
    assert wrong.retrain and "overall" in wrong.alarms
    # a week with its window is judged as before
    decision, history = judge_week(settings, store, result, [week], "1", {"1": None}, now, earlier)
    assert decision is not None and decision.alarms == ["2025-W36", week.window]
    assert [s.window for s in history] == ["2025-W36", week.window]


def test_the_demos_change_keeps_the_quieter_half_inside_what_was_seen() -> None:
    """slow_movers: from the drift date the busiest half of the store x product pairs is gone; nothing new."""
    from datetime import date

    import pandas as pd

    from amlops.data.generate import GeneratorConfig, generate

    drift = date(2025, 3, 3)
    df = generate(
        GeneratorConfig(
            start=date(2025, 1, 6), days=84, stores=4, products=6, drift_date=drift, drifts=("slow_movers",)
        )
    )
    before, after = df[df["date"] < pd.Timestamp(drift)], df[df["date"] >= pd.Timestamp(drift)]
    pairs = lambda d: set(zip(d["store_id"], d["product_id"], strict=True))  # noqa: E731
    kept = pairs(after)
    assert kept < pairs(before) and len(kept) == len(pairs(before)) // 2
    volume = before.groupby(["store_id", "product_id"])["units_sold"].mean()
    stayed = volume[[p in kept for p in volume.index]]
    gone = volume[[p not in kept for p in volume.index]]
    assert stayed.max() < gone.mean() and stayed.mean() < 0.6 * gone.mean()
    for col in ("store_id", "store_type", "product_id", "product_category"):  # no value the model never saw
        assert set(after[col]) <= set(before[col])


def test_demand_scale_scales_the_counts() -> None:
    from datetime import date

    from amlops.data.generate import GeneratorConfig, generate

    cfg = {"start": date(2025, 1, 6), "days": 56, "stores": 4, "products": 6}
    full = generate(GeneratorConfig(**cfg))["units_sold"].mean()  # type: ignore[arg-type]
    small = generate(GeneratorConfig(**cfg, demand_scale=0.2))["units_sold"].mean()  # type: ignore[arg-type]
    assert small / full == pytest.approx(0.2, rel=0.1)


def test_level_shift_lowers_demand_from_the_drift_date_only() -> None:
    """level_shift (the demo's concept part): the same rows sell less from the drift date, by 25 % x strength;
    the rows before it are exactly those of the undrifted series."""
    from datetime import date

    import pandas as pd

    from amlops.data.generate import GeneratorConfig, generate

    drift = date(2025, 3, 3)
    cfg = {"start": date(2025, 1, 6), "days": 84, "stores": 4, "products": 6}
    plain = generate(GeneratorConfig(**cfg))  # type: ignore[arg-type]
    shifted = generate(GeneratorConfig(**cfg, drift_date=drift, drifts=("level_shift",), drift_strength=2.0))  # type: ignore[arg-type]
    before = plain["date"] < pd.Timestamp(drift)
    pd.testing.assert_frame_equal(plain[before], shifted[before])
    ratio = shifted.loc[~before, "units_sold"].mean() / plain.loc[~before, "units_sold"].mean()
    assert ratio == pytest.approx(0.5, rel=0.1)
    # the features do not move: only labels can show this change
    features = ["price", "promotion", "temperature", "holiday", "store_id", "product_id"]
    pd.testing.assert_frame_equal(plain[features], shifted[features])


def test_the_demo_config_refuses_labels_without_delay() -> None:
    from amlops.demo import DemoConfig

    with pytest.raises(ValueError, match="label_delay_weeks must be >= 1"):
        DemoConfig(label_delay_weeks=0)
    with pytest.raises(ValueError, match="train_weeks < change_week < weeks"):
        DemoConfig(weeks=30, change_week=35)
    assert DemoConfig.for_weeks(20).change_week < 20
