"""The closed loop: monitor → policy → (maybe) retrain, through the project's pipeline YAML.

Every real job is a pipeline file run by the local runner or submitted to Azure ML: `pipelines/monitoring.yml`,
`pipelines/training.yml`, `pipelines/batch_inference.yml`. This module only wires their inputs and outputs, asks
the policy, and records what it decided and why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amlops.config import Settings
from amlops.console import UserError
from amlops.drift.policy import Decision, WindowSignal, decide
from amlops.retrain import TriggerResult, last_retrain_at, record_decision, trigger


@dataclass
class Champion:
    version: str
    model_dir: Path

    def importance(self) -> dict[str, float] | None:
        path = self.model_dir / "feature_importance.json"
        if not path.is_file():
            return None
        return {str(k): float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def champion(settings: Settings) -> Champion | None:
    """The serving version and its downloaded model folder (`amlops.model_cache`: keyed by the artifact)."""
    from amlops import model_cache, registry

    client = registry.client_for(settings)
    found = registry.resolve_champion(client, settings.model_name)
    if found is None:
        return None
    version = str(found[0])
    try:
        return Champion(version, model_cache.registered_model(settings, settings.model_name, version, client))
    except model_cache.ModelCacheError as exc:
        raise UserError(str(exc)) from None


def signals(result: dict[str, Any]) -> list[WindowSignal]:
    """Window signals for the policy from a monitor result (only windows the monitor could judge)."""
    out = []
    for w in result.get("windows") or []:
        perf = w.get("performance") or {}
        out.append(
            WindowSignal(
                window=str(w.get("window")),
                rows=int(w.get("row_count") or 0) if w.get("status") == "ok" else 0,
                drifted_features=tuple(w.get("drifted_features") or ()),
                mae=perf.get("mae"),
                wape=perf.get("wape"),
            )
        )
    return out


def baseline(result: dict[str, Any], metric: str) -> float | None:
    """The champion's own holdout error, which the monitor reports as the reference for performance."""
    for w in result.get("windows") or []:
        ref = ((w.get("performance") or {}).get("reference") or {}).get(metric)
        if ref:
            return float(ref)
    return None


@dataclass
class MonitorRun:
    result: dict[str, Any]
    report: Path | None
    run_dir: Path | None


def monitor_local(settings: Settings, current: Path, labels: Path | None, model_dir: Path) -> MonitorRun:
    from amlops.commands.monitor import monitoring_inputs
    from amlops.runner.local import run_pipeline

    inputs, _note = monitoring_inputs(
        settings, str(current), None, None, str(model_dir), str(labels) if labels else None, None
    )
    run = run_pipeline(settings.pipeline_file("monitoring"), inputs, settings, quiet=True)
    folder = run.outputs["result"]
    result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    report = folder / "report.html"
    return MonitorRun(result, report if report.exists() else None, run.run_dir)


def score_local(settings: Settings, data: Path, champ: Champion) -> Path:
    from amlops.commands.score import pipeline_inputs
    from amlops.runner.local import run_pipeline

    inputs = pipeline_inputs(settings, str(data), str(champ.model_dir), champ.version)
    run = run_pipeline(settings.pipeline_file("batch_inference"), inputs, settings, quiet=True)
    return run.outputs["predictions"]


def train_local(settings: Settings, data: Path) -> dict[str, Any]:
    """Run the training pipeline on `data`; return the gate verdict and the registration it wrote."""
    from amlops.commands.train import training_inputs
    from amlops.runner.local import run_pipeline

    run = run_pipeline(
        settings.pipeline_file("training"), training_inputs(settings, str(data)), settings, quiet=True
    )
    verdict = _read_json(run.outputs.get("verdict"), "verdict.json")
    registration = _read_json(run.outputs.get("registration"), "registration.json")
    return {
        "run_id": run.run_id,
        "run_dir": str(run.run_dir),
        "verdict": verdict,
        "registration": registration,
    }


def _read_json(folder: Path | None, name: str) -> dict[str, Any]:
    if folder is None:
        return {}
    path = folder / name
    if not path.is_file():
        found = sorted(folder.rglob("*.json"))
        path = found[0] if found else path
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def retrain_dataset(
    settings: Settings, history: Path, until: date, dest: Path, original: Path | None = None
) -> Path:
    """The configured window of recent labelled data (plus, optionally, the original training data)."""
    import pandas as pd

    from amlops.data.io import read_table

    frames = []
    recent = read_table(history)
    dates = pd.to_datetime(recent[settings.monitor.timestamp_column])
    start = pd.Timestamp(until) - pd.Timedelta(days=settings.policy.retrain_window_days)
    frames.append(recent[(dates > start) & (dates <= pd.Timestamp(until))])
    if original is not None and settings.policy.include_original_data:
        frames.append(read_table(original))
    data = pd.concat(frames, ignore_index=True).drop_duplicates(subset=[settings.monitor.id_column])
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


