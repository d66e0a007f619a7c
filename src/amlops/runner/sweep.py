"""`type: sweep` nodes on this machine: sample the search space, run the trial component once per sample, pick the
best trial by its primary metric as logged to MLflow, and expose the best trial's outputs as the node's outputs.

Semantics from Microsoft Learn "CLI (v2) sweep job YAML schema" (reference-yaml-job-sweep) and "Hyperparameter tuning
a model" (how-to-tune-hyperparameters), with the field names of azure-ai-ml's entities/_job/sweep (search_space.py,
objective.py, sampling_algorithm.py, early_termination_policy.py) and SweepJobLimits:
- search_space: choice(values), randint(upper) in [0, upper), uniform/loguniform(min_value, max_value) (loguniform
  draws exp(uniform(min, max))), normal/lognormal(mu, sigma), and the q-variants rounding to multiples of q.
- sampling_algorithm: grid enumerates `choice` values only (Azure ML refuses other distributions with grid);
  random draws independently (seed honoured); bayesian is approximated by random sampling here, said in the log.
- objective: goal minimize|maximize on primary_metric; each trial runs with MLFLOW_RUN_ID set to a run of its own,
  as Azure ML sets it for a job, so `mlflow.log_metric` in the trial lands there; the last value logged counts.
- limits: max_total_trials (default 1000, as the schema), max_concurrent_trials (threads; 1 when unset, where
  Azure ML runs max_total_trials at once: this machine is one node), timeout (whole sweep: no trial starts after it,
  and a running trial is stopped at it), trial_timeout (each trial).
- early_termination: bandit / median_stopping / truncation_selection (runner/early_termination.py) are applied
  while the trials run: a monitor thread polls each started trial's primary metric history in MLflow every
  POLL_SECONDS and cancels a running trial the policy stops, as Azure ML cancels it ("A trial job is canceled when
  the criteria of the specified policy are met", reference-yaml-job-sweep): its process group is stopped, its
  status is "cancelled" and its MLflow run ends KILLED (MLflow's RunStatus for a killed run). Running trials are
  judged against every started trial, ended ones included, so the policy bites with max_concurrent_trials 1 too.
  A cancelled trial cannot be best: its outputs are incomplete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.console import out
from amlops.errors import UserError
from amlops.runner.early_termination import Policy, parse_policy, should_stop
from amlops.runner.plan import OutputSpec, Plan, StepPlan, coerce_primitive

if TYPE_CHECKING:
    from amlops.runner.context import RunContext
    from amlops.runner.local import Cancel, LocalRunner, StepResult

DEFAULT_MAX_TRIALS = 1000
# How often the early termination monitor reads the trials' metrics: Azure ML's service evaluates the policy when
# metrics arrive, so a trial may log a few more intervals before it is cancelled, there as here.
POLL_SECONDS = 0.5
# A trial's status -> its MLflow run's terminal status.
_RUN_STATUS = {"completed": "FINISHED", "cancelled": "KILLED"}


@dataclasses.dataclass
class Trial:
    index: int
    params: dict[str, Any]
    name: str
    status: str = "pending"
    metric: float | None = None
    seconds: float = 0.0
    mlflow_run_id: str | None = None
    log: str | None = None
    stopped_by: str | None = None  # the early termination policy's reason, for a cancelled trial


# -- sampling -----------------------------------------------------------------------------------------------------
def _draw(name: str, dist: dict[str, Any], rng: random.Random) -> Any:
    kind = str(dist.get("type", "")).lower()
    q = dist.get("q")
    if kind == "choice":
        values = list(dist.get("values") or [])
        if any(isinstance(v, dict) for v in values):
            raise UserError(f"search_space.{name}: nested (conditional) choices are not run locally")
        return rng.choice(values)
    if kind == "randint":
        return rng.randrange(int(dist["upper"]))
    if kind in {"uniform", "quniform"}:
        value = rng.uniform(float(dist["min_value"]), float(dist["max_value"]))
    elif kind in {"loguniform", "qloguniform"}:
        value = math.exp(rng.uniform(float(dist["min_value"]), float(dist["max_value"])))
    elif kind in {"normal", "qnormal"}:
        value = rng.gauss(float(dist["mu"]), float(dist["sigma"]))
    elif kind in {"lognormal", "qlognormal"}:
        value = math.exp(rng.gauss(float(dist["mu"]), float(dist["sigma"])))
    else:
        raise UserError(f"search_space.{name}: distribution {kind!r} is not one Azure ML defines")
    if kind.startswith("q") and q:
        value = round(value / float(q)) * float(q)
    return value


def sample(spec: dict[str, Any], seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The parameter sets to try, in order, and notes on what differs from Azure ML."""
    space: dict[str, dict[str, Any]] = spec["search_space"]
    algorithm = spec["sampling_algorithm"]
    settings = algorithm if isinstance(algorithm, dict) else {"type": algorithm}
    kind = str(settings.get("type") or "random").lower()
    limit = int(spec.get("max_total_trials") or DEFAULT_MAX_TRIALS)
    notes: list[str] = []
    if kind == "grid":
        bad = [n for n, d in space.items() if str(d.get("type")).lower() != "choice"]
        if bad:
            raise UserError(
                f"sampling_algorithm grid supports only choice distributions (Azure ML refuses it too): {bad}"
            )
        names = list(space)
        grid = itertools.product(*(list(space[n]["values"]) for n in names))
        return [dict(zip(names, combo, strict=True)) for combo in itertools.islice(grid, limit)], notes
    if kind == "bayesian":
        notes.append("bayesian sampling is approximated by random sampling locally")
    elif kind != "random":
        raise UserError(f"sampling_algorithm {kind!r} is not one Azure ML defines (random, grid, bayesian)")
    if settings.get("rule") not in (None, "random"):
        notes.append(f"random rule {settings.get('rule')!r} is drawn as plain random locally")
    if settings.get("seed") is not None:
        seed = int(settings["seed"])
    notes.append(f"random seed {seed}")
    rng = random.Random(seed)
    return [{n: _draw(n, d, rng) for n, d in space.items()} for _ in range(limit)], notes


