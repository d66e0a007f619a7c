"""A sweep's early termination policy (bandit, median_stopping, truncation_selection), judged on each trial's
primary metric as the trial logs it to MLflow.

Semantics, from Microsoft Learn "Hyperparameter tuning a model" (learn.microsoft.com/azure/machine-learning/
how-to-tune-hyperparameters, section "Early termination"; MicrosoftDocs/azure-ai-docs articles/machine-learning/
how-to-tune-hyperparameters.md), "CLI (v2) sweep job YAML schema" (reference-yaml-job-sweep, "Early termination
policies") and the HyperDrive policy pages (learn.microsoft.com/python/api/azureml-train-core/
azureml.train.hyperdrive.banditpolicy, .medianstoppingpolicy, .truncationselectionpolicy: the service the v2 sweep job
runs on); field names and defaults from azure-ai-ml entities/_job/sweep/early_termination_policy.py (BanditPolicy,
MedianStoppingPolicy, TruncationSelectionPolicy) and _schema/_sweep/sweep_termination.py:
- An *interval* is one logging of the primary metric: "Each time the training script logs the primary metric counts
  as one interval" (HyperDrive pages). Interval n of a trial is the n-th value it logged.
- The policy applies at "every multiple of evaluation_interval that is greater than or equal to delay_evaluation"
  (reference-yaml-job-sweep; default evaluation_interval 1, delay_evaluation 0; azure-ai-ml's 0 default for
  evaluation_interval is read as 1).
- bandit: a trial stops at interval n when its best metric up to n falls outside the slack of the best trial at n.
  Maximize: below best/(1+slack_factor) ("any training jobs whose best metric at interval 10 is less than 0.66
  (0.8/(1+slack_factor)) will be terminated", how-to-tune-hyperparameters) or below best - slack_amount ("any run
  with an AUC less than 0.6 (0.8 - 0.2) after 100 iterations will be terminated", BanditPolicy page). Minimize is
  the mirror: above best*(1+slack_factor) or best + slack_amount (the pages give maximize examples only).
- median_stopping: "a run will be canceled at interval N if its best primary metric reported up to interval N is
  worse than the median of the running averages for intervals 1:N across all runs" (MedianStoppingPolicy page).
- truncation_selection: at interval n, the truncation_percentage % lowest performing trials are cancelled; "when
  evaluating a run at a interval N, its performance is only compared with the performance of other runs up to
  interval N even if they reported metrics for intervals greater than N" (TruncationSelectionPolicy page).

Where the pages leave a choice, this module makes one and says it here: a trial's performance at n is its best value
up to n; the other trials that count at n are those that logged n values or have ended (an ended trial's history is
complete, so its values up to n are known); median_stopping compares against the *other* trials (as the Vizier rule
it comes from does); truncation cuts floor(count * percentage / 100) trials, worst first (ties broken by name).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from amlops.errors import UserError

KINDS = ("bandit", "median_stopping", "truncation_selection")


@dataclass(frozen=True)
class Policy:
    kind: str
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    slack_factor: float | None = None
    slack_amount: float | None = None
    truncation_percentage: int | None = None

    def applies_at(self, n: int) -> bool:
        return n >= 1 and n % self.evaluation_interval == 0 and n >= self.delay_evaluation

    def latest_due(self, logged: int, after: int) -> int | None:
        """The latest interval in (after, logged] at which the policy applies, if any."""
        for n in range(logged, after, -1):
            if self.applies_at(n):
                return n
        return None

    def describe(self) -> str:
        extra = {
            "bandit": f"slack_factor={self.slack_factor}"
            if self.slack_factor
            else f"slack_amount={self.slack_amount}",
            "median_stopping": "",
            "truncation_selection": f"truncation_percentage={self.truncation_percentage}",
        }[self.kind]
        every = f"evaluation_interval={self.evaluation_interval} delay_evaluation={self.delay_evaluation}"
        return f"{self.kind} ({extra + ' ' if extra else ''}{every})"


def parse_policy(spec: Mapping[str, Any] | None, what: str) -> Policy | None:
    """The sweep's `early_termination` as a Policy; a policy the schema would reject is refused in one line."""
    if not spec:
        return None
    kind = str(spec.get("type") or "").lower()
    if kind not in KINDS:
        raise UserError(
            f"{what}: early_termination type {kind!r} is not one Azure ML defines ({', '.join(KINDS)})"
        )
    interval = int(spec.get("evaluation_interval") or 1)
    delay = int(spec.get("delay_evaluation") or 0)
    if interval < 1 or delay < 0:
        raise UserError(
            f"{what}: early_termination evaluation_interval must be >= 1 and delay_evaluation >= 0"
        )
    factor = float(spec.get("slack_factor") or 0) or None
    amount = float(spec.get("slack_amount") or 0) or None
    percentage = int(spec.get("truncation_percentage") or 0) or None
    if kind == "bandit" and (factor is None) == (amount is None):
        raise UserError(
            f"{what}: a bandit early_termination policy needs exactly one of slack_factor or slack_amount "
            "(reference-yaml-job-sweep: BanditPolicy)"
        )
    if kind == "truncation_selection" and not (percentage and 1 <= percentage <= 99):
        raise UserError(
            f"{what}: a truncation_selection early_termination policy needs truncation_percentage between 1 and 99 "
            "(how-to-tune-hyperparameters)"
        )
    return Policy(kind, interval, delay, factor, amount, percentage)


