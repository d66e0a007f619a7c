"""The closed loop: monitor → policy → (maybe) retrain, through the project's pipeline YAML, on either target.

Every real job is a pipeline file run by the local runner or submitted to Azure ML: `pipelines/monitoring.yml`,
`pipelines/training.yml`, `pipelines/batch_inference.yml`. Their inputs come from `amlops.job_inputs` (the same
for both targets), the policy reads the same monitor output on both (result.json and the model's feature
importance), and the ledger is the one every runner shares (`amlops.retrain.store_for`). This module only wires
them together and records what it decided and why.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from amlops.config import Settings
from amlops.drift.policy import Decision, WindowSignal, decide, window_signals
from amlops.drift.result import MonitorResult
from amlops.errors import UsageError, UserError
from amlops.job_inputs import Target, column_roles, monitoring_inputs, training_inputs
from amlops.monitoring import MonitorRun, read_importance
from amlops.retrain import LedgerStore, TriggerResult, last_retrain_at, record_decision, store_for, trigger

MIN_EVERY_SECONDS = 60.0
# Waits longer than this close the runner's idle warm-start zygotes first (wait_for_next_cycle).
WARM_KEEP_SECONDS = 300.0


@dataclass
class Champion:
    version: str
    model_dir: Path

    def importance(self) -> dict[str, float] | None:
        return read_importance(self.model_dir)


def champion(settings: Settings) -> Champion | None:
    """The serving version and its model folder, fetched once (see `amlops.scoring.download_model`)."""
    from amlops import registry
    from amlops.scoring import download_model

    client = registry.client_for(settings)
    found = registry.resolve_champion(client, settings.model_name)
    if found is None:
        return None
    version = str(found[0])
    return Champion(version, download_model(settings, client, settings.model_name, version))


def baseline(result: MonitorResult, metric: str) -> float | None:
    """The champion's own holdout error, which the monitor reports as the reference for performance."""
    for w in result.windows:
        ref = ((w.performance.reference if w.performance else None) or {}).get(metric)
        if ref:
            return float(ref)
    return None


def monitor_local(settings: Settings, current: Path, labels: Path | None, model_dir: Path) -> MonitorRun:
    from amlops import monitoring

    inputs, _note = monitoring_inputs(
        settings, str(current), model=str(model_dir), labels=str(labels) if labels else None
    )
    return monitoring.run_local(settings, inputs, quiet=True)


def score_local(settings: Settings, data: Path, champ: Champion) -> Path:
    from amlops.scoring import score_with

    predictions, _run_id, _run_dir = score_with(settings, data, champ.model_dir, champ.version, quiet=True)
    return predictions


def train_local(settings: Settings, data: Path) -> dict[str, Any]:
    """Run the training pipeline on `data`; the ledger's record of it (run, gate verdict, registration)."""
    from amlops import training

    return training.run_local(settings, training_inputs(settings, str(data)), quiet=True).detail()


