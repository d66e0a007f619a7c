"""`amlops train`: run pipelines/training.yml with its inputs filled from amlops.yaml, locally or on Azure
ML."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from amlops.commands.options import EnvOption, JsonOption, PipelineOption, TargetOption
from amlops.console import UserError, emit_json, handle_errors, machine_readable, out
from amlops.errors import EXIT_GATE, UsageError
from amlops.job_inputs import Target

if TYPE_CHECKING:
    from amlops.config import Settings
    from amlops.records import GateVerdict, Registration


def summary_markdown(verdict: GateVerdict | None, registration: Registration | None, run: str) -> str:
    from amlops.config import GATE_METRICS

    lines = [f"### amlops train — {run}", ""]
    if registration:
        role = "**champion**" if registration.is_champion else "challenger (not promoted)"
        lines.append(f"- model `{registration.model_name}` **v{registration.version}** registered as {role}")
        lines.append(f"- data `{(registration.data_digest or '')[:19]}`, commit `{registration.git_commit}`")
    if verdict:
        mark = "passed ✅" if verdict.passed else "failed ❌"
        lines.append(f"- gate {mark}: {verdict.summary}")
        chall = verdict.challenger.metrics or {}
        champ = (verdict.champion.metrics if verdict.champion else None) or {}
        lines += ["", "| metric | challenger | champion |", "|---|---|---|"]
        for m in GATE_METRICS:
            star = " (gate)" if m == verdict.metric else ""
            c = f"{champ[m]:.4g}" if champ.get(m) is not None else "—"
            v = f"{chall[m]:.4g}" if chall.get(m) is not None else "—"
            lines.append(f"| {m}{star} | {v} | {c} |")
        interval = verdict.interval
        if interval is not None and interval.low is not None and verdict.improvement is not None:
            lines.append("")
            lines.append(
                f"Improvement {verdict.improvement:+.2%}, {interval.confidence or 0:.0%} interval "
                f"[{interval.low:+.2%}, {interval.high or 0:+.2%}] "
                f"({interval.method}, {interval.samples} samples)"
            )
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("train")
    @handle_errors
    def train(
        target: TargetOption = Target.local,
        env: EnvOption = None,
        data: Annotated[
            str | None,
            typer.Option(
                "--data", help="Training data: CSV/Parquet file or folder, URL, or azureml:name:version"
            ),
        ] = None,
        set_: Annotated[
            list[str] | None, typer.Option("--set", help="Override a pipeline input: inputs.<name>=<value>")
        ] = None,
        summary: Annotated[
            Path | None, typer.Option("--summary", help="Append a markdown summary to this file")
        ] = None,
        strict: Annotated[
            bool, typer.Option("--strict", help="Exit 3 when the gate did not pass (for CI)")
        ] = False,
        pipeline: PipelineOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Train, gate and register: pipelines/training.yml with inputs from amlops.yaml (--set overrides).

        Without --data: `data.raw` from amlops.yaml, or on Azure ML the configured `azure.training_data`."""
        from amlops.config import load_settings

        with machine_readable(as_json):
            document = _train(load_settings(), target, env, data, set_, summary, pipeline)
        if as_json:
            emit_json(document)
        # On Azure ML the gate runs inside the job (a failed job already raised); --strict reads a local verdict.
        if strict and document["target"] == "local" and not (document.get("verdict") or {}).get("passed"):
            raise UserError("gate did not pass (--strict)", exit_code=EXIT_GATE)


def _train(
    settings: Settings,
    target: Target,
    env: str | None,
    data: str | None,
    set_: list[str] | None,
    summary: Path | None,
    pipeline: Path | None,
) -> dict[str, Any]:
    """Run or submit the training, print what happened; the --json document."""
    from amlops import training
    from amlops.job_inputs import parse_sets, training_inputs, with_overrides

    if summary is not None and summary.is_dir():  # said before the training, not after it
        raise UsageError(f"--summary {summary}: is a folder; give a file to append the summary to")
    path = pipeline or settings.pipeline_file("training")
    overrides = parse_sets(set_)
    data_by_set = any(k in overrides for k in ("raw_file", "raw_folder"))
    inputs = with_overrides(
        training_inputs(settings, data, target, env=env, require_data=not data_by_set), overrides
    )

    if target is Target.azure:
        submitted = training.submit(settings, inputs, env=env, wait=True, pipeline=path)
        out.print(f"job {submitted.name}: {submitted.status}")
        if submitted.studio_url:
            out.print(f"  {submitted.studio_url}")
        if summary is not None:
            with summary.open("a", encoding="utf-8") as fh:
                fh.write(
                    f"### amlops train — Azure ML job {submitted.name}\n\n- status: {submitted.status}\n"
                    + (f"- [studio]({submitted.studio_url})\n" if submitted.studio_url else "")
                )
        # The gate ran inside the job; its verdict is in the job's outputs, not here.
        return {
            "target": "azure",
            "job": submitted.name,
            "status": submitted.status,
            "studio_url": submitted.studio_url,
        }

    run = training.run_local(settings, inputs, pipeline=path)
    verdict, registration = run.verdict, run.registration
    out.print(f"[green]completed[/] {run.pipeline} run {run.run_id}  ({run.run_dir})")
    if verdict:
        colour = "green" if verdict.passed else "yellow"
        out.print(f"[{colour}]{verdict.summary}[/]")
        for note in verdict.notes:
            out.print(f"  note: {note}")
    if registration:
        role = "champion" if registration.is_champion else "challenger (champion unchanged)"
        out.print(
            f"registered {registration.model_name} v{registration.version} as {role}; "
            f"champion: v{registration.champion or '-'}"
        )
        if registration.promotion is not None and registration.promotion.status == "champion_changed":
            out.print(f"[yellow]  {registration.promotion.note}[/]")
    if summary is not None:
        with summary.open("a", encoding="utf-8") as fh:
            fh.write(summary_markdown(verdict, registration, f"run {run.run_id}"))
    return {"target": "local", **run.detail()}
