"""`amlops monitor`: run pipelines/monitoring.yml on new data and print what drifted, and when.

The reference is a model's stored profile (`--model NAME@ALIAS`, default: the champion of `model_name`), a
profile file (`--profile`) or reference data profiled on the fly (`--reference`). Exit code 0 whether drift
was found or not (the verdict is printed and in result.json); non-zero only when the input cannot be used.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from amlops.console import UserError, handle_errors, out

if TYPE_CHECKING:
    from amlops.drift.result import MonitorResult

MONITORING_PIPELINE = "pipelines/monitoring.yml"


def model_uri(spec: str) -> str:
    """NAME@ALIAS -> models:/NAME@ALIAS; NAME/VERSION and NAME:VERSION -> models:/NAME/VERSION; URIs pass
    through."""
    if "://" in spec or spec.startswith("models:/"):
        return spec
    if Path(spec).expanduser().is_dir():  # a downloaded model folder
        return str(Path(spec).expanduser().resolve())
    for sep in ("@", "/", ":"):
        if sep in spec:
            name, ref = spec.split(sep, 1)
            if name and ref:
                return f"models:/{name}@{ref}" if sep == "@" else f"models:/{name}/{ref}"
    raise UserError(
        f"--model {spec!r}: expected NAME@ALIAS (e.g. demand-forecaster@champion) or NAME/VERSION"
    )


def _local(path: str) -> str:
    """Absolute local paths (the runner resolves relative ones against the pipeline file, not the cwd)."""
    if "://" in path or path.startswith("models:/"):
        return path
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{path}: not found")
    return str(p.resolve())


def _has_column(location: str, column: str) -> bool | None:
    """Whether local data has the column (None when it cannot be told cheaply, e.g. a URL)."""
    if "://" in location:
        return None
    from amlops.drift.monitor import MonitorError, open_dataset

    try:
        return column in open_dataset(location).schema.names
    except MonitorError as exc:
        raise UserError(str(exc)) from None


def monitoring_inputs(
    settings: Any,
    current: str,
    reference: str | None,
    profile: str | None,
    model: str | None,
    labels: str | None,
    window: str | None,
) -> tuple[dict[str, str], str | None]:
    """(pipeline inputs, a note for the user). Every value the step needs travels as an input."""
    m = settings.monitor
    given = [x for x in (reference, profile, model) if x]
    if len(given) > 1:
        raise UserError("give one of --reference, --profile, --model")
    inputs: dict[str, str] = {"current_data": _local(current)}
    if reference:
        inputs["reference_data"] = _local(reference)
    elif profile:
        inputs["reference_profile"] = _local(profile)
    else:
        inputs["model"] = model_uri(model or f"{settings.model_name}@champion")
    if labels:
        inputs["labels"] = _local(labels)
    note = None
    chosen = window or m.window
    if (
        window is None
        and chosen.lower() in ("daily", "weekly")
        and _has_column(current, m.timestamp_column) is False
    ):
        # The configured default needs a timestamp column this data does not have: one window, and say so.
        note = f"no {m.timestamp_column!r} column in the current data: one window over all rows"
        chosen = "all"
    inputs.update(
        window=chosen,
        timestamp_column=m.timestamp_column,
        id_column=m.id_column,
        prediction_column=m.prediction_column,
        label_column=m.label_column,
        min_window_rows=str(m.min_window_rows),
        thresholds=json.dumps(m.thresholds) if m.thresholds else "",
        numeric_metric=m.numeric_metric,
        categorical_metric=m.categorical_metric,
        chunk_rows=str(m.chunk_rows),
    )
    return inputs, note


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
    pred = overall.prediction_drift
    if pred:
        entry = pred.deciding
        verdict = "[red]drift[/]" if v.prediction_drift else "[green]ok[/]"
        value = "—" if entry.value is None else f"{entry.value:.4g}"
        out.print(f"prediction drift: {verdict} ({label(pred.deciding_metric)} {value})")
    perf = v.performance
    if perf and perf.count:
        mape = "—" if perf.mape is None else f"{perf.mape:.1%}"
        out.print(
            f"performance on {perf.count:,} labelled rows: MAE {_g(perf.mae)} · RMSE {_g(perf.rmse)} · MAPE {mape}"
        )
    out.print(f"report: {report}")


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
        pipeline: Annotated[
            Path | None, typer.Option("--pipeline", help=f"Default: {MONITORING_PIPELINE}")
        ] = None,
    ) -> None:
        """Drift, data quality and performance of new data against a reference; prints the verdict."""
        from amlops.config import load_settings
        from amlops.drift.result import RESULT_FILE, MonitorResult
        from amlops.runner.local import run_pipeline

        settings = load_settings()
        path = pipeline or settings.pipeline_file("monitoring")
        if not path.is_file():
            raise UserError(f"{path}: monitoring pipeline not found")
        inputs, note = monitoring_inputs(settings, current, reference, profile, model, labels, window)
        if note:
            out.print(f"[yellow]note:[/] {note}")
        result = run_pipeline(path, inputs, settings)
        folder = result.outputs.get("result") or result.job_outputs.get("monitor", {}).get("result")
        if folder is None or not (Path(folder) / RESULT_FILE).is_file():
            raise UserError(f"the monitoring run {result.run_id} wrote no result.json ({result.run_dir})")
        folder = Path(folder)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            for item in folder.iterdir():
                if item.is_file():
                    shutil.copy2(item, out_dir / item.name)
            folder = out_dir
        report = (folder / "report.html").resolve()
        print_summary(MonitorResult.read(folder), report)
        if open_report:
            import webbrowser

            webbrowser.open(report.as_uri())