def retrain_dataset(
    settings: Settings, history: Path, until: date, dest: Path, original: Path | None = None
) -> Path:
    """The configured window of recent labelled data (plus, optionally, the original training data)."""
    import pandas as pd

    from amlops.data.io import read_table

    frames = []
    recent = read_table(history)
    roles = column_roles(settings)
    dates = pd.to_datetime(recent[roles["timestamp_column"]])
    start = pd.Timestamp(until) - pd.Timedelta(days=settings.policy.retrain_window_days)
    frames.append(recent[(dates > start) & (dates <= pd.Timestamp(until))])
    if original is not None and settings.policy.include_original_data:
        frames.append(read_table(original))
    data = pd.concat(frames, ignore_index=True).drop_duplicates(subset=[roles["id_column"]])
    if data.empty:
        raise UserError(
            f"{history}: no labelled rows in the {settings.policy.retrain_window_days} days to {until}"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    data.to_parquet(dest, index=False)
    return dest


@dataclass
class CycleOutcome:
    champion: str | None
    monitor: MonitorRun
    decision: Decision
    trigger: TriggerResult | None = None
    training: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The cycle for machines (`amlops loop --json`): what was decided, why, and what it started."""
        return {
            "champion": self.champion,
            "decision": self.decision.to_dict(),
            "retrain": None
            if self.trigger is None
            else {"status": self.trigger.status, **self.trigger.detail},
            "monitoring_job": self.monitor.job_name,
            "report": str(self.monitor.report) if self.monitor.report else None,
            "run_dir": str(self.monitor.run_dir) if self.monitor.run_dir else None,
        }


def evaluate_policy(
    settings: Settings,
    store: LedgerStore,
    result: MonitorResult,
    version: str,
    importance: dict[str, float] | None,
    now: datetime,
    previous: list[WindowSignal] | None = None,
) -> tuple[Decision, list[WindowSignal]]:
    """The policy over the windows monitored so far for this champion (earlier ones first)."""
    # The report decides from the same signals (drift.policy.window_signals): one reading of a result.
    result_signals = window_signals(result)
    seen = {s.window for s in result_signals}
    history = [s for s in (previous or []) if s.window not in seen] + result_signals
    decision = decide(
        history,
        settings.policy,
        model_version=version,
        importance=importance,
        baseline_mae=baseline(result, "mae"),
        baseline_wape=baseline(result, "wape"),
        last_retrain_at=last_retrain_at(store, now),
        now=now,
    )
    return decision, history


def write_github_output(decision: Decision) -> None:
    """For GitHub-driven setups: the workflow reads `retrain`, `reason` and `dedupe_key` and dispatches train.yml.

    Values are single-line (newlines folded): GitHub's `name=value` form of $GITHUB_OUTPUT ends a value at the
    line end ("Setting an output parameter", docs.github.com/actions/reference/workflow-commands-for-github-actions)."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise UsageError("--retrain-via github needs $GITHUB_OUTPUT (it runs inside a GitHub Actions step)")
    reason = " ".join((decision.reasons[0] if decision.reasons else "").split())
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(f"retrain={'true' if decision.retrain else 'false'}\n")
        fh.write(f"reason={reason}\n")
        fh.write(f"dedupe_key={decision.dedupe_key}\n")


def parse_every(text: str) -> float:
    """`90s`, `15m`, `1h`, `1d` -> seconds (at least a minute: a monitor cycle runs whole pipelines)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not m:
        raise UsageError(f"--every {text!r}: expected a number with s, m, h or d (e.g. 15m, 1h)")
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if seconds < MIN_EVERY_SECONDS:
        raise UsageError(f"--every {text!r}: at least {MIN_EVERY_SECONDS:.0f}s between cycles")
    return seconds


def wait_for_next_cycle(interval: float, sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep between `amlops loop --every` cycles. Before a wait longer than WARM_KEEP_SECONDS the runner's idle
    warm-start zygotes are closed (amlops.runner.warm.release_idle): each holds its preloaded libraries (~300 MB
    resident) for nothing during the wait, and the next cycle's steps then start from the libraries installed at
    that time, so an upgrade made during the wait is used. A shorter wait keeps them (a new zygote imports for
    seconds)."""
    if interval > WARM_KEEP_SECONDS:
        from amlops.runner.warm import release_idle

        release_idle()
    sleep(interval)


def cycle_local(
    settings: Settings,
    current: Path,
    labels: Path | None,
    history: Path | None,
    *,
    now: datetime | None = None,
    previous: list[WindowSignal] | None = None,
    original: Path | None = None,
    store: LedgerStore | None = None,
) -> tuple[CycleOutcome, list[WindowSignal]]:
    """One monitor → policy → retrain cycle on this machine."""
    now = now or datetime.now(UTC)
    store = store or store_for(settings, Target.local)
    champ = champion(settings)
    if champ is None:
        raise UserError(f"no champion for {settings.model_name}: train one first (amlops train --data ...)")
    run = monitor_local(settings, current, labels, champ.model_dir)
    decision, window_history = evaluate_policy(
        settings, store, run.result, champ.version, run.importance(), now, previous
    )
    record_decision(
        store,
        decision,
        {"champion": champ.version, "current": str(current), "target": "local", "at_time": now.isoformat()},
    )
    outcome = CycleOutcome(champ.version, run, decision)
    if decision.retrain:
        if history is None:
            raise UsageError("the policy says retrain but no labelled --history data was given to train on")
        dest = settings.state_path / "retrain" / f"data-{decision.dedupe_key}.parquet"

        def start() -> dict[str, Any]:
            retrain_dataset(settings, history, now.date(), dest, original)
            return train_local(settings, dest)

        outcome.trigger = trigger(store, decision, start, now=now)
        outcome.training = outcome.trigger.detail
    return outcome, window_history


def cycle_azure(
    settings: Settings,
    env: str | None,
    current: str | None,
    labels: str | None,
    retrain_via: str,
    *,
    now: datetime | None = None,
    store: LedgerStore | None = None,
) -> CycleOutcome:
    """Monitor on Azure ML, apply the policy here, retrain on Azure ML or hand over to GitHub Actions. The same
    inputs, policy and ledger semantics as `cycle_local`; only where the jobs run differs."""
    from amlops import monitoring, registry, training
    from amlops.azure import client as azclient

    now = now or datetime.now(UTC)
    az = azclient.target(settings, env)
    ml = azclient.ml_client(settings, env)
    found = registry.resolve_champion(azclient.WorkspaceModelRegistry(ml), settings.model_name)
    if found is None:
        raise UserError(f"no champion for {settings.model_name} in workspace {az.workspace}")
    version = str(found[0])
    store = store or store_for(settings, Target.azure, env)
    inputs, _note = monitoring_inputs(
        settings,
        current,
        model=f"azureml:{settings.model_name}:{version}",
        labels=labels,
        target=Target.azure,
        env=env,
    )
    run = monitoring.run_azure(settings, inputs, env=env)
    decision, _history = evaluate_policy(settings, store, run.result, version, run.importance(), now)
    record_decision(
        store,
        decision,
        {"champion": version, "monitoring_job": run.job_name, "target": "azure", "env": env},
    )
    outcome = CycleOutcome(version, run, decision)
    outcome.training = {"monitoring_job": run.job_name}
    if retrain_via == "github":
        write_github_output(decision)
    elif decision.retrain:

        def start() -> dict[str, Any]:
            job = training.submit(
                settings, training_inputs(settings, None, Target.azure, env=env), env=env, wait=False
            )
            return {"training_job": job.name, "studio_url": job.studio_url}

        outcome.trigger = trigger(store, decision, start, now=now)
        outcome.training.update(outcome.trigger.detail)
    return outcome