def check_sweep(plan: Plan, step: StepPlan) -> None:
    """Refuse, before any step of the pipeline runs, a sweep that would fail when its turn comes: no primary
    metric, a search space that cannot be sampled, or a hyperparameter the trial component does not take."""
    what = f"{plan.source.name}: job {step.name!r}"
    spec = dict(step.sweep or {})
    if not spec.get("primary_metric"):
        raise UserError(f"{what}: a sweep needs objective.primary_metric")
    try:
        sample({**spec, "max_total_trials": 1}, seed=0)
    except UserError as exc:
        raise UserError(f"{what}: {exc}") from None
    for key in spec.get("search_space") or {}:
        if key not in step.input_types:
            raise UserError(f"{what}: search_space.{key} is not an input of the trial component")


def best_trial(trials: list[Trial], goal: str) -> Trial | None:
    scored = [
        t for t in trials if t.status == "completed" and t.metric is not None and not math.isnan(t.metric)
    ]
    if not scored:
        return None
    pick = max if goal == "maximize" else min
    return pick(scored, key=lambda t: (t.metric, -t.index) if goal == "maximize" else (t.metric, t.index))


# -- MLflow -------------------------------------------------------------------------------------------------------
class _Tracker:
    """One MLflow run per trial (MLFLOW_RUN_ID), under a parent run for the sweep node."""

    def __init__(self, runner: LocalRunner, experiment: str, step: StepPlan) -> None:
        from mlflow.tracking import MlflowClient

        from amlops.tracking import ensure_experiment

        self.client = MlflowClient(runner.settings.tracking_uri)
        self.experiment_id = ensure_experiment(runner.settings, experiment)
        parent = self.client.create_run(
            self.experiment_id, tags={"mlflow.runName": step.name, "azureml.runner": "sweep"}
        )
        self.parent_id = parent.info.run_id
        self.lock = threading.Lock()

    def start(self, trial: Trial) -> str:
        with self.lock:
            run = self.client.create_run(
                self.experiment_id,
                tags={"mlflow.parentRunId": self.parent_id, "mlflow.runName": trial.name},
            )
            for key, value in trial.params.items():
                self.client.log_param(run.info.run_id, key, value)
        return str(run.info.run_id)

    def finish(self, run_id: str, status: str, metric: str | None) -> float | None:
        with self.lock:
            self.client.set_terminated(run_id, _RUN_STATUS.get(status, "FAILED"))
            metrics = self.client.get_run(run_id).data.metrics
        value = metrics.get(metric) if metric else None
        return float(value) if value is not None else None

    def history(self, run_id: str, metric: str) -> list[float]:
        """Every value of `metric` the run logged, in the order logged: one interval each."""
        with self.lock:
            entries = self.client.get_metric_history(run_id, metric)
        return [float(m.value) for m in sorted(entries, key=lambda m: (m.timestamp, m.step))]

    def close(self, best: Trial | None, metric: str | None) -> None:
        with self.lock:
            if best is not None and best.metric is not None and metric:
                self.client.log_metric(self.parent_id, metric, best.metric)
                self.client.set_tag(self.parent_id, "best_child_run_id", best.mlflow_run_id or "")
            self.client.set_terminated(self.parent_id, "FINISHED" if best else "FAILED")


