"""`amlops demo`: the closed loop told as a story on the embedded default (local runner, SQLite MLflow, folders).

Forty-six weeks of daily demand with a market change at a known date. v1 is trained on the first 26 weeks (winter to
the summer peak) and promoted. Then the demo walks forward week by week: the week is scored by the champion and the
monitor compares it with the champion's reference profile and estimates its error from its rows (the error estimator
stored with the model); its actual demand, the labels, arrives `label_delay_weeks` later. So at the end of each week
the policy judges that week on its *estimated* error and the week whose labels just came on its *measured* error
(labels overrule the estimate). The change moves the mix toward rows where the model's error per unit is high, all
inside what v1 saw, and the same rows sell less (which only labels show): with the default seed the estimate
alarms at the end of the first changed week and the labels confirm it a week later. The policy retrains on the
labels that have arrived; the gate rejects a challenger that has not seen enough of the change, and a later one
becomes champion.

Every job is a pipeline YAML run by the local runner. To finish in minutes rather than an hour, each champion
scores and monitors all the weeks ahead of it in one batch-inference run and one monitoring run (weekly windows,
with the labels); the policy then reads those windows one week at a time, each without its labels until they are
due, exactly as `amlops loop` would after each week. The estimate never reads a label (the monitor computes it
from the features and the prediction). When the policy says retrain at week k, training uses only the labels that
have arrived by then, and the weeks after k are scored and monitored again by whoever is champion then. Scores
and window metrics depend only on the model and the window's rows, so the timeline equals a strict week-by-week
run (tests/loop/test_demo.py checks one week against a separate run).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.config import Settings, shipped_schema
from amlops.drift.policy import Decision, WindowSignal
from amlops.drift.result import MonitorResult, WindowResult
from amlops.errors import UserError
from amlops.job_inputs import SCHEMA_ROLES
from amlops.records import GateVerdict, Registration

if TYPE_CHECKING:
    from amlops.retrain import LedgerStore


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    # A Monday near the coldest day: the 26 training weeks run from winter to the summer peak, so v1 (and its
    # error estimator, fitted out of fold over them) has seen every temperature of the year; the weeks after
    # come back down through the same range.
    start: date = date(2025, 1, 13)
    weeks: int = 46
    # 12 x 16: ~1,340 rows a week, ~670 once the busy half is gone: the estimate's interval narrow enough for
    # its low end to clear the limit in the first changed week, the measured error steady enough before.
    stores: int = 12
    products: int = 16
    train_weeks: int = 26
    change_week: int = 35
    # The change has two parts. (1) The busiest half of the store x product pairs leaves the shelves (sold online
    # from then on), so each week's rows are the quieter half: every value stays inside what v1 saw and demand
    # keeps its function, but counts of a few units are relatively noisier, so the error per unit sold rises.
    # v1's error estimator (fitted out of fold over all 26 weeks) learned where the error per unit is high and
    # sees that rise from the week's rows alone, before any label. (2) A competitor opens nearby and the same
    # rows sell half as much: a concept change no estimator can see from the rows, which the labels show and a
    # retrain on the changed weeks learns. Demand is scaled down so that counts are small.
    drifts: tuple[str, ...] = ("slow_movers", "level_shift")
    drift_strength: float = 2.0  # the concept part: demand x 0.5 (the mix part has no strength)
    demand_scale: float = 0.2
    # Actual demand (the labels) arrives this many weeks after the week it belongs to.
    label_delay_weeks: int = 1

    def __post_init__(self) -> None:
        # 0 would judge a week on labels that have not arrived (the story is "the estimate comes first").
        if self.label_delay_weeks < 1:
            raise ValueError("label_delay_weeks must be >= 1: labels arrive after their week")
        if not 0 < self.train_weeks < self.change_week < self.weeks:
            raise ValueError("the demo needs 0 < train_weeks < change_week < weeks")

    @classmethod
    def for_weeks(cls, weeks: int, seed: int = 7) -> DemoConfig:
        """`amlops demo --weeks N`: the default story, or one with its weeks scaled to N."""
        default = cls(seed=seed)
        if weeks == default.weeks:
            return default
        return cls(
            seed=seed,
            weeks=weeks,
            train_weeks=round(weeks * default.train_weeks / default.weeks),
            change_week=round(weeks * default.change_week / default.weeks),
        )

    @property
    def change_date(self) -> date:
        return self.start + timedelta(weeks=self.change_week)

    def week_start(self, k: int) -> date:
        return self.start + timedelta(weeks=k)


@dataclass
class WeekRow:
    week: int
    start: str
    champion: str
    drifted_features: list[str]
    verdict: str  # "ok" | "ALARM" | "n/a" (window too small to judge)
    mae: float | None
    action: str
    after_change: bool
    # The monitor's label-free estimate of the week's MAE (before its labels would arrive), its 95 % interval,
    # and whether the estimate alone would have alarmed (amlops.drift.policy.estimated_alarm).
    estimated_mae: float | None = None
    estimated_low: float | None = None
    estimated_high: float | None = None
    estimated_alarm: bool = False
    estimated_unsupported: float | None = None  # share of the week's rows outside what the estimator saw
    # Labels arrive `label_delay_weeks` after the week: the week they came, and whether the measured error alone
    # alarms ("ALARM" | "ok" | "n/a"; None while they have not arrived: the last weeks of the demo).
    labels_week: int | None = None
    measured_verdict: str | None = None
    # What the policy compares with `performance_degradation`: the error per unit (estimated: MAE per unit
    # predicted; measured: WAPE) over the champion's holdout level, minus 1; the estimate's at its value.
    estimated_rise: float | None = None
    measured_rise: float | None = None
    wape: float | None = None  # the measured error per unit sold (sum |error| / sum actual), with the labels


@dataclass
class DemoResult:
    rows: list[WeekRow] = field(default_factory=list)
    promotions: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    plot: str | None = None
    timeline_file: str | None = None
    folder: str = ""


# The settings the demo's story runs with, over the user's amlops.yaml (printed at the start of `amlops demo`):
# weekly windows of ~670 rows, a two-week holdout, a gate that wants a 5 % win, and a policy sized for weeks.
DEMO_OVERRIDES: dict[str, dict[str, Any]] = {
    # Two weeks of holdout: the champion's measured baseline is not one lucky week.
    "train": {"holdout_days": 14},
    "gate": {"min_improvement": 0.05},
    "monitor": {"window": "weekly", "min_window_rows": 300},
    "policy": {
        # Low for a policy, but the estimate's alarm needs the low end of its 95 % interval past it (the
        # measured error, a point, has no interval: before the change it stays under the limit).
        "performance_degradation": 0.15,
        "drift_windows_n": 2,
        "drift_windows_m": 3,
        "cooldown_hours": 24 * 14,
        "min_rows": 300,
        # Every labelled week (the last two held out): a challenger sees the whole year's range, as v1 did, and
        # learns the change from the labelled weeks after it (the calendar features mark them); a short window
        # would leave the new champion's profile and error estimator blind to the weeks still to come.
        "retrain_window_days": 7 * 52,
        "include_original_data": False,
        "ledger": None,  # the demo's ledger is its own, never a shared one from amlops.yaml
    },
}


def overrides_text() -> str:
    return "; ".join(
        f"{section}.{key}={value}"
        for section, values in DEMO_OVERRIDES.items()
        for key, value in values.items()
        if value is not None
    )


def demo_settings(base: Settings, folder: Path) -> Settings:
    """The user's settings, with the demo's own state (a fresh registry) and `DEMO_OVERRIDES`."""
    data = base.model_dump()
    data.update(state_dir=str(folder / "state"), runs_dir=str(folder / "runs"), experiment="amlops-demo")
    data["mlflow"] = {"tracking_uri": None, "registry_uri": None, "artifact_root": None}
    # The demo's data is the generator's: its schema and the column roles it gives, not the ones the project
    # declares for its own data (which would stop the first training on a missing column).
    data["data"] = {**data["data"], "schema_file": str(shipped_schema())}
    data["monitor"] = {k: v for k, v in data["monitor"].items() if k not in SCHEMA_ROLES}
    for section, values in DEMO_OVERRIDES.items():
        data[section] = {**data[section], **values}
    settings = Settings.model_validate(data)
    settings.base_dir = base.base_dir
    settings.source = base.source
    return settings


MARKER = ".amlops-demo"
# Held (flock) for as long as a demo runs in the folder: a second demo there would delete the first one's state.
LOCK = ".amlops-demo.lock"
# Everything the demo writes into its folder; a rerun removes exactly these, nothing else.
DEMO_ENTRIES = ("data", "state", "runs", "reports", "timeline.json", "error_over_time.png")


def check_folder(folder: Path) -> None:
    """Refuse a file, or a folder that is not empty and not an earlier demo's (it carries the marker)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder}: is a file; the demo needs a folder of its own")
    marker = folder / MARKER
    if folder.is_dir() and any(p.name != LOCK for p in folder.iterdir()) and not marker.is_file():
        raise UserError(
            f"--out {folder}: not empty and not made by amlops demo; the demo deletes its folder's earlier "
            "results, so give it a new or empty folder"
        )


