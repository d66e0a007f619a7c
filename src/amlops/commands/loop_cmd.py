"""`amlops loop` (monitor → policy → retrain, once or repeatedly) and `amlops demo` (the closed-loop story)."""

from __future__ import annotations

import shlex
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from amlops.commands.options import EnvOption, JsonOption, TargetOption
from amlops.console import emit_json, handle_errors, machine_readable, out
from amlops.errors import UsageError
from amlops.job_inputs import Target

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from amlops.demo import DemoConfig, DemoResult
    from amlops.loop import CycleOutcome

# `amlops demo --weeks`: three years. The generated demand repeats its seasons every 52 weeks, so more weeks tell
# the same story again, while everything grows with them: ~1,340 rows a week held in memory, a policy step a
# week, each champion scoring and monitoring every week after it, each retrain training on up to a year. The
# default 46 weeks takes about a minute (docs/monitor.md); 156 took 180 s against 117 s for 20 in one review run
# on a busy machine (its trainings and pipeline starts dominate), while the data, the weekly policy steps and
# the rows each champion scores grow with the weeks: 100,000 weeks would be 134 million rows in memory.
MAX_DEMO_WEEKS = 156


WEEK_COLUMNS = (
    "week",
    "starts",
    "champion",
    "drifted features",
    "estimated (week's end)",
    "policy",
    "measured (labels)",
    "action",
)


def week_table(result: DemoResult, cfg: DemoConfig) -> Table:
    """The demo's timeline, one row per week (built at the end: measured values arrive weeks after their row)."""
    from rich.table import Table

    from amlops.drift.policy import MAX_UNSUPPORTED_SHARE

    table = Table(title="amlops demo — one row per week", show_lines=False)
    for col in WEEK_COLUMNS:
        table.add_column(
            col,
            no_wrap=True,
            overflow="ellipsis",
            max_width=34 if col == "drifted features" else None,
            # Week 100 and later must not fold to "1…" when the table is squeezed (--weeks up to 156).
            min_width=len(str(MAX_DEMO_WEEKS)) if col == "week" else None,
        )
    for row in result.rows:
        estimated = "-"
        if row.estimated_mae is not None:
            estimated = f"{row.estimated_mae:.2f} ({row.estimated_low:.1f}–{row.estimated_high:.1f})"
            if (row.estimated_unsupported or 0.0) > MAX_UNSUPPORTED_SHARE:
                estimated += " ?"
            if row.estimated_alarm:
                estimated = f"[bold red]{estimated} ![/]"
        measured = "-"
        if row.mae is not None:
            flag = " [bold red]ALARM[/]" if row.measured_verdict == "ALARM" else ""
            measured = f"{row.mae:.2f} @wk {row.labels_week}{flag}"
        change = " ◆" if row.week == cfg.change_week + 1 else ""
        verdict = "[bold red]ALARM[/]" if row.verdict == "ALARM" else row.verdict
        action = f"[bold green]{row.action}[/]" if "promoted" in row.action else row.action
        table.add_row(
            str(row.week),
            row.start + change,
            row.champion,
            ", ".join(row.drifted_features) or "-",
            estimated,
            verdict,
            measured,
            action,
        )
    return table


def table_console(table: Table) -> Console:
    """The terminal's console; outside one (a CI log, `make demo > file`) rich assumes 80 columns and would
    squeeze the timeline to "we…", "champ…", "retrain → v2 rejected by the ga…": as wide as the table instead.
    A pipe is told by the file, not by `is_terminal`: FORCE_COLOR or TTY_COMPATIBLE=1 (colours in a CI log) make
    rich call a pipe a terminal (rich console.py `Console.is_terminal`) 160 columns wide (amlops.console), which
    squeezed the table again. The console made here reads the same variables, so the colours stay."""
    isatty = getattr(out.file, "isatty", None)
    if out.is_terminal and isatty is not None and isatty():
        return out
    from rich.console import Console

    natural = Console(width=10_000).measure(table).maximum
    return Console(width=max(natural, 80), highlight=False, soft_wrap=True)


class RetrainVia(StrEnum):
    local = "local"
    azure = "azure"
    github = "github"


