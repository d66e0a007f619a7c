"""`amlops monitor`: run pipelines/monitoring.yml on new data and print what drifted, and when.

The reference is a model's stored profile (`--model NAME@ALIAS`, default: the champion of `model_name`), a
profile file (`--profile`) or reference data profiled on the fly (`--reference`). Exit code 0 whether drift
was found or not (the verdict is printed and in result.json); non-zero only when the input cannot be used.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from amlops.commands.options import JsonOption, PipelineOption
from amlops.console import UserError, emit_json, handle_errors, machine_readable, out
from amlops.errors import EXIT_DRIFT, UsageError

if TYPE_CHECKING:
    from amlops.config import Settings
    from amlops.drift.result import MonitorResult

MONITORING_PIPELINE = "pipelines/monitoring.yml"


def print_summary(result: MonitorResult, report: Path) -> None:
    from rich.table import Table

    from amlops.drift.metrics import label

    v = result.verdict
    overall = result.overall
    windows = result.windows
    color = {"drift": "red", "no_drift": "green"}.get(v.status, "yellow")
    out.print(f"[bold {color}]{v.status.replace('_', ' ').upper()}[/] — {v.summary}")
    out.print(
        f"current rows {result.current.row_count:,} · windows {v.evaluated_window_count} judged of "
        f"{v.window_count or 1} · data-quality findings {len(v.data_quality_findings)}"
    )
    names = v.drifted_features or list(overall.features)[:5]
    table = Table(title="Drifted features" if v.drifted_features else "Features closest to their threshold")
    table.add_column("feature", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    if windows:
        table.add_column("windows", justify="right")
        table.add_column("first drifted", no_wrap=True)
    for name in names:
        f = overall.features[name]
        entry = f.deciding
        value = "—" if entry.value is None else f"{entry.value:.4g}"
        threshold = "—" if entry.threshold is None else f"{entry.threshold:g}"
        row = [name, label(f.deciding_metric), value, threshold]
        if windows:
            hits = [w.window for w in windows if name in w.drifted_features]
            row += [f"{len(hits)}/{v.evaluated_window_count}", hits[0] if hits else "—"]
        style = "red" if f.drifted or name in v.drifted_features else None
        table.add_row(*row, style=style)
    out.print(table)
    _print_not_judged(result)
    pred = overall.prediction_drift
    if pred:
        entry = pred.deciding
        judged = v.evaluated_window_count > 0 if windows else overall.judged
        verdict = (
            "[red]drift[/]" if v.prediction_drift else "[green]ok[/]" if judged else "[yellow]not judged[/]"
        )
        value = "—" if entry.value is None else f"{entry.value:.4g}"
        out.print(f"prediction drift: {verdict} ({label(pred.deciding_metric)} {value})")
    perf = v.performance
    if perf and perf.count:
        mape = "—" if perf.mape is None else f"{perf.mape:.1%}"
        out.print(
            f"performance on {perf.count:,} labelled rows: MAE {_g(perf.mae)} · RMSE {_g(perf.rmse)} · MAPE {mape}"
        )
    estimated = [w for w in (windows or [overall]) if w.estimated_performance is not None]
    if estimated:
        est_table = Table(title="Error estimated without labels (95 % interval) vs measured")
        for col in ("window", "rows", "estimated MAE", "measured MAE", "estimated RMSE", "measured RMSE"):
            est_table.add_column(col, no_wrap=True, justify="left" if col == "window" else "right")
        for w in estimated:
            e = w.estimated_performance
            assert e is not None
            p = w.performance if w.performance is not None and w.performance.count else None
            est_table.add_row(
                w.window,
                f"{w.row_count:,}",
                f"{_g(e.mae)} ({_g(e.mae_low)}–{_g(e.mae_high)})",
                _g(p.mae) if p else "—",
                f"{_g(e.rmse)} ({_g(e.rmse_low)}–{_g(e.rmse_high)})",
                _g(p.rmse) if p else "—",
            )
        out.print(est_table)
    # What the label join did that the user should know (duplicates dropped, ids matching nothing, …).
    for warning in (result.model_extra or {}).get("warnings") or []:
        out.print(f"[yellow]warning:[/] {warning}")
    out.print(f"report: {report}")


def _print_not_judged(result: MonitorResult) -> None:
    """Windows below the minimum are named with their row counts and the flags that change the rule."""
    from amlops.drift.result import not_judged

    minimum = result.settings.min_window_rows
    skipped = [w for w in result.windows if not w.judged]
    if not skipped:
        return
    shown = ", ".join(f"{w.window} {not_judged(w.row_count, minimum)}" for w in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    out.print(
        f"[yellow]{len(skipped)} window(s) not judged[/]: {shown}{more} — change with --window (e.g. all) or "
        f"--min-window-rows N"
    )


def set_roles(settings: Settings, **flags: str | int | None) -> None:
    """Flags given on the command line over amlops.yaml's `monitor.*` keys: a key set so also overrides the
    schema's roles (amlops.job_inputs.column_roles)."""
    for key, value in flags.items():
        if value is not None:
            setattr(settings.monitor, key, value)


