"""`amlops demo`: the closed loop told as a story on the embedded default (local runner, SQLite MLflow, folders).

A year of daily demand with a market change at a known date. v1 is trained on the first weeks and promoted. Then
the demo walks forward week by week: the week is scored by the champion, its actual demand arrives as late labels,
the monitor compares it with the champion's reference profile, and the policy decides. After the change the monitor
flags the changed features and the error rises; the policy retrains on recent labelled data; the challenger passes
the gate and becomes champion; the error recovers.

Every job is a pipeline YAML run by the local runner. To finish in minutes rather than an hour, each champion
scores and monitors all the weeks ahead of it in one batch-inference run and one monitoring run (weekly windows);
the policy then reads those windows one week at a time, exactly as `amlops loop` would after each week. When it
says retrain at week k, training uses only the data up to week k, and the weeks after k are scored and monitored
again by whoever is champion then. Scores and window metrics depend only on the model and the window's rows, so
the timeline equals a strict week-by-week run (tests/loop/test_demo.py checks one week against a separate run).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from amlops.config import Settings
from amlops.drift.policy import WindowSignal
from amlops.drift.result import MonitorResult, WindowResult
from amlops.errors import UserError
from amlops.records import GateVerdict, Registration


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    start: date = date(2025, 1, 6)  # a Monday: weekly windows line up with the weeks the demo walks
    weeks: int = 52
    stores: int = 8
    products: int = 12
    train_weeks: int = 16
    change_week: int = 30
    # A hot summer with a promotion push (covariate shift the trees cannot extrapolate) and a new product line.
    drifts: tuple[str, ...] = ("covariate_shift", "new_category")
    drift_strength: float = 1.5

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
# weekly windows of ~670 rows, a one-week holdout, a gate that wants a 5 % win, and a policy sized for weeks.
DEMO_OVERRIDES: dict[str, dict[str, Any]] = {
    "train": {"holdout_days": 7},
    "gate": {"min_improvement": 0.05},
    "monitor": {"window": "weekly", "min_window_rows": 300},
    "policy": {
        "performance_degradation": 0.3,
        "drift_windows_n": 2,
        "drift_windows_m": 3,
        "cooldown_hours": 24 * 21,
        "min_rows": 300,
        "retrain_window_days": 7 * 10,
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
    for section, values in DEMO_OVERRIDES.items():
        data[section] = {**data[section], **values}
    settings = Settings.model_validate(data)
    settings.base_dir = base.base_dir
    settings.source = base.source
    return settings


MARKER = ".amlops-demo"
# Everything the demo writes into its folder; a rerun removes exactly these, nothing else.
DEMO_ENTRIES = ("data", "state", "runs", "reports", "timeline.json", "error_over_time.png")


def prepare_folder(folder: Path) -> None:
    """Make `folder` ready for a fresh demo. Only what an earlier demo made (the folder carries its marker) is
    removed, and of it only the demo's own entries; any other folder that is not empty is refused."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder}: is a file; the demo needs a folder of its own")
    marker = folder / MARKER
    if folder.is_dir() and any(folder.iterdir()) and not marker.is_file():
        raise UserError(
            f"--out {folder}: not empty and not made by amlops demo; the demo deletes its folder's earlier "
            "results, so give it a new or empty folder"
        )
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
    import pandas as pd

    from amlops.data.generate import GeneratorConfig, generate
    from amlops.job_inputs import column_roles
    from amlops.loop import (
        champion,
        evaluate_policy,
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
    k = cfg.train_weeks
    while k < cfg.weeks:
        served = current.version  # the champion that scored this week; a retrain now serves from next week
        window = windows.get(k)
        now = datetime.combine(cfg.week_start(k) + timedelta(days=7), time(0), tzinfo=UTC)
        # The policy sees this week's window alone, as `amlops loop` would after the week.
        one = results[current.version].model_copy(update={"windows": [window] if window else []})
        decision, history = evaluate_policy(
            settings, store, one, current.version, importance.get(current.version), now, history
        )
        record_decision(
            store, decision, {"champion": current.version, "week": k + 1, "at_time": now.isoformat()}
        )
        mae = window.performance.mae if window is not None and window.performance else None
        drifted = list(window.drifted_features) if window is not None else []
        if window is None or not window.judged:
            verdict = "n/a"
        else:
            verdict = "ALARM" if window.window in decision.alarms else "ok"
        action = "-"
        next_windows = None
        if decision.retrain:
            labelled = data_dir / "labelled_history.parquet"
            full[week_no <= k].to_parquet(labelled, index=False)
            dest = folder / "state" / "retrain" / f"data-week{k + 1}.parquet"
            say(f"week {k + 1}: policy says retrain — {decision.reasons[0]}")

            until = now.date() - timedelta(days=1)

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
            mae=float(mae) if mae is not None else None,
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
            },
            indent=2,
            default=str,
        ),
        encoding="utf-8",
    )
    result.plot = str(plot_timeline(result, cfg, folder / "error_over_time.png"))
    return result


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
    }


def summary(result: DemoResult, cfg: DemoConfig) -> dict[str, float | None]:
    """Mean weekly MAE before the change, between the change and the first promotion after it, and after."""
    change = cfg.change_week + 1
    promoted = next((p["week"] for p in result.promotions[1:] if p["week"] >= change), None)

    def mean(rows: list[WeekRow]) -> float | None:
        vals = [r.mae for r in rows if r.mae is not None]
        return sum(vals) / len(vals) if vals else None

    before = mean([r for r in result.rows if r.week < change])
    during = mean([r for r in result.rows if change <= r.week <= (promoted or cfg.weeks)])
    after = mean([r for r in result.rows if promoted is not None and r.week > promoted])
    return {"mae_before_change": before, "mae_after_change_old_model": during, "mae_after_promotion": after}


def plot_timeline(result: DemoResult, cfg: DemoConfig, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = [r.week for r in result.rows]
    mae = [r.mae if r.mae is not None else float("nan") for r in result.rows]
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    ax.plot(
        weeks, mae, marker="o", markersize=3.5, color="#2b6cb0", label="weekly MAE (champion, late labels)"
    )
    drifted = [(r.week, r.mae) for r in result.rows if r.drifted_features and r.verdict != "ALARM" and r.mae]
    if drifted:
        xs, ys = zip(*drifted, strict=True)
        ax.scatter(
            xs,
            ys,
            facecolors="none",
            edgecolors="#f08c00",
            zorder=3,
            s=30,
            label="some features drifted, error held (no alarm)",
        )
    alarms = [(r.week, r.mae) for r in result.rows if r.verdict == "ALARM" and r.mae is not None]
    if alarms:
        xs, ys = zip(*alarms, strict=True)
        ax.scatter(xs, ys, color="#e03131", zorder=4, s=40, label="policy alarm")
    change_week = cfg.change_week + 1
    ax.axvline(change_week, color="#868e96", linestyle="--", linewidth=1)
    ax.text(
        change_week + 0.2, ax.get_ylim()[1] * 0.95, "market change", color="#495057", fontsize=8, va="top"
    )
    for p in result.promotions[1:]:
        ax.axvline(p["week"] + 0.5, color="#2f9e44", linewidth=1.5)
        ax.text(
            p["week"] + 0.7,
            ax.get_ylim()[1] * 0.85,
            f"v{p['version']} promoted",
            color="#2f9e44",
            fontsize=8,
            va="top",
        )
    ax.set_xlabel("week")
    ax.set_ylabel("MAE (units)")
    ax.set_title("amlops demo: error over time, drift and promotions")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
