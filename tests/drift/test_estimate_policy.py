"""The policy acts on the estimated error while labels are missing; labels overrule it."""

from __future__ import annotations

from datetime import UTC, datetime

from amlops.config import PolicySettings
from amlops.drift.policy import WindowSignal, decide, estimate_signal, estimated_alarm, window_alarm
from amlops.drift.policy import window_signals as signals
from amlops.drift.result import EstimatedPerformance, Performance, WindowResult

NOW = datetime(2025, 7, 1, tzinfo=UTC)
POLICY = PolicySettings(drift_windows_n=2, drift_windows_m=3, min_rows=10, performance_degradation=0.2)
REF = {"estimated_mae": 2.0, "mean_prediction": 10.0, "realized_mae": 2.0, "rows": 1000.0}


def est(
    i: int,
    low: float | None,
    mid: float | None = None,
    mae: float | None = None,
    drifted_features: tuple[str, ...] = (),
) -> WindowSignal:
    return WindowSignal(
        window=f"w{i}",
        rows=100,
        drifted_features=drifted_features,
        mae=mae,
        estimated_loss_low=low,
        estimated_loss=mid if mid is not None else low,
    )


def test_an_unlabelled_window_alarms_on_a_confident_estimated_rise() -> None:
    alarm, reasons, _ = window_alarm(est(1, 0.35, 0.5), POLICY, None, baseline_mae=2.0)
    assert alarm
    assert "estimated error (no labels yet) +50%" in reasons[0] and "at least +35%" in reasons[0]


def test_the_low_end_of_the_interval_decides_not_the_middle() -> None:
    """A rise whose middle is past the limit but whose interval reaches below it is not confident."""
    alarm, _, _ = window_alarm(est(1, 0.1, 0.5), POLICY, None, baseline_mae=2.0)
    assert not alarm
    assert estimated_alarm(est(1, 0.21, 0.3), POLICY)[0]
    assert not estimated_alarm(est(1, 0.19, 0.3), POLICY)[0]


def test_labels_overrule_the_estimate() -> None:
    # The estimate says +60 %, the labels say the error held: no alarm.
    calm = est(1, 0.6, mae=2.1)
    assert not window_alarm(calm, POLICY, None, baseline_mae=2.0)[0]
    # The estimate says nothing, the labels say +50 %: alarm, with the measured reason only.
    hurt = est(1, -0.1, mae=3.0)
    alarm, reasons, _ = window_alarm(hurt, POLICY, None, baseline_mae=2.0)
    assert alarm and all("estimated" not in r for r in reasons)


def test_with_an_estimate_drift_alone_does_not_alarm() -> None:
    """The estimate stands in for labels: drift the model copes with (estimated error flat) is no alarm."""
    flat = est(1, -0.05, 0.02, drifted_features=("price",))
    assert not window_alarm(flat, POLICY, {"price": 1.0}, baseline_mae=2.0)[0]
    no_estimate = WindowSignal(window="w1", rows=100, drifted_features=("price",))
    assert window_alarm(no_estimate, POLICY, {"price": 1.0}, baseline_mae=2.0)[0]


def test_two_estimated_alarms_retrain_before_any_label() -> None:
    d = decide([est(1, 0.0), est(2, 0.4), est(3, 0.5)], POLICY, model_version="1", now=NOW)
    assert d.retrain and d.alarms == ["w2", "w3"]


def window(
    mae: float, low: float, mean_prediction: float, labelled: float | None = None, unsupported: float = 0.0
) -> WindowResult:
    return WindowResult(
        window="2025-W10",
        start="2025-03-03",
        end="2025-03-10",
        row_count=500,
        status="ok",
        drift_detected=False,
        drifted_features=[],
        features={},
        data_quality_findings=[],
        prediction_drift=None,
        performance=None
        if labelled is None
        else Performance(count=500, mae=labelled, rmse=None, mape=None, wape=None),
        estimated_performance=EstimatedPerformance(
            count=500,
            mae=mae,
            rmse=None,
            mae_low=low,
            mae_high=mae * 1.2,
            mean_prediction=mean_prediction,
            unsupported_share=unsupported,
            reference=REF,
        ),
    )


def test_the_signal_is_scale_free() -> None:
    """Error per unit predicted vs the holdout's: twice the demand with twice the error is no loss."""
    same = estimate_signal(window(mae=4.0, low=3.6, mean_prediction=20.0))
    assert same["estimated_loss"] == 0.0
    assert abs((same["estimated_loss_low"] or 0) - (-0.1)) < 1e-9
    worse = estimate_signal(window(mae=3.0, low=2.8, mean_prediction=10.0))
    assert abs((worse["estimated_loss_low"] or 0) - 0.4) < 1e-9


def test_loop_signals_carry_the_estimate() -> None:
    from amlops.drift.result import MonitorResult

    w = window(mae=3.0, low=2.8, mean_prediction=10.0)
    result = MonitorResult.model_construct(windows=[w])  # type: ignore[call-arg]
    [signal] = signals(result)
    assert signal.estimated_loss_low is not None and signal.estimated_loss_low > 0.2


def test_an_estimate_of_rows_it_never_saw_is_not_used() -> None:
    """A flat estimate over rows outside the estimator's range must not silence the drift alarm on them."""
    outside = window(mae=2.0, low=1.8, mean_prediction=10.0, unsupported=0.4)
    assert estimate_signal(outside) == {}
    drifted = WindowSignal(window="w1", rows=100, drifted_features=("price",), **estimate_signal(outside))
    assert window_alarm(drifted, POLICY, {"price": 1.0}, baseline_mae=2.0)[0]
    inside = window(mae=2.0, low=1.8, mean_prediction=10.0, unsupported=0.02)
    assert estimate_signal(inside)["estimated_loss"] == 0.0


def test_a_retrain_on_the_estimate_says_so_first_not_drift() -> None:
    """The demo's story: the changed weeks drift and the estimate alarms (no labels yet). Under
    `confirm_drift_with_labels` the estimate decided, so the decision's first lines (a promotion keeps two)
    name it, not the drift listed beside it."""
    importance = {"price": 1.0}
    d = decide(
        [est(1, 0.35, 0.5, drifted_features=("price",)), est(2, 0.3, 0.4, drifted_features=("price",))],
        POLICY,
        model_version="1",
        importance=importance,
        now=NOW,
    )
    assert d.retrain
    first, second = d.reasons[:2]
    assert "on the estimated error (no labels yet) in 2" in first and "drift" not in first
    assert second.startswith("w1: estimated error (no labels yet)")
    assert "w1: drift on price (100% of feature importance)" in d.reasons[2:]


def test_a_retrain_names_each_trigger_it_rests_on() -> None:
    """Labels for one window (measured loss), the estimate for the next, drift alone when confirmation is off."""
    d = decide(
        [est(1, -0.1, mae=3.0), est(2, 0.35, 0.5)], POLICY, model_version="1", baseline_mae=2.0, now=NOW
    )
    assert d.retrain and d.reasons[0].endswith(
        "on the measured error (labels) in 1, the estimated error (no labels yet) in 1"
    )
    loose = POLICY.model_copy(update={"confirm_drift_with_labels": False})
    drifted = [est(i, -0.1, drifted_features=("price",)) for i in (1, 2)]
    d = decide(drifted, loose, model_version="1", importance={"price": 1.0}, now=NOW)
    assert d.retrain and d.reasons[0].endswith("on the drift of important features in 2")