# -- running ------------------------------------------------------------------------------------------------------
def _trial_step(step: StepPlan, trial: Trial, run_id: str, timeout: float | None) -> StepPlan:
    inputs = dict(step.inputs)
    env = dict(step.environment_variables)
    for key, value in trial.params.items():
        typ = step.input_types[key]  # check_sweep refused a hyperparameter the trial does not take
        inputs[key] = coerce_primitive(value, typ, f"job {step.name!r} trial {trial.index} input {key!r}")
        # Azure ML exposes each sampled value as AZUREML_SWEEP_<name> too (azure-ai-ml SweepJob docstring).
        env[f"AZUREML_SWEEP_{key}"] = str(inputs[key])
    env["MLFLOW_RUN_ID"] = run_id
    return dataclasses.replace(
        step,
        name=trial.name,
        kind="command",
        sweep=None,
        inputs=inputs,
        outputs={k: OutputSpec(type=v.type) for k, v in step.outputs.items()},
        environment_variables=env,
        timeout=timeout,
    )


class _Monitor:
    """Applies the early termination policy while the trials run: every POLL_SECONDS it reads each started
    trial's primary metric history and cancels a running trial that the policy stops at its latest due interval."""

    def __init__(self, policy: Policy, goal: str, metric: str, tracker: _Tracker) -> None:
        self.policy, self.goal, self.metric, self.tracker = policy, goal, metric, tracker
        self.lock = threading.Lock()
        self.run_ids: dict[str, str] = {}
        self.running: dict[str, Cancel] = {}
        self.final: dict[str, list[float]] = {}
        self.evaluated: dict[str, int] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sweep-early-termination")

    def __enter__(self) -> _Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, trial: Trial, cancel: Cancel) -> None:
        with self.lock:
            self.run_ids[trial.name] = trial.mlflow_run_id or ""
            self.running[trial.name] = cancel

    def ended(self, trial: Trial) -> None:
        history = self.tracker.history(trial.mlflow_run_id or "", self.metric)
        with self.lock:
            self.running.pop(trial.name, None)
            self.final[trial.name] = history

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.check()
            except (
                Exception
            ) as exc:  # a locked store now and then must not end the policy for the whole sweep
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def check(self) -> None:
        with self.lock:
            running, run_ids, final = dict(self.running), dict(self.run_ids), dict(self.final)
        if not running:
            return
        histories = {
            n: final[n] if n in final else self.tracker.history(r, self.metric) for n, r in run_ids.items()
        }
        for name, cancel in running.items():
            due = self.policy.latest_due(len(histories[name]), self.evaluated.get(name, 0))
            if due is None:
                continue
            self.evaluated[name] = due
            reason = should_stop(self.policy, self.goal, name, due, histories, set(final))
            if reason:
                cancel.cancel(f"cancelled by the early termination policy: {reason}")


