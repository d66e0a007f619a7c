"""Early termination of sweep trials (issue 17): bandit, median_stopping and truncation_selection, with Azure ML's
semantics (runner/early_termination.py cites them), judged on each trial's primary metric as it logs it to MLflow.

The policy arithmetic is checked on made-up metric histories at the boundaries the docs give; a sweep of four
trials with a planted slow, poor trial checks that each policy cancels it while the run goes on, and that the best
trial and its outputs are still the best one's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from amlops.config import Settings
from amlops.errors import UserError
from amlops.runner.early_termination import Policy, parse_policy, should_stop
from amlops.runner.local import run_pipeline
from amlops.runner.plan import build_plan

PIPELINE = Path(__file__).parent / "fixtures" / "parity" / "pipelines" / "early_termination.yml"
BANDIT_BLOCK = """    early_termination:
      type: bandit
      slack_factor: 0.2
      evaluation_interval: 1
      delay_evaluation: 2
"""


# -- when the policy applies ------------------------------------------------------------------------------------------
def test_the_policy_applies_at_multiples_of_the_interval_from_the_delay_on() -> None:
    policy = Policy("median_stopping", evaluation_interval=2, delay_evaluation=5)
    assert [n for n in range(1, 11) if policy.applies_at(n)] == [6, 8, 10]
    assert policy.latest_due(logged=9, after=0) == 8  # a poll that comes late judges the latest due interval
    assert policy.latest_due(logged=9, after=8) is None  # ... and never the same interval twice
    assert Policy("bandit", slack_factor=0.1).latest_due(logged=1, after=0) == 1  # defaults: every interval


# -- bandit -----------------------------------------------------------------------------------------------------------
def _stop(policy: Policy, goal: str, own: list[float], others: dict[str, list[float]], n: int) -> str | None:
    return should_stop(policy, goal, "me", n, {"me": own, **others}, ended=set(others))


def test_bandit_slack_factor_is_a_ratio_of_the_best_trial_at_the_interval() -> None:
    # how-to-tune-hyperparameters: best 0.8 (maximize), slack_factor 0.2 -> jobs below 0.8/(1+0.2) are terminated
    policy = Policy("bandit", slack_factor=0.2)
    best = {"leader": [0.5, 0.8, 0.95]}  # its 0.95 comes after interval 2: not counted at 2
    assert _stop(policy, "maximize", [0.6, 0.66], best, 2) is not None
    assert _stop(policy, "maximize", [0.6, 0.67], best, 2) is None
    reason = _stop(policy, "maximize", [0.6, 0.66], best, 2)
    assert (
        reason
        == "bandit at interval 2: best 0.66 is outside the slack of the best trial's 0.8 (limit 0.666667)"
    )
    # minimize mirrors it: above best * (1 + slack_factor)
    assert _stop(policy, "minimize", [1.3, 1.25], {"leader": [1.0]}, 2) is not None
    assert _stop(policy, "minimize", [1.3, 1.15], {"leader": [1.0]}, 2) is None


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_bandit_slack_factor_keeps_the_leader_and_its_direction_on_a_negative_metric(goal: str) -> None:
    """A negated error (or r2 early on) is negative: best/(1+f) would put the limit above the best itself and cut
    the leader, then every trial, and the sweep would end with no best trial."""
    policy = Policy("bandit", slack_factor=0.1)
    sign = 1 if goal == "maximize" else -1
    leader, close, far = -10.0 * sign, -10.5 * sign, -20.0 * sign
    assert _stop(policy, goal, [leader], {"other": [far]}, 1) is None
    assert (
        _stop(policy, goal, [close], {"leader": [leader]}, 1) is None
    )  # within |best| * f/(1+f) or |best| * f
    assert _stop(policy, goal, [far], {"leader": [leader]}, 1) is not None


def test_bandit_slack_amount_is_an_absolute_distance_and_the_leader_is_never_cut() -> None:
    # BanditPolicy page: best 0.8, slack_amount 0.2 -> a run below 0.6 is terminated
    policy = Policy("bandit", slack_amount=0.2)
    assert _stop(policy, "maximize", [0.59], {"leader": [0.8]}, 1) is not None
    assert _stop(policy, "maximize", [0.61], {"leader": [0.8]}, 1) is None
    assert _stop(policy, "maximize", [0.8], {"other": [0.1]}, 1) is None
    # the trial's *best* value up to the interval counts, not its last
    assert _stop(policy, "maximize", [0.7, 0.2], {"leader": [0.8, 0.8]}, 2) is None


# -- median_stopping --------------------------------------------------------------------------------------------------
def test_median_stopping_compares_the_best_value_with_the_median_of_running_averages() -> None:
    policy = Policy("median_stopping")
    others = {
        "a": [0.5, 0.7],
        "b": [0.8, 0.8],
        "c": [0.1, 0.3, 0.99, 0.99],
    }  # averages over 1:2: 0.6, 0.8, 0.2
    assert _stop(policy, "maximize", [0.55, 0.58], others, 2) == (
        "median_stopping at interval 2: best 0.58 is worse than the median 0.6 of the other trials' running "
        "averages over intervals 1:2"
    )
    assert _stop(policy, "maximize", [0.5, 0.61], others, 2) is None
    assert _stop(policy, "maximize", [0.1], {}, 1) is None  # alone: nothing to compare with


def test_a_running_trial_counts_only_once_it_has_reached_the_interval() -> None:
    policy = Policy("median_stopping")
    histories = {"me": [0.1, 0.1, 0.1], "young": [0.9], "old": [0.9, 0.9, 0.9]}
    assert should_stop(policy, "maximize", "me", 3, histories, ended=set()) is not None  # "old" counts
    del histories["old"]
    assert should_stop(policy, "maximize", "me", 3, histories, ended=set()) is None  # "young" has 1 of 3
    assert should_stop(policy, "maximize", "me", 3, histories, ended={"young"}) is not None  # ended: complete


# -- truncation_selection ---------------------------------------------------------------------------------------------
def test_truncation_selection_cancels_the_lowest_percentage() -> None:
    policy = Policy("truncation_selection", truncation_percentage=25)
    four = {"a": [0.5], "b": [0.6], "c": [0.7]}
    assert _stop(policy, "maximize", [0.4], four, 1) == (
        "truncation_selection at interval 1: best 0.4 is among the lowest 25% (1 of 4 trials)"
    )
    assert _stop(policy, "maximize", [0.55], four, 1) is None  # "a" is the lowest
    assert _stop(policy, "maximize", [0.4], {"a": [0.5], "b": [0.6]}, 1) is None  # 25% of 3 trials is none
    assert _stop(policy, "minimize", [0.8], four, 1) is not None  # minimize: the highest loss is the lowest


# -- refusals ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "bandit", "evaluation_interval": 1},
            "p.yml: job 'tune': a bandit early_termination policy needs exactly one of slack_factor or slack_amount "
            "(reference-yaml-job-sweep: BanditPolicy)",
        ),
        (
            {"type": "bandit", "slack_factor": 0.1, "slack_amount": 0.2},
            "p.yml: job 'tune': a bandit early_termination policy needs exactly one of slack_factor or slack_amount "
            "(reference-yaml-job-sweep: BanditPolicy)",
        ),
        (
            {"type": "truncation_selection", "truncation_percentage": 100},
            "p.yml: job 'tune': a truncation_selection early_termination policy needs truncation_percentage between "
            "1 and 99 (how-to-tune-hyperparameters)",
        ),
    ],
)
def test_a_policy_that_cannot_apply_is_refused_in_one_line(spec: dict[str, object], message: str) -> None:
    with pytest.raises(UserError) as err:
        parse_policy(spec, "p.yml: job 'tune'")
    assert str(err.value) == message


def test_the_refusal_comes_before_any_step_runs(tmp_path: Path) -> None:
    bad = tmp_path / "no_slack.yml"
    text = PIPELINE.read_text().replace("../components/", f"{PIPELINE.parent.parent / 'components'}/")
    bad.write_text(text.replace("      slack_factor: 0.2\n", ""))
    with pytest.raises(
        UserError, match=r"^no_slack.yml: job 'tune': a bandit early_termination policy needs"
    ):
        build_plan(bad)


# -- a sweep, each policy --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "policy",
    [
        BANDIT_BLOCK,
        "    early_termination:\n      type: median_stopping\n      delay_evaluation: 2\n",
        "    early_termination:\n      type: truncation_selection\n      truncation_percentage: 50\n"
        "      delay_evaluation: 2\n",
    ],
    ids=["bandit", "median_stopping", "truncation_selection"],
)
def test_each_policy_cancels_the_planted_poor_trial_and_keeps_the_best(
    settings: Settings, tmp_path: Path, policy: str
) -> None:
    from mlflow.tracking import MlflowClient

    copy = tmp_path / "parity"
    shutil.copytree(PIPELINE.parent.parent, copy, ignore=shutil.ignore_patterns("flow", "data"))
    pipeline = copy / "pipelines" / PIPELINE.name
    assert BANDIT_BLOCK in pipeline.read_text()
    pipeline.write_text(pipeline.read_text().replace(BANDIT_BLOCK, policy))
    result = run_pipeline(pipeline, {}, settings, quiet=True)
    summary = json.loads((result.run_dir / "tune" / "sweep.json").read_text())
    trials = {t["params"]["quality"]: t for t in summary["trials"]}
    kind = policy.split("type: ")[1].split("\n")[0]
    poor = trials[0.1]
    # the slow trial would log 600 intervals; it was stopped long before, while the sweep went on
    assert poor["status"] == "cancelled"
    assert poor["stopped_by"].startswith(f"cancelled by the early termination policy: {kind} at interval ")
    client = MlflowClient(settings.tracking_uri)
    assert 2 <= len(client.get_metric_history(poor["mlflow_run_id"], "accuracy")) < 600
    assert client.get_run(poor["mlflow_run_id"]).info.status == "KILLED"
    assert f"cancelled: {poor['stopped_by']}" in Path(poor["log"]).read_text()
    assert [trials[q]["status"] for q in (0.9, 0.92, 0.95)] == ["completed"] * 3
    assert summary["best"] == trials[0.95]["name"]
    assert (result.outputs["best_model"] / "model.txt").read_text().startswith("quality 0.95 ")