def _best(values: Sequence[float], goal: str) -> float:
    return max(values) if goal == "maximize" else min(values)


def _worse(a: float, b: float, goal: str) -> bool:
    """a is strictly worse than b."""
    return a < b if goal == "maximize" else a > b


def _peers(
    trial: str, n: int, histories: Mapping[str, Sequence[float]], ended: Set[str]
) -> dict[str, list[float]]:
    """The other trials whose values up to interval n are known: they logged n values, or have ended."""
    return {
        name: list(values[:n])
        for name, values in histories.items()
        if name != trial and values and (len(values) >= n or name in ended)
    }


def should_stop(
    policy: Policy,
    goal: str,
    trial: str,
    n: int,
    histories: Mapping[str, Sequence[float]],
    ended: Set[str],
) -> str | None:
    """Why `trial` is to be cancelled at interval n (it has logged at least n values), or None."""
    own_values = [v for v in histories[trial][:n] if not math.isnan(v)]
    if len(own_values) < n:
        return None
    own = _best(own_values, goal)
    peers = {k: [v for v in vs if not math.isnan(v)] for k, vs in _peers(trial, n, histories, ended).items()}
    peers = {k: vs for k, vs in peers.items() if vs}
    if policy.kind == "bandit":
        return _bandit(policy, goal, own, peers, n)
    if policy.kind == "median_stopping":
        return _median(goal, own, peers, n)
    return _truncation(policy, goal, trial, own, peers, n)


def _bandit(policy: Policy, goal: str, own: float, peers: Mapping[str, list[float]], n: int) -> str | None:
    best = _best([own, *(_best(vs, goal) for vs in peers.values())], goal)
    if own == best:
        return None  # the leading trial is never outside its own slack
    # The slack as a distance from the best (|best| keeps its direction for a negative metric, e.g. a negated
    # error or r2 early on): for a positive best these are the documented best/(1+f) and best*(1+f).
    if policy.slack_factor:
        slack = abs(best) * policy.slack_factor / (1 + policy.slack_factor if goal == "maximize" else 1)
    else:
        slack = policy.slack_amount or 0
    limit = best - slack if goal == "maximize" else best + slack
    if _worse(own, limit, goal):
        return (
            f"bandit at interval {n}: best {own:g} is outside the slack of the best trial's {best:g} "
            f"(limit {limit:g})"
        )
    return None


def _median(goal: str, own: float, peers: Mapping[str, list[float]], n: int) -> str | None:
    if not peers:
        return None
    median = statistics.median(statistics.fmean(vs) for vs in peers.values())
    if _worse(own, median, goal):
        return (
            f"median_stopping at interval {n}: best {own:g} is worse than the median {median:g} of the other "
            f"trials' running averages over intervals 1:{n}"
        )
    return None


def _truncation(
    policy: Policy, goal: str, trial: str, own: float, peers: Mapping[str, list[float]], n: int
) -> str | None:
    scores = {trial: own, **{k: _best(vs, goal) for k, vs in peers.items()}}
    cut = math.floor(len(scores) * (policy.truncation_percentage or 0) / 100)
    if cut == 0:
        return None
    sign = 1 if goal == "maximize" else -1
    worst_first = sorted(scores, key=lambda k: (sign * scores[k], k))
    if trial in worst_first[:cut]:
        return (
            f"truncation_selection at interval {n}: best {own:g} is among the lowest "
            f"{policy.truncation_percentage}% ({cut} of {len(scores)} trials)"
        )
    return None