def prepare_folder(folder: Path) -> None:
    """Make `folder` ready for a fresh demo. Only what an earlier demo made (the folder carries its marker) is
    removed, and of it only the demo's own entries; any other folder that is not empty is refused."""
    check_folder(folder)
    marker = folder / MARKER
    for name in DEMO_ENTRIES:
        entry = folder / name
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.exists() or entry.is_symlink():
            entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "made by `amlops demo`; a rerun replaces this folder's demo results\n", encoding="utf-8"
    )


def share_plan_cache(base: Settings, settings: Settings) -> None:
    """The demo's fresh state folder uses the project's parsed-plan cache (amlops.runner.plan_cache, keyed by the
    content of every file a parse read and the runner's version): the demo runs the project's own pipeline files,
    so after the first demo or `amlops run` none of its pipelines is parsed again and azure-ai-ml (1-2.5 s to
    import) is never loaded. A rerun of the demo removes only the link."""
    shared = base.state_path / "plans"
    link = settings.state_path / "plans"
    if shared.resolve() == link.resolve() or link.exists() or link.is_symlink():
        return
    try:
        shared.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(shared.resolve(), target_is_directory=True)
    except OSError:  # a read-only project or no symlinks: the demo parses into its own cache
        return


def _week_of(day: date, cfg: DemoConfig) -> int:
    return (day - cfg.start).days // 7