def _print_outcome(outcome: CycleOutcome) -> None:
    decision, detail = outcome.decision, outcome.training
    if outcome.monitor.report:
        out.print(f"  report: {outcome.monitor.report}")
    color = "red" if decision.retrain else "green"
    out.print(f"[bold {color}]{decision.action.upper()}[/] {decision.reasons[0] if decision.reasons else ''}")
    for reason in decision.reasons[1:]:
        out.print(f"  · {reason}")
    shown = {
        k: v
        for k, v in detail.items()
        if k in {"status", "training_job", "studio_url", "run_id", "monitoring_job", "key"}
    }
    if shown:
        out.print("  " + " · ".join(f"{k} {v}" for k, v in shown.items()))
    # What the retrain did, in the words `amlops train` uses: the gate's verdict and who serves now.
    verdict, reg = detail.get("verdict"), detail.get("registration")
    if isinstance(verdict, dict) and verdict.get("summary"):
        out.print(f"  {verdict['summary']}")
    if isinstance(reg, dict) and reg.get("version"):
        role = "champion" if reg.get("promoted") else "challenger"
        out.print(f"  registered v{reg['version']} as {role}; champion: v{reg.get('champion') or '-'}")
        note = (reg.get("promotion") or {}).get("note")
        if not reg.get("promoted") and note:
            out.print(f"  {note}")