def run_sweep(runner: LocalRunner, ctx: RunContext, step: StepPlan, label: str) -> StepResult:
    from amlops.runner.local import Cancel, StepResult

    plan = ctx.plan
    spec = dict(step.sweep or {})
    seed = int(hashlib.sha256(f"{runner.run_id}/{step.name}".encode()).hexdigest()[:8], 16)
    params, notes = sample(spec, seed)
    policy = parse_policy(spec.get("early_termination"), f"{plan.source.name}: job {step.name!r}")
    metric, goal = str(spec["primary_metric"]), spec.get("goal") or "minimize"  # check_sweep: it is set
    if policy is not None:
        notes.append(
            f"early_termination {policy.describe()}: applied to each trial's {metric} as logged (read every "
            f"{POLL_SECONDS:g}s); a stopped trial is cancelled"
        )
    trials = [Trial(i, p, f"{step.name}/trial_{i}") for i, p in enumerate(params)]
    started = time.perf_counter()
    deadline = started + float(spec["timeout"]) if spec.get("timeout") else None
    if not runner.quiet:
        out.print(f"[cyan]▶[/] {label}  [dim]sweep of {len(trials)} trials on {metric} ({goal})[/]")
        for note in notes:
            out.print(f"  [dim]{step.name}: {note}[/]")
    tracker = _Tracker(runner, plan.experiment or runner.settings.experiment, step)
    monitor = _Monitor(policy, goal, metric, tracker) if policy is not None else None

    def run_one(trial: Trial) -> None:
        remaining = None if deadline is None else deadline - time.perf_counter()
        if remaining is not None and remaining <= 0:
            trial.status = "not started (sweep timeout)"
            return
        limits = [t for t in (step.timeout, remaining) if t is not None]
        trial.mlflow_run_id = tracker.start(trial)
        sub = _trial_step(step, trial, trial.mlflow_run_id, min(limits) if limits else None)
        cancel = Cancel()
        if monitor is not None:
            monitor.watch(trial, cancel)
        try:
            result = runner._run_step(ctx, sub, f"  {trial.name}", cancel)
        finally:
            if monitor is not None:
                monitor.ended(trial)
        trial.status, trial.seconds, trial.log = result.status, result.seconds, result.log
        trial.stopped_by = cancel.reason if result.status == "cancelled" else None
        trial.metric = tracker.finish(trial.mlflow_run_id, result.status, metric)

    workers = max(1, min(int(spec.get("max_concurrent_trials") or 1), len(trials) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool, monitor or contextlib.nullcontext():
        list(pool.map(run_one, trials))
    if monitor is not None and monitor.errors:
        notes.append(
            f"early_termination: {len(monitor.errors)} metric reads failed, the last: {monitor.errors[-1]}"
        )
    best = best_trial(trials, goal)
    tracker.close(best, metric)
    seconds = time.perf_counter() - started
    log = _write_summary(ctx.step_dir(step.name), step, trials, best, metric, goal, notes)
    if best is None:
        return StepResult(step.name, "failed", seconds, 1, f"sweep of {len(trials)} trials", str(log))
    ctx.outputs_of[step.name] = dict(ctx.outputs_of[best.name])
    runner._deliver_targets(ctx, step, ctx.outputs_of[step.name])
    if not runner.quiet:
        out.print(f"[green]✓[/] {label}  {seconds:.1f}s  best {best.name}: {metric}={best.metric:g}")
    cancelled = sum(t.status == "cancelled" for t in trials)
    command = (
        f"sweep: {len(trials)} trials ({cancelled} cancelled), best {best.name} {metric}={best.metric:g} "
        f"{best.params}"
    )
    return StepResult(step.name, "completed", seconds, 0, command, str(log))


def _write_summary(
    step_dir: Path,
    step: StepPlan,
    trials: list[Trial],
    best: Trial | None,
    metric: str,
    goal: str,
    notes: list[str],
) -> Path:
    summary = {
        "job": step.name,
        "primary_metric": metric,
        "goal": goal,
        "notes": notes,
        "best": best.name if best else None,
        "trials": [dataclasses.asdict(t) for t in trials],
    }
    step_dir.mkdir(parents=True, exist_ok=True)
    (step_dir / "sweep.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    log = step_dir / "user_logs" / "std_log.txt"
    log.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# note: {n}" for n in notes]
    for t in trials:
        shown = "-" if t.metric is None else f"{t.metric:g}"
        why = f" ({t.stopped_by})" if t.stopped_by else ""
        lines.append(f"{t.name}: {t.status}{why} {metric}={shown} params={t.params} log={t.log}")
    if best is None:
        lines.append(
            f"error: no trial of the sweep completed with a logged {metric!r} (log it with mlflow.log_metric)"
        )
    else:
        lines.append(f"best: {best.name} {metric}={best.metric:g} ({goal})")
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return log