def evaluate_policy(
    settings: Settings,
    result: dict[str, Any],
    champ: Champion,
    now: datetime,
    previous: list[WindowSignal] | None = None,
) -> tuple[Decision, list[WindowSignal]]:
    """The policy over the windows monitored so far for this champion (earlier ones first)."""
    result_signals = signals(result)
    seen = {s.window for s in result_signals}
    history = [s for s in (previous or []) if s.window not in seen] + result_signals
    decision = decide(
        history,
        settings.policy,
        model_version=champ.version,
        importance=champ.importance(),
        baseline_mae=baseline(result, "mae"),
        baseline_wape=baseline(result, "wape"),
        last_retrain_at=last_retrain_at(settings),
        now=now,
    )
    return decision, history


def write_github_output(decision: Decision) -> None:
    """For GitHub-driven setups: the workflow reads `retrain` and `reason` and dispatches train.yml."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise UserError("--retrain-via github needs $GITHUB_OUTPUT (it runs inside a GitHub Actions step)")
    reason = (decision.reasons[0] if decision.reasons else "").replace("\n", " ")
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(f"retrain={'true' if decision.retrain else 'false'}\n")
        fh.write(f"reason={reason}\n")
        fh.write(f"dedupe_key={decision.dedupe_key}\n")


def cycle_local(
    settings: Settings,
    current: Path,
    labels: Path | None,
    history: Path | None,
    *,
    now: datetime | None = None,
    previous: list[WindowSignal] | None = None,
    original: Path | None = None,
) -> tuple[CycleOutcome, list[WindowSignal]]:
    """One monitor → policy → retrain cycle on this machine."""
    now = now or datetime.now(UTC)
    champ = champion(settings)
    if champ is None:
        raise UserError(f"no champion for {settings.model_name}: train one first (amlops train --data ...)")
    run = monitor_local(settings, current, labels, champ.model_dir)
    decision, window_history = evaluate_policy(settings, run.result, champ, now, previous)
    record_decision(
        settings,
        decision,
        {"champion": champ.version, "current": str(current), "simulated_now": now.isoformat()},
    )
    outcome = CycleOutcome(champ.version, run, decision)
    if decision.retrain:
        if history is None:
            raise UserError("the policy says retrain but no labelled --history data was given to train on")
        dest = settings.state_path / "retrain" / f"data-{decision.dedupe_key}.parquet"

        def start() -> dict[str, Any]:
            retrain_dataset(settings, history, now.date(), dest, original)
            return train_local(settings, dest)

        outcome.trigger = trigger(settings, decision, start, now=now)
        outcome.training = outcome.trigger.detail
    return outcome, window_history


def cycle_azure(
    settings: Settings, env: str | None, current: str | None, labels: str | None, retrain_via: str
) -> tuple[Decision, dict[str, Any]]:
    """Monitor on Azure ML, apply the policy here, retrain on Azure ML or hand over to GitHub Actions."""
    import tempfile

    from amlops import registry
    from amlops.azure import client as azclient
    from amlops.azure.jobs import submit_pipeline
    from amlops.commands.train import Target, training_inputs

    az = azclient.target(settings, env)
    ml = azclient.ml_client(settings, env)
    found = registry.resolve_champion(azclient.WorkspaceModelRegistry(ml), settings.model_name)
    if found is None:
        raise UserError(f"no champion for {settings.model_name} in workspace {az.workspace}")
    version, _uri = found
    inputs = {
        "current_data": current or az.monitoring_data,
        "model": f"azureml:{settings.model_name}:{version}",
        "window": settings.monitor.window,
    }
    if labels:
        inputs["labels"] = labels
    job = submit_pipeline(settings.pipeline_file("monitoring"), inputs, settings, env=env, wait=True)
    if job.status != "Completed":
        raise UserError(f"monitoring job {job.name} ended {job.status}: {job.studio_url}")
    with tempfile.TemporaryDirectory() as tmp:
        ml.jobs.download(name=job.name, download_path=tmp, output_name="result")
        found_json = sorted(Path(tmp).rglob("result.json"))
        if not found_json:
            raise UserError(f"monitoring job {job.name} produced no result.json")
        result = json.loads(found_json[0].read_text(encoding="utf-8"))
    decision = decide(
        signals(result),
        settings.policy,
        model_version=version,
        baseline_mae=baseline(result, "mae"),
        baseline_wape=baseline(result, "wape"),
        last_retrain_at=last_retrain_at(settings),
        now=datetime.now(UTC),
    )
    record_decision(settings, decision, {"champion": version, "monitoring_job": job.name, "env": env})
    detail: dict[str, Any] = {"monitoring_job": job.name}
    if retrain_via == "github":
        write_github_output(decision)
    elif decision.retrain:

        def start() -> dict[str, Any]:
            train = submit_pipeline(
                settings.pipeline_file("training"),
                training_inputs(settings, az.training_data, Target.azure),
                settings,
                env=env,
                wait=False,
            )
            return {"training_job": train.name, "studio_url": train.studio_url}

        detail.update(trigger(settings, decision, start).detail)
    return decision, detail


def week_bounds(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)