def run_demo(
    base: Settings,
    folder: Path,
    cfg: DemoConfig = DemoConfig(),
    on_week: Callable[[WeekRow], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DemoResult:
    """The story in `folder`, which no other demo may use meanwhile (refused at once, not waited for)."""
    from amlops.locks import file_lock
    from amlops.shell_values import shell_syntax, shown

    chars = shell_syntax(str(folder.resolve()))
    if (
        chars
    ):  # refused before any work: every step input under it would be refused later (amlops.shell_values)
        raise UserError(
            f"--out {folder}: the path has shell syntax ({shown(chars)}); the demo's steps get "
            "paths under it as inputs, which Azure ML pastes into a command line: use a folder without them"
        )
    check_folder(folder)  # before the lock file is made: a refused folder is left as it was
    folder.mkdir(parents=True, exist_ok=True)
    busy = lambda: UserError(  # noqa: E731
        f"--out {folder}: another amlops demo is running in this folder; wait for it to finish or give "
        "this one another folder"
    )
    with file_lock(folder / LOCK, timeout=0, on_timeout=busy):
        return _run_demo(base, folder, cfg, on_week, on_step)


def _run_demo(
    base: Settings,
    folder: Path,
    cfg: DemoConfig,
    on_week: Callable[[WeekRow], None] | None,
    on_step: Callable[[str], None] | None,
) -> DemoResult:
    import pandas as pd

    from amlops.data.generate import GeneratorConfig, generate
    from amlops.job_inputs import column_roles
    from amlops.loop import (
        champion,
        monitor_local,
        retrain_dataset,
        score_local,
        train_local,
    )
    from amlops.retrain import FolderStore, record_decision, trigger

    say = on_step or (lambda _msg: None)
    prepare_folder(folder)
    data_dir = folder / "data"
    data_dir.mkdir(parents=True)
    settings = demo_settings(base, folder)
    share_plan_cache(base, settings)
    store = FolderStore(settings.state_path / "retrain")
    result = DemoResult(folder=str(folder))

    say(
        f"generating {cfg.weeks} weeks of demand ({cfg.stores} stores x {cfg.products} products), "
        f"market change ({', '.join(cfg.drifts)}) on {cfg.change_date}"
    )
    full = generate(
        GeneratorConfig(
            start=cfg.start,
            days=cfg.weeks * 7,
            stores=cfg.stores,
            products=cfg.products,
            seed=cfg.seed,
            drift_date=cfg.change_date,
            drifts=cfg.drifts,
            drift_strength=cfg.drift_strength,
            demand_scale=cfg.demand_scale,
        )
    )
    full["date"] = pd.to_datetime(full["date"])
    week_no = ((full["date"] - pd.Timestamp(cfg.start)).dt.days // 7).to_numpy()
    full_path = data_dir / "demand.parquet"
    full.to_parquet(full_path, index=False)
    roles = column_roles(settings)
    label, id_col = roles["label_column"], roles["id_column"]

    train_path = data_dir / "initial_training.parquet"
    full[week_no < cfg.train_weeks].to_parquet(train_path, index=False)
    say(f"training v1 on weeks 1-{cfg.train_weeks} through pipelines/training.yml")
    first = train_local(settings, train_path)
    champ = champion(settings)
    if champ is None:
        raise RuntimeError(
            f"v1 was not promoted: {json.dumps(first.get('verdict'))[:300]}"
        )  # the ledger's JSON
    result.promotions.append({"week": cfg.train_weeks, "version": champ.version, "reason": "initial model"})

    def segment(start_week: int, version: str) -> dict[int, WindowResult]:
        """Score and monitor weeks start_week.. with the current champion: {week: (window, signal)}."""
        seg_dir = data_dir / f"segment-v{version}-w{start_week}"
        seg_dir.mkdir(parents=True)
        rows = full[week_no >= start_week]
        inputs = seg_dir / "inputs"
        inputs.mkdir()
        rows.drop(columns=[label]).to_parquet(inputs / "batch.parquet", index=False)
        labels = seg_dir / "labels.parquet"
        rows[[id_col, label]].to_parquet(labels, index=False)
        say(f"v{version}: scoring weeks {start_week + 1}-{cfg.weeks} (pipelines/batch_inference.yml)")
        predictions = score_local(settings, inputs, current)
        say(f"v{version}: monitoring weekly windows with late labels (pipelines/monitoring.yml)")
        run = monitor_local(settings, predictions, labels, current.model_dir)
        if run.report is not None:
            kept = folder / "reports" / f"monitor-v{version}-from-week{start_week + 1}.html"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run.report, kept)
            result.reports.append(str(kept))
        windows: dict[int, WindowResult] = {}
        for w in run.result.windows:
            if w.start:
                windows[_week_of(date.fromisoformat(str(w.start)[:10]), cfg)] = w
        importance[version] = run.importance()
        results[version] = run.result
        return windows

    importance: dict[str, dict[str, float] | None] = {}
    results: dict[str, MonitorResult] = {}

    current = champ
    history: list[WindowSignal] = []
    windows = segment(cfg.train_weeks, current.version)
    delay = cfg.label_delay_weeks
    # week -> (the champion that served it, its window): what the week's late labels are judged against
    served_by: dict[int, tuple[str, WindowResult | None]] = {}
    k = cfg.train_weeks
    while k < cfg.weeks:
        served = current.version  # the champion that scored this week; a retrain now serves from next week
        window = windows.get(k)
        served_by[k] = (served, window)
        now = datetime.combine(cfg.week_start(k) + timedelta(days=7), time(0), tzinfo=UTC)
        # The policy sees this week's window without its labels (the estimate only) and the window of the week
        # whose labels arrive now (`label_delay_weeks` ago), when the same champion served it: labels overrule
        # the estimate it was judged on then.
        arrived_for, arrived = served_by.get(k - delay, ("", None))
        if arrived_for != served:
            arrived = None
        seen = [w for w in (arrived, without_labels(window)) if w is not None]
        decision, history = judge_week(
            settings, store, results[current.version], seen, current.version, importance, now, history
        )
        if decision is not None:
            record_decision(
                store, decision, {"champion": current.version, "week": k + 1, "at_time": now.isoformat()}
            )
        drifted = list(window.drifted_features) if window is not None else []
        if decision is None or window is None or not window.judged:
            verdict = "n/a"
        else:
            verdict = "ALARM" if window.window in decision.alarms else "ok"
        if k - delay >= cfg.train_weeks:
            confirm_labels(
                result.rows[k - delay - cfg.train_weeks], served_by[k - delay], settings, importance, k
            )
        action = "-"
        next_windows = None
        if decision is not None and decision.retrain:
            # Retraining can only use the labels that have arrived: up to the week `delay` weeks back.
            labelled_until = k - delay
            labelled = data_dir / "labelled_history.parquet"
            full[week_no <= labelled_until].to_parquet(labelled, index=False)
            dest = folder / "state" / "retrain" / f"data-week{k + 1}.parquet"
            say(f"week {k + 1}: policy says retrain — {decision.reasons[0]}")

            until = cfg.week_start(labelled_until + 1) - timedelta(days=1)

            def start(until: date = until, labelled: Path = labelled, dest: Path = dest) -> dict[str, Any]:
                retrain_dataset(settings, labelled, until, dest)
                return train_local(settings, dest)

            fired = trigger(store, decision, start, now=now)
            # The ledger keeps the run as JSON; read it back typed.
            gate = (
                GateVerdict.model_validate(fired.detail["verdict"]) if fired.detail.get("verdict") else None
            )
            registered = fired.detail.get("registration")
            new_version = Registration.model_validate(registered).version if registered else "?"
            new = champion(settings)
            if new is not None and new.version != current.version:
                action = f"retrain → v{new.version} promoted"
                result.promotions.append(
                    {"week": k + 1, "version": new.version, "reason": "; ".join(decision.reasons[:2])}
                )
                current = new
                history = []
                if k + 1 < cfg.weeks:
                    next_windows = segment(k + 1, current.version)
            else:
                action = f"retrain → v{new_version} rejected by the gate"
                result.rejections.append(
                    {
                        "week": k + 1,
                        "version": new_version,
                        "gate": gate.summary if gate else "no verdict",
                    }
                )
        row = WeekRow(
            **estimate_columns(window, settings),
            week=k + 1,
            start=cfg.week_start(k).isoformat(),
            champion=f"v{served}",
            drifted_features=drifted,
            verdict=verdict,
            mae=None,
            action=action,
            after_change=cfg.week_start(k) >= cfg.change_date,
        )
        result.rows.append(row)
        if on_week:
            on_week(row)
        if next_windows is not None:
            windows = next_windows
        k += 1

    result.timeline_file = str(folder / "timeline.json")
    Path(result.timeline_file).write_text(
        json.dumps(
            {
                "config": {**asdict(cfg), "change_date": cfg.change_date.isoformat()},
                "rows": [asdict(r) for r in result.rows],
                "promotions": result.promotions,
                "rejections": result.rejections,
                "first_alarms": first_alarms(result),
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    result.plot = str(
        plot_timeline(result, cfg, folder / "error_over_time.png", settings.policy.performance_degradation)
    )
    return result


def judge_week(
    settings: Settings,
    store: LedgerStore,
    result: MonitorResult,
    seen: list[WindowResult],
    version: str,
    importance: dict[str, dict[str, float] | None],
    now: datetime,
    history: list[WindowSignal],
) -> tuple[Decision | None, list[WindowSignal]]:
    """The policy at the end of a week, over the windows it sees then (the week's, without labels, and the
    one whose labels just came), after the champion's earlier ones. No decision when it sees none: a result
    without windows reads as its overall window (amlops.drift.policy.window_signals, for `--window all`),
    which here is every week the champion monitored at once."""
    from amlops.loop import evaluate_policy

    if not seen:
        return None, history
    one = result.model_copy(update={"windows": seen})
    return evaluate_policy(settings, store, one, version, importance.get(version), now, history)


def without_labels(window: WindowResult | None) -> WindowResult | None:
    """The window as the policy sees it the week it ends: its labels have not arrived, so no measured error
    (the holdout reference stays: it belongs to the champion, not to the labels). Drift and the estimate need
    no labels and stay."""
    if window is None or window.performance is None:
        return window
    performance = window.performance.model_copy(
        update={"count": 0, "mae": None, "rmse": None, "mape": None, "wape": None}
    )
    return window.model_copy(update={"performance": performance})


def confirm_labels(
    row: WeekRow,
    served: tuple[str, WindowResult | None],
    settings: Settings,
    importance: dict[str, dict[str, float] | None],
    k: int,
) -> None:
    """The week's labels arrive at the end of week k + 1: its measured MAE, and whether the measured error alone
    alarms (amlops.drift.policy.window_alarm on the labelled window, against the champion that served it)."""
    from amlops.drift.policy import window_alarm

    version, window = served
    row.labels_week = k + 1
    if window is None or window.performance is None or window.performance.mae is None:
        return
    row.mae = float(window.performance.mae)
    reference = window.performance.reference or {}
    wape, ref_wape = window.performance.wape, reference.get("wape")
    row.wape = float(wape) if wape is not None else None
    if wape is not None and ref_wape:
        row.measured_rise = wape / ref_wape - 1.0
    if not window.judged:
        row.measured_verdict = "n/a"
        return
    # The measured error alone, as when labels overrule the estimate.
    labelled = WindowSignal(
        window=window.window, rows=window.row_count, mae=window.performance.mae, wape=window.performance.wape
    )
    alarm, _why, _share = window_alarm(
        labelled, settings.policy, importance.get(version), reference.get("mae"), reference.get("wape")
    )
    row.measured_verdict = "ALARM" if alarm else "ok"


def estimate_columns(window: WindowResult | None, settings: Settings) -> dict[str, Any]:
    """The week's estimated error (what the monitor says before labels) and whether it alone would alarm."""
    from amlops.drift.policy import estimate_signal, estimated_alarm

    est = window.estimated_performance if window is not None else None
    if window is None or est is None or est.mae is None:
        return {}
    rise = estimate_signal(window)
    signal = WindowSignal(
        window=window.window,
        rows=window.row_count,
        estimated_loss_low=rise.get("estimated_loss_low"),
        estimated_loss=rise.get("estimated_loss"),
    )
    alarm, _ = estimated_alarm(signal, settings.policy)
    return {
        "estimated_mae": est.mae,
        "estimated_low": est.mae_low,
        "estimated_high": est.mae_high,
        "estimated_alarm": bool(alarm and window.judged),
        "estimated_unsupported": est.unsupported_share,
        "estimated_rise": rise.get("estimated_loss"),
    }


def summary(result: DemoResult, cfg: DemoConfig) -> dict[str, float | None]:
    """Mean weekly error per unit sold (WAPE) before the change, from the change to the last promotion after
    it, and after that promotion. Per unit, not MAE in units: the change moves demand itself (the busy half
    goes, the rest sells less), so MAE in units falls with it while the model gets worse."""
    change = cfg.change_week + 1
    promoted = next((p["week"] for p in reversed(result.promotions[1:]) if p["week"] >= change), None)

    def mean(rows: list[WeekRow]) -> float | None:
        vals = [r.wape for r in rows if r.wape is not None]
        return sum(vals) / len(vals) if vals else None

    before = mean([r for r in result.rows if r.week < change])
    during = mean(
        [r for r in result.rows if change <= r.week <= (promoted or cfg.weeks) and r.champion == "v1"]
    )
    after = mean([r for r in result.rows if promoted is not None and r.week > promoted])
    return {"wape_before_change": before, "wape_after_change_v1": during, "wape_after_last_promotion": after}


def first_alarms(result: DemoResult) -> dict[str, int | None]:
    """Which signal fired first after the change: the estimate (at the end of the week, no labels) or the
    measured error (when that week's labels arrived). Weeks are the demo's 1-based weeks."""
    after = [r for r in result.rows if r.after_change]
    est = next((r for r in after if r.estimated_alarm), None)
    measured = next((r for r in after if r.measured_verdict == "ALARM"), None)
    retrain = next((r.week for r in after if r.action.startswith("retrain")), None)
    return {
        "estimated_alarm_week": est.week if est else None,
        "measured_alarm_week": measured.week if measured else None,
        # The measured alarm is known only when the alarmed week's labels arrive.
        "measured_known_week": measured.labels_week if measured else None,
        "retrain_week": retrain,
    }


def story_lines(result: DemoResult, cfg: DemoConfig) -> list[str]:
    """The estimated-vs-measured part of the story, in words (printed by `amlops demo`, drawn in the plot)."""
    first = first_alarms(result)
    est, known = first["estimated_alarm_week"], first["measured_known_week"]
    lines = [
        f"labels arrive {cfg.label_delay_weeks} week(s) after their week: each week the policy judges the new "
        "week on its estimated error and the week whose labels just came on its measured error"
    ]
    if est is not None:
        lines.append(f"estimated alarm: week {est}, at the end of the week, from its rows alone (no labels)")
    else:
        lines.append("estimated alarm: none")
    if known is not None:
        lines.append(
            f"measured alarm: week {first['measured_alarm_week']}'s labels, known at the end of week {known}"
        )
    else:
        lines.append("measured alarm: none (labels never showed the error past the limit)")
    if est is not None and known is not None:
        lead = known - est
        order = "the estimate fired first" if lead > 0 else "the labels fired first or together"
        lines.append(f"{order} ({abs(lead)} week(s) apart); retrain decided at week {first['retrain_week']}")
    return lines


def weeks_text(n: int) -> str:
    return f"{n} week" if n == 1 else f"{n} weeks"


def plot_timeline(result: DemoResult, cfg: DemoConfig, path: Path, limit: float | None = None) -> Path:
    """Two panels: MAE in units (estimated at the week's end, measured when the labels come), and what the
    policy judges, the error per unit against the champion's holdout level, with its limit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    nan = float("nan")
    weeks = [r.week for r in result.rows]
    mae = [r.mae if r.mae is not None else nan for r in result.rows]
    est = [r.estimated_mae if r.estimated_mae is not None else nan for r in result.rows]
    low = [r.estimated_low if r.estimated_low is not None else nan for r in result.rows]
    high = [r.estimated_high if r.estimated_high is not None else nan for r in result.rows]
    fig, (ax, bx) = plt.subplots(
        2, 1, figsize=(10, 6.4), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    ax.fill_between(weeks, low, high, color="#f08c00", alpha=0.15, linewidth=0)
    ax.plot(
        weeks,
        est,
        color="#f08c00",
        linewidth=1.6,
        label="estimated MAE, at the week's end (no labels; 95 % band)",
    )
    ax.plot(
        weeks,
        mae,
        marker="o",
        markersize=3.5,
        color="#2b6cb0",
        label=f"measured MAE, once the labels arrive ({weeks_text(cfg.label_delay_weeks)} later)",
    )
    est_alarms = [(r.week, r.estimated_mae) for r in result.rows if r.estimated_alarm and r.estimated_mae]
    if est_alarms:
        xs, ys = zip(*est_alarms, strict=True)
        ax.scatter(xs, ys, marker="^", color="#e03131", zorder=4, s=55, label="alarm on the estimate")
    measured = [(r.week, r.mae) for r in result.rows if r.measured_verdict == "ALARM" and r.mae is not None]
    if measured:
        xs, ys = zip(*measured, strict=True)
        ax.scatter(
            xs,
            ys,
            facecolors="none",
            edgecolors="#e03131",
            linewidths=1.6,
            zorder=4,
            s=70,
            label="alarm on the measured error (when its labels came)",
        )
    top = ax.get_ylim()[1]
    change_week = cfg.change_week + 1
    ax.axvline(change_week, color="#868e96", linestyle="--", linewidth=1)
    ax.text(change_week + 0.2, top * 0.97, "market change", color="#495057", fontsize=8, va="top")
    for p in result.promotions[1:]:
        ax.axvline(p["week"] + 0.5, color="#2f9e44", linewidth=1.5)
        ax.text(
            p["week"] + 0.7, top * 0.89, f"v{p['version']} promoted", color="#2f9e44", fontsize=8, va="top"
        )
    first = first_alarms(result)
    title = "amlops demo: estimated vs measured error, alarms and promotions"
    if first["estimated_alarm_week"] is not None or first["measured_known_week"] is not None:
        # In the title, not on the axes: the curves run through any corner of them.
        title += (
            f"\nfirst alarm on the estimate: week {first['estimated_alarm_week'] or '-'} (no labels) · on the "
            f"labels: known at week {first['measured_known_week'] or '-'} (labels of week "
            f"{first['measured_alarm_week'] or '-'})"
        )
    ax.set_ylabel("MAE (units)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", fontsize=7.5)
    ax.grid(alpha=0.3)
    pct = [100 * r.estimated_rise if r.estimated_rise is not None else nan for r in result.rows]
    bx.plot(weeks, pct, color="#f08c00", linewidth=1.6, label="estimated (no labels)")
    got = [100 * r.measured_rise if r.measured_rise is not None else nan for r in result.rows]
    bx.plot(weeks, got, marker="o", markersize=3, color="#2b6cb0", label="measured (labels)")
    if limit is not None:
        bx.axhline(100 * limit, color="#e03131", linestyle=":", linewidth=1, label="policy limit")
    bx.axhline(0, color="#868e96", linewidth=0.8)
    bx.axvline(change_week, color="#868e96", linestyle="--", linewidth=1)
    for p in result.promotions[1:]:
        bx.axvline(p["week"] + 0.5, color="#2f9e44", linewidth=1.5)
    bx.set_xlabel("week")
    bx.xaxis.set_major_locator(MaxNLocator(integer=True))
    bx.set_ylabel("error per unit vs\nchampion's holdout (%)")
    bx.legend(loc="upper left", fontsize=7.5)
    bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
