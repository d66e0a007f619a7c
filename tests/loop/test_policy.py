"""The retrain policy: N of M windows, importance weighting, performance loss, cooldown, minimum rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amlops.config import PolicySettings
from amlops.drift.policy import WindowSignal, decide, weighted_drift_share

NOW = datetime(2025, 7, 1, tzinfo=UTC)
POLICY = PolicySettings(
    drift_windows_n=2,
    drift_windows_m=3,
    min_rows=10,
    cooldown_hours=72,
    performance_degradation=0.2,
    min_drift_importance_share=0.1,
)
IMPORTANCE = {"price": 0.5, "promotion": 0.3, "temperature": 0.15, "store_type": 0.05}


def w(i: int, drifted: tuple[str, ...] = (), mae: float | None = None, rows: int = 100) -> WindowSignal:
    return WindowSignal(window=f"w{i}", rows=rows, drifted_features=drifted, mae=mae)


def test_no_alarm_no_retrain() -> None:
    d = decide([w(1), w(2), w(3)], POLICY, model_version="1", importance=IMPORTANCE, now=NOW)
    assert d.action == "none"
    assert d.reasons[0] == "0 of the last 3 windows alarmed; the policy needs 2"


def test_two_of_three_drifted_windows_retrain_with_reasons() -> None:
    d = decide(
        [w(1), w(2, ("price",)), w(3, ("price", "promotion"))],
        POLICY,
        model_version="1",
        importance=IMPORTANCE,
        now=NOW,
    )
    assert d.retrain
    assert d.alarms == ["w2", "w3"]
    assert "w3: drift on price, promotion (80% of feature importance)" in d.reasons
    assert d.weighted_drift["w3"] == 0.8


def test_a_single_alarm_is_not_enough() -> None:
    d = decide([w(1), w(2), w(3, ("price",))], POLICY, model_version="1", importance=IMPORTANCE, now=NOW)
    assert not d.retrain


def test_drift_on_unimportant_features_does_not_alarm() -> None:
    d = decide(
        [w(1, ("store_type",)), w(2, ("store_type",)), w(3, ("store_type",))],
        POLICY,
        model_version="1",
        importance=IMPORTANCE,
        now=NOW,
    )
    assert not d.retrain
    assert weighted_drift_share(("store_type",), IMPORTANCE) == 0.05


def test_performance_loss_alone_triggers() -> None:
    d = decide(
        [w(1, mae=10), w(2, mae=13), w(3, mae=12.5)], POLICY, model_version="1", baseline_mae=10, now=NOW
    )
    assert d.retrain
    assert "w2: MAE 13 is +30% vs the champion's 10" in d.reasons


def test_small_windows_are_not_counted() -> None:
    d = decide(
        [w(1, ("price",), rows=5), w(2, ("price",), rows=5), w(3, ("price",))],
        POLICY,
        model_version="1",
        importance=IMPORTANCE,
        now=NOW,
    )
    assert not d.retrain
    assert "2 window(s) below min_rows=10 not counted" in d.reasons


def test_cooldown_blocks_a_retrain_storm() -> None:
    signals = [w(1, ("price",)), w(2, ("price",)), w(3, ("price",))]
    recent = decide(
        signals,
        POLICY,
        model_version="1",
        importance=IMPORTANCE,
        last_retrain_at=NOW - timedelta(hours=10),
        now=NOW,
    )
    assert not recent.retrain and recent.reasons[0].startswith("cooldown: last retrain at")
    later = decide(
        signals,
        POLICY,
        model_version="1",
        importance=IMPORTANCE,
        last_retrain_at=NOW - timedelta(hours=80),
        now=NOW,
    )
    assert later.retrain


def test_dedupe_key_depends_on_champion_and_windows() -> None:
    signals = [w(1, ("price",)), w(2, ("price",))]
    a = decide(signals, POLICY, model_version="1", importance=IMPORTANCE, now=NOW)
    b = decide(signals, POLICY, model_version="1", importance=IMPORTANCE, now=NOW + timedelta(days=1))
    c = decide(signals, POLICY, model_version="2", importance=IMPORTANCE, now=NOW)
    assert a.dedupe_key == b.dedupe_key != c.dedupe_key


def test_with_labels_drift_without_loss_is_not_an_alarm() -> None:
    # Seasons or a covariate shift the model copes with: features drift, the error does not rise.
    signals = [w(1, ("price",), mae=10.5), w(2, ("price",), mae=10.2), w(3, ("price",), mae=9.9)]
    d = decide(signals, POLICY, model_version="1", importance=IMPORTANCE, baseline_mae=10, now=NOW)
    assert not d.retrain


def test_with_labels_drift_and_loss_together_give_both_reasons() -> None:
    signals = [w(1), w(2, ("price",), mae=14), w(3, ("price", "promotion"), mae=15)]
    d = decide(signals, POLICY, model_version="1", importance=IMPORTANCE, baseline_mae=10, now=NOW)
    assert d.retrain
    assert "w3: drift on price, promotion (80% of feature importance)" in d.reasons
    assert "w3: MAE 15 is +50% vs the champion's 10" in d.reasons


def test_drift_alone_alarms_when_confirmation_is_off() -> None:
    policy = POLICY.model_copy(update={"confirm_drift_with_labels": False})
    signals = [w(1, ("price",), mae=10.5), w(2, ("price",), mae=10.2), w(3, ("price",), mae=9.9)]
    d = decide(signals, policy, model_version="1", importance=IMPORTANCE, baseline_mae=10, now=NOW)
    assert d.retrain


def test_scale_free_wape_is_preferred_to_mae() -> None:
    # A busy summer: MAE up 40 % with demand, WAPE flat — not a loss of accuracy.
    busy = [WindowSignal(f"w{i}", 100, (), mae=14.0, wape=0.30) for i in range(3)]
    d = decide(busy, POLICY, model_version="1", baseline_mae=10, baseline_wape=0.30, now=NOW)
    assert not d.retrain
    worse = [WindowSignal(f"w{i}", 100, (), mae=10.0, wape=0.45) for i in range(3)]
    d = decide(worse, POLICY, model_version="1", baseline_mae=10, baseline_wape=0.30, now=NOW)
    assert d.retrain and "w2: WAPE 45.0% is +50% vs the champion's 30.0%" in d.reasons
