"""The retrain policy: turn monitor results into an action, with reasons.

Retrain when drift on features that matter (weighted by the model's feature importance) or a measured loss of
performance persists for N of the last M windows — and only if the cooldown since the last retrain has passed and
the windows hold enough rows. Decisions rest on distances (the monitor's drifted flags), never on p-values alone.
Pure functions: the caller reads the monitor's JSON and the retrain ledger and records the decision.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from amlops.config import PolicySettings


@dataclass(frozen=True)
class WindowSignal:
    """What the policy needs from one monitored window."""

    window: str  # stable window label, e.g. "2025-06-02/2025-06-08"
    rows: int
    drifted_features: tuple[str, ...] = ()
    mae: float | None = None
    wape: float | None = None  # scale-free: preferred for the loss test when both sides have it
    # Before labels: the estimated error's rise over the champion's holdout level, scale-free (estimated MAE per
    # unit predicted, amlops.drift.estimate.relative_error), at the low end of its 95 % interval and at its value.
    estimated_loss_low: float | None = None
    estimated_loss: float | None = None


@dataclass
class Decision:
    action: str  # "retrain" | "none"
    reasons: list[str]
    dedupe_key: str
    alarms: list[str] = field(default_factory=list)  # windows that counted as alarms
    weighted_drift: dict[str, float] = field(
        default_factory=dict
    )  # window -> importance-weighted drift share

    @property
    def retrain(self) -> bool:
        return self.action == "retrain"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weighted_drift_share(drifted: tuple[str, ...] | list[str], importance: dict[str, float] | None) -> float:
    """Share of the model's total feature importance carried by the drifted features (0..1).

    Without importances every feature counts the same — the share of drifted features among those known.
    """
    if not drifted:
        return 0.0
    if not importance:
        return 1.0
    total = sum(max(v, 0.0) for v in importance.values())
    if total <= 0:
        return 1.0
    # A drifted feature the model does not know (e.g. a raw column it never used) carries no weight.
    return sum(max(importance.get(f, 0.0), 0.0) for f in drifted) / total


def _loss(
    signal: WindowSignal, baseline_mae: float | None, baseline_wape: float | None
) -> tuple[float, str] | None:
    """Relative error increase against the champion's holdout error: WAPE when both sides have it (demand
    levels move with seasons, so MAE alone rises in a busy summer), else MAE."""
    if signal.wape is not None and baseline_wape:
        loss = signal.wape / baseline_wape - 1.0
        return loss, f"WAPE {signal.wape:.1%} is {loss:+.0%} vs the champion's {baseline_wape:.1%}"
    if signal.mae is not None and baseline_mae:
        loss = signal.mae / baseline_mae - 1.0
        return loss, f"MAE {signal.mae:.3g} is {loss:+.0%} vs the champion's {baseline_mae:.3g}"
    return None


# What made a window alarm, as the decision's first line names it (a promotion's reason, GitHub's `reason`).
TRIGGER_DRIFT = "the drift of important features"
TRIGGER_MEASURED = "the measured error (labels)"
TRIGGER_ESTIMATED = "the estimated error (no labels yet)"


def window_alarm(
    signal: WindowSignal,
    policy: PolicySettings,
    importance: dict[str, float] | None,
    baseline_mae: float | None,
    baseline_wape: float | None = None,
) -> tuple[bool, list[str], float]:
    """(alarm?, reasons, weighted drift share) for one window: `judge_window` without the trigger names."""
    triggers, reasons, share = judge_window(signal, policy, importance, baseline_mae, baseline_wape)
    return bool(triggers), reasons, share


def judge_window(
    signal: WindowSignal,
    policy: PolicySettings,
    importance: dict[str, float] | None,
    baseline_mae: float | None,
    baseline_wape: float | None = None,
) -> tuple[list[str], list[str], float]:
    """(what made the window alarm, reasons, weighted drift share); no trigger, no alarm.

    Drift on features that carry at least `min_drift_importance_share` of the importance is an alarm on its own
    while labels are missing (the early warning). Once the window has labels, measured performance decides
    (`confirm_drift_with_labels`): drift with no loss of accuracy is drift the model copes with. The reasons
    name the triggers first; drift that did not decide follows them as context.
    """
    share = weighted_drift_share(signal.drifted_features, importance)
    drift_alarm = bool(signal.drifted_features) and share >= policy.min_drift_importance_share
    drift_text = (
        f"{signal.window}: drift on {', '.join(signal.drifted_features)} ({share:.0%} of feature importance)"
    )
    # Labels overrule the estimate; the estimate, when there is one, stands in for labels until they come
    # (`confirm_drift_with_labels`: drift counts only when an error signal, measured or estimated, agrees).
    measured = _loss(signal, baseline_mae, baseline_wape)
    error: tuple[bool, str, str] | None = None  # (alarm?, reason, trigger)
    if measured is not None:
        loss, text = measured
        error = (loss > policy.performance_degradation, f"{signal.window}: {text}", TRIGGER_MEASURED)
    elif signal.estimated_loss_low is not None:
        est_alarm, est_text = estimated_alarm(signal, policy)
        error = (est_alarm, est_text, TRIGGER_ESTIMATED)
    drift_counts = drift_alarm and not (policy.confirm_drift_with_labels and error is not None)
    triggers: list[str] = []
    reasons: list[str] = []
    if error is not None and error[0]:
        triggers.append(error[2])
        reasons.append(error[1])
    if drift_counts:
        triggers.append(TRIGGER_DRIFT)
        reasons.append(drift_text)
    elif triggers and drift_alarm:
        reasons.append(drift_text)
    return triggers, reasons, share


def estimated_alarm(signal: WindowSignal, policy: PolicySettings) -> tuple[bool, str]:
    """An unlabelled window alarms when its estimated error rose beyond `performance_degradation` with
    confidence: the low end of the estimate's 95 % interval, not its middle, must be past the limit."""
    low = signal.estimated_loss_low
    if low is None:
        return False, ""
    mid = signal.estimated_loss if signal.estimated_loss is not None else low
    text = (
        f"{signal.window}: estimated error (no labels yet) {mid:+.0%} vs the champion's holdout, "
        f"at least {low:+.0%} with 95 % confidence (limit {policy.performance_degradation:+.0%})"
    )
    return low > policy.performance_degradation, text