def _g(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def register(app: typer.Typer) -> None:
    @app.command("monitor")
    @handle_errors
    def monitor(
        current: Annotated[
            str, typer.Option("--current", help="New data: Parquet/CSV file or folder, or abfs:// URL")
        ],
        reference: Annotated[
            str | None, typer.Option("--reference", help="Reference data, profiled on the fly")
        ] = None,
        profile: Annotated[str | None, typer.Option("--profile", help="A reference_profile.json")] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model", help="Model whose stored profile is the reference: NAME@ALIAS (default: champion)"
            ),
        ] = None,
        labels: Annotated[
            str | None, typer.Option("--labels", help="Late labels (id + label columns)")
        ] = None,
        window: Annotated[
            str | None, typer.Option("--window", help="all | daily | weekly | N (rows); default: config")
        ] = None,
        out_dir: Annotated[
            Path | None, typer.Option("--out", help="Also copy result.json and report.html here")
        ] = None,
        open_report: Annotated[
            bool, typer.Option("--open", help="Open the HTML report in a browser")
        ] = False,
        min_window_rows: Annotated[
            int | None,
            typer.Option(
                "--min-window-rows",
                min=1,
                help="Windows with fewer rows are not judged; default: config (500)",
            ),
        ] = None,
        id_column: Annotated[
            str | None, typer.Option("--id-column", help="Row id column; default: the schema's id_column")
        ] = None,
        timestamp_column: Annotated[
            str | None,
            typer.Option(
                "--timestamp-column", help="Column the windows follow; default: the schema's date_column"
            ),
        ] = None,
        label_column: Annotated[
            str | None,
            typer.Option("--label-column", help="Label (actual) column; default: the schema's target"),
        ] = None,
        prediction_column: Annotated[
            str | None,
            typer.Option("--prediction-column", help="Model output column; default: config (prediction)"),
        ] = None,
        pipeline: PipelineOption = None,
        as_json: JsonOption = False,
        fail_on_drift: Annotated[
            bool,
            typer.Option(
                "--fail-on-drift",
                help=f"Exit {EXIT_DRIFT} when the verdict is drift (for CI gates); default: 0 whether drift or not",
            ),
        ] = False,
    ) -> None:
        """Drift, data quality and performance of new data against a reference; prints the verdict.

        CI reads `verdict.status` of result.json (`drift`, `no_drift`, `insufficient_data`), or uses --fail-on-drift."""
        from amlops import monitoring
        from amlops.config import load_settings
        from amlops.job_inputs import monitoring_inputs

        settings = load_settings()
        set_roles(
            settings,
            id_column=id_column,
            timestamp_column=timestamp_column,
            label_column=label_column,
            prediction_column=prediction_column,
            min_window_rows=min_window_rows,
        )
        if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"--out {out_dir}: is a file; give a folder for result.json and report.html")
        with machine_readable(as_json):
            inputs, note = monitoring_inputs(
                settings,
                current,
                reference=reference,
                profile=profile,
                model=model,
                labels=labels,
                window=window,
            )
            if note:
                out.print(f"[yellow]note:[/] {note}")
            run = monitoring.run_local(settings, inputs, pipeline=pipeline)
            folder = run.folder
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                for item in folder.iterdir():
                    if item.is_file():
                        shutil.copy2(item, out_dir / item.name)
                folder = out_dir
            report = (folder / "report.html").resolve()
            print_summary(run.result, report)
        if as_json:
            emit_json(
                {"result": str(folder / "result.json"), "report": str(report), **run.result.to_json_dict()}
            )
        if open_report:
            import webbrowser

            webbrowser.open(report.as_uri())
        if fail_on_drift and run.result.verdict.status == "drift":
            raise UserError(f"drift: {run.result.verdict.summary} (--fail-on-drift)", exit_code=EXIT_DRIFT)
