"""`amlops monitor`: run pipelines/monitoring.yml on new data and print what drifted, and when.

The reference is a model's stored profile (`--model NAME@ALIAS`, default: the champion of `model_name`), a
profile file (`--profile`) or reference data profiled on the fly (`--reference`). Exit code 0 whether drift
was found or not (the verdict is printed and in result.json); non-zero only when the input cannot be used.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from amlops.console import handle_errors, out

MONITORING_PIPELINE = "pipelines/monitoring.yml"
SHORT = {
    "normalized_wasserstein_distance": "wasserstein (norm.)",
    "jensen_shannon_distance": "jensen-shannon",
    "population_stability_index": "PSI",
    "two_sample_kolmogorov_smirnov_test": "KS p-value",
    "pearsons_chi_squared_test": "chi² p-value",
}


def print_summary(result: dict[str, Any], report: Path) -> None:
    from rich.table import Table

    v = result["verdict"]
    overall = result["overall"]
    windows = result.get("windows") or []
    color = {"drift": "red", "no_drift": "green"}.get(v["status"], "yellow")
    out.print(f"[bold {color}]{v['status'].replace('_', ' ').upper()}[/] — {v['summary']}")
    out.print(
        f"current rows {result['current']['row_count']:,} · windows {v['evaluated_window_count']} judged of "
        f"{v['window_count'] or 1} · data-quality findings {len(v['data_quality_findings'])}"
    )
    names = v["drifted_features"] or list(overall["features"])[:5]
    table = Table(
        title="Drifted features" if v["drifted_features"] else "Features closest to their threshold"
    )
    table.add_column("feature", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    if windows:
        table.add_column("windows", justify="right")
        table.add_column("first drifted", no_wrap=True)
    for name in names:
        f = overall["features"][name]
        entry = f["metrics"][f["deciding_metric"]]
        value = "—" if entry["value"] is None else f"{entry['value']:.4g}"
        metric = SHORT.get(f["deciding_metric"], f["deciding_metric"])
        row = [name, metric, value, f"{entry['threshold']:g}"]
        if windows:
            hits = [w["window"] for w in windows if name in w["drifted_features"]]
            row += [f"{len(hits)}/{v['evaluated_window_count']}", hits[0] if hits else "—"]
        style = "red" if f["drifted"] or name in v["drifted_features"] else None
        table.add_row(*row, style=style)
    out.print(table)
    pred = overall.get("prediction_drift")
    if pred:
        entry = pred["metrics"][pred["deciding_metric"]]
        verdict = "[red]drift[/]" if v.get("prediction_drift") else "[green]ok[/]"
        value = "—" if entry["value"] is None else f"{entry['value']:.4g}"
        out.print(f"prediction drift: {verdict} ({SHORT.get(pred['deciding_metric'])} {value})")
    perf = v.get("performance")
    if perf and perf.get("count"):
        mape = "—" if perf.get("mape") is None else f"{perf['mape']:.1%}"
        out.print(
            f"performance on {perf['count']:,} labelled rows: MAE {perf['mae']:.4g} · RMSE {perf['rmse']:.4g}"
            f" · MAPE {mape}"
        )
    out.print(f"report: {report}")


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
        from amlops import monitoring
        from amlops.config import load_settings
        from amlops.job_inputs import monitoring_inputs

        settings = load_settings()
        inputs, note = monitoring_inputs(
            settings, current, reference=reference, profile=profile, model=model, labels=labels, window=window
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
        data = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        report = (folder / "report.html").resolve()
        print_summary(data, report)
        if open_report:
            import webbrowser

            webbrowser.open(report.as_uri())