def register(app: typer.Typer) -> None:
    @app.command("loop")
    @handle_errors
    def loop(
        current: Path | None = typer.Option(
            None, "--current", help="New data with predictions (file or folder)"
        ),
        labels: Path | None = typer.Option(
            None, "--labels", help="Late labels (row id + actual), joined on id"
        ),
        history: Path | None = typer.Option(
            None,
            "--history",
            help="Labelled data to retrain on (the policy's recent window is taken from it)",
        ),
        original: Path | None = typer.Option(
            None, "--original", help="Original training data, added when policy.include_original_data is true"
        ),
        once: bool = typer.Option(False, "--once", help="One cycle, then exit"),
        every: str | None = typer.Option(None, "--every", help="Repeat every interval (e.g. 1h, 1d)"),
        target: TargetOption = Target.local,
        env: EnvOption = None,
        as_json: JsonOption = False,
        retrain_via: RetrainVia | None = typer.Option(
            None,
            "--retrain-via",
            help="local (default for --target local), azure (submit the training job), or github (write "
            "retrain=true to $GITHUB_OUTPUT for the workflow to dispatch train.yml)",
        ),
    ) -> None:
        """Monitor → policy → retrain. Each cycle's decision and reasons go to the decision log (policy.ledger;
        default .amlops/retrain/decisions.jsonl locally, the workspace datastore for --target azure)."""
        from amlops.config import load_settings
        from amlops.loop import cycle_azure, cycle_local, parse_every, wait_for_next_cycle

        if once == bool(every):
            raise UsageError("give exactly one of --once or --every INTERVAL")
        interval = parse_every(every) if every else 0.0
        settings = load_settings()
        via = retrain_via or (RetrainVia.local if target is Target.local else RetrainVia.azure)
        if target is Target.local and via is not RetrainVia.local:
            raise UsageError(
                "--target local retrains locally; use --target azure for --retrain-via azure|github"
            )
        if target is Target.azure and via is RetrainVia.local:
            raise UsageError(
                "--target azure retrains on Azure ML (--retrain-via azure) or through GitHub (github)"
            )
        if target is Target.local and current is None:
            raise UsageError("--current is required for --target local")
        cycle = 0
        while True:
            cycle += 1
            with machine_readable(as_json):
                if target is Target.azure:
                    outcome = cycle_azure(
                        settings,
                        env,
                        str(current) if current else None,
                        str(labels) if labels else None,
                        via.value,
                    )
                else:
                    assert current is not None
                    outcome, _ = cycle_local(settings, current, labels, history, original=original)
                _print_outcome(outcome)
            if as_json:
                emit_json(outcome.summary())
            if once:
                return
            out.print(f"[dim]cycle {cycle} done; next in {every}[/]")
            wait_for_next_cycle(interval)

    @app.command("demo")
    @handle_errors
    def demo(
        out_dir: Path = typer.Option(
            Path(".amlops/demo"), "--out", help="Folder for the demo's state and reports"
        ),
        weeks: int = typer.Option(
            46,
            "--weeks",
            min=20,
            max=MAX_DEMO_WEEKS,
            help="Weeks of data (the change comes at ~75%)",
        ),
        seed: int = typer.Option(7, "--seed"),
    ) -> None:
        """The closed loop on the embedded default: drift detected, retrain triggered, gated promotion."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from amlops.config import load_settings
        from amlops.demo import DemoConfig, WeekRow, overrides_text, run_demo, story_lines

        base = load_settings()
        cfg = DemoConfig.for_weeks(weeks, seed)
        out.print(
            f"[bold]amlops demo[/]: {weeks} weeks of demand, v1 trained on the first {cfg.train_weeks}, "
            f"a market change on {cfg.change_date}; state in {out_dir}"
        )
        out.print(f"[dim]the story's settings over amlops.yaml: {overrides_text()}[/]")
        started = time.perf_counter()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        ) as progress:
            task = progress.add_task("setting up", total=cfg.weeks - cfg.train_weeks)

            def on_step(message: str) -> None:
                progress.update(task, description=message[:90])
                progress.console.print(f"[dim]{message}[/]")

            def on_week(row: WeekRow) -> None:
                progress.advance(task)

            result = run_demo(base, out_dir.resolve(), cfg, on_week=on_week, on_step=on_step)
        table = week_table(result, cfg)
        table_console(table).print(table)
        from amlops.demo import summary

        means = summary(result, cfg)

        def fmt(x: float | None) -> str:
            return f"{x:.0%}" if x is not None else "-"

        out.print(
            "policy = the verdict at the week's end, before its labels: ALARM = the window counts toward a "
            "retrain (the estimated error is up more than the limit vs the champion's holdout, with 95 % "
            "confidence; where the estimate is unusable, ?, drift on important features alone); drift the model "
            "copes with (seasons) stays ok"
        )
        out.print(
            "estimated = the week's MAE estimated without labels (95 % interval; ! = the estimate alone "
            "alarms; ? = over 10 % of its rows lie outside what the estimator saw: the policy ignores it); "
            "measured = from the late labels, with the week they arrived (ALARM = the measured error "
            "alone alarms; labels overrule the estimate). The estimate follows covariate shift inside what "
            "the estimator saw; it cannot see errors in regions the model never saw (docs/monitor.md)"
        )
        for line in story_lines(result, cfg):
            out.print(f"[bold]{line}[/]")
        out.print(
            "mean weekly error per unit sold (WAPE; MAE in units falls with demand): before the change "
            f"{fmt(means['wape_before_change'])} · after it, v1 {fmt(means['wape_after_change_v1'])} · after "
            f"the last promotion {fmt(means['wape_after_last_promotion'])}"
        )
        out.print(
            f"◆ market change on {cfg.change_date}: {', '.join(cfg.drifts)} (strength {cfg.drift_strength})"
        )
        out.print(f"[bold]finished in {time.perf_counter() - started:.0f}s[/]")
        out.print("where to look:")
        out.print(f"  error over time:   {result.plot}")
        out.print(f"  timeline (JSON):   {result.timeline_file}")
        for report in result.reports:
            out.print(f"  monitor report:    {report}")
        state = out_dir.resolve() / "state"
        # Runnable as printed: the executables of this installation, not whatever is first on PATH.
        bin_dir = Path(sys.executable).parent
        # The project installs mlflow-skinny (no web UI: azureml-mlflow caps MLflow at a version whose full
        # package wants pandas<3); the UI runs from the full package in a throwaway environment.
        from importlib.metadata import version

        mlflow_cmd = f"uv tool run --from mlflow=={version('mlflow-skinny')} mlflow"
        amlops_cmd = shlex.quote(str(bin_dir / "amlops"))
        db_uri = "sqlite:///" + str(state / "mlflow.db")
        out.print(f"  MLflow UI:         {mlflow_cmd} ui --backend-store-uri {shlex.quote(db_uri)}")
        out.print(f"  promotions:        AMLOPS_STATE_DIR={shlex.quote(str(state))} {amlops_cmd} history")
        out.print(f"  decisions:         {state / 'retrain' / 'decisions.jsonl'}")