def dedupe_key(model_version: str | None, windows: list[WindowSignal]) -> str:
    """Same champion + same monitored windows -> same key, so two monitors of one window start one retrain."""
    payload = json.dumps({"model": model_version, "windows": [w.window for w in windows]}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def decide(
    signals: list[WindowSignal],
    policy: PolicySettings,
    *,
    model_version: str | None,
    importance: dict[str, float] | None = None,
    baseline_mae: float | None = None,
    baseline_wape: float | None = None,
    last_retrain_at: datetime | None = None,
    now: datetime,
) -> Decision:
    """Apply the N-of-M rule to the most recent windows (oldest first in `signals`)."""
    recent = signals[-policy.drift_windows_m :]
    key = dedupe_key(model_version, recent)
    counted = [s for s in recent if s.rows >= policy.min_rows]
    reasons: list[str] = []
    alarms: list[str] = []
    shares: dict[str, float] = {}
    triggered: dict[str, int] = {}  # trigger -> alarmed windows it fired in
    for s in counted:
        triggers, why, share = judge_window(s, policy, importance, baseline_mae, baseline_wape)
        shares[s.window] = share
        if triggers:
            alarms.append(s.window)
            reasons.extend(why)
            for name in triggers:
                triggered[name] = triggered.get(name, 0) + 1
    skipped = len(recent) - len(counted)
    if skipped:
        reasons.append(f"{skipped} window(s) below min_rows={policy.min_rows} not counted")
    needed = policy.drift_windows_n
    if len(alarms) < needed:
        reasons.insert(
            0, f"{len(alarms)} of the last {len(recent)} windows alarmed; the policy needs {needed}"
        )
        return Decision("none", reasons, key, alarms, shares)
    if last_retrain_at is not None:
        ready_at = last_retrain_at + timedelta(hours=policy.cooldown_hours)
        if now < ready_at:
            reasons.insert(
                0,
                f"cooldown: last retrain at {last_retrain_at.isoformat(timespec='seconds')}, "
                f"next allowed after {ready_at.isoformat(timespec='seconds')}",
            )
            return Decision("none", reasons, key, alarms, shares)
    reasons.insert(
        0,
        f"{len(alarms)} of the last {len(recent)} windows alarmed (policy: {needed} of "
        f"{policy.drift_windows_m}) on {triggered_text(triggered)}",
    )
    return Decision("retrain", reasons, key, alarms, shares)


def triggered_text(triggered: dict[str, int]) -> str:
    """What a retrain rests on, for its first line ("the estimated error (no labels yet) in 2"): the window
    reasons after it may include drift that did not decide, and a promotion keeps only the first two lines."""
    return ", ".join(f"{name} in {n}" for name, n in triggered.items())


# ------------------------------------------------------------------------------------------ from a monitor result
# Above this share of rows outside what the error estimator saw, its estimate is not used: it cannot know the
# error there, and a flat estimate must not silence the drift alarm on exactly those rows.
MAX_UNSUPPORTED_SHARE = 0.1
# The policy settings a decision on one monitor result uses (no ledger: no cooldown, no retrain data): the
# monitor step receives them as inputs (amlops.job_inputs.policy_inputs) and the report decides with them.
REPORT_FIELDS = (
    "drift_windows_n",
    "drift_windows_m",
    "performance_degradation",
    "min_drift_importance_share",
    "confirm_drift_with_labels",
    "min_rows",
)
# Where the monitor step records the policy it was given (result.json `settings.policy`), so a report re-rendered
# from a stored result decides with the same settings.
RESULT_KEY = "policy"


def estimate_signal(window: Any) -> dict[str, float | None]:
    """The label-free estimate's rise for the policy (scale-free), when the monitor estimated the window and
    most of its rows lie where the estimator was fitted."""
    est = window.estimated_performance
    if est is None or est.mae is None or (est.unsupported_share or 0.0) > MAX_UNSUPPORTED_SHARE:
        return {}
    from amlops.drift.estimate import relative_error  # pandas and scikit-learn: only with an estimate

    return {
        "estimated_loss_low": relative_error(est, "mae_low"),
        "estimated_loss": relative_error(est, "mae"),
    }


def window_signals(result: Any) -> list[WindowSignal]:
    """The policy's view of a monitor result (a MonitorResult): one signal per window, as `amlops loop` builds
    them (windows the monitor could not judge count 0 rows). Without windows (`--window all`), the judged
    overall window stands for one."""
    windows = result.windows or ([result.overall] if result.overall.judged else [])
    return [
        WindowSignal(
            window=w.window,
            rows=w.row_count if w.judged else 0,
            drifted_features=tuple(w.drifted_features),
            mae=w.performance.mae if w.performance else None,
            wape=w.performance.wape if w.performance else None,
            **estimate_signal(w),
        )
        for w in windows
    ]


def record_policy(result: Any, policy: PolicySettings) -> None:
    """Write the policy the report decides with into the result's settings (result.json `settings.policy`)."""
    setattr(result.settings, RESULT_KEY, policy.model_dump(include=set(REPORT_FIELDS)))


def recorded_policy(result: Any) -> tuple[PolicySettings, bool]:
    """(the policy recorded in a result, whether one was recorded); the defaults for results written before
    the monitor step received the configured policy."""
    extra = result.settings.model_extra or {}
    data = extra.get(RESULT_KEY)
    if not isinstance(data, dict):
        return PolicySettings(), False
    return PolicySettings(**data), True


def decide_on_result(result: Any, now: datetime) -> Decision | None:
    """The decision `amlops loop` would take on this result alone (no ledger: no cooldown, no earlier
    windows), with the policy recorded in it; None when it holds no window to decide on."""
    signals = window_signals(result)
    if not signals:
        return None
    policy, _ = recorded_policy(result)
    windows = result.windows or [result.overall]
    reference = next(
        (w.performance.reference for w in windows if w.performance and w.performance.reference), None
    )
    metadata = result.reference.metadata or {}
    return decide(
        signals,
        policy,
        model_version=None,
        importance=metadata.get("feature_importance") or None,
        baseline_mae=(reference or {}).get("mae"),
        baseline_wape=(reference or {}).get("wape"),
        now=now,
    )
