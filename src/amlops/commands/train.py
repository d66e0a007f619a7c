"""`amlops train`: run pipelines/training.yml with its inputs filled from amlops.yaml, locally or on Azure
ML."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from amlops.console import UserError, handle_errors, out
from amlops.data.io import DATA_SUFFIXES

if TYPE_CHECKING:
    from amlops.config import Settings

TRAINING_PIPELINE = "pipelines/training.yml"


class Target(StrEnum):
    local = "local"
    azure = "azure"


def _params_text(params: dict[str, Any]) -> str:
    """Regressor parameters as k=v,k=v, readable in the studio; JSON when a value is not a plain scalar (the
    component quotes the placeholder, so braces, commas and spaces reach the step as one argument)."""
    if not params:
        return ""
    if all(isinstance(v, str | int | float | bool) or v is None for v in params.values()) and not any(
        "," in str(v) or "=" in str(v) or " " in str(v) for v in params.values()
    ):
        return ",".join(
            f"{k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"
            for k, v in params.items()
        )
    return json.dumps(params, separators=(",", ":"))


def _data_inputs(data: str, target: Target) -> dict[str, str]:
    """raw_file or raw_folder (by what the data is) and data_uri (what lineage records)."""
    if data.startswith("azureml:") or "://" in data:
        if target is Target.local and data.startswith("azureml:"):
            raise UserError(
                f"--data {data}: Azure ML data assets need --target azure (locally: a path or URL)"
            )
        # Data assets registered by `amlops data register` are folders; a URL naming a file is a file.
        is_file = "://" in data and data.lower().rstrip("/").endswith(DATA_SUFFIXES)
        return {"raw_file" if is_file else "raw_folder": data, "data_uri": data}
    path = Path(data).expanduser()
    if not path.exists():
        if target is Target.azure and (":" in data or "@" in data):
            return {"raw_folder": data, "data_uri": data}  # name:version / name@latest data asset
        raise UserError(f"--data {data}: not found")
    resolved = path.resolve()
    return {"raw_folder" if resolved.is_dir() else "raw_file": str(resolved), "data_uri": str(resolved)}


def training_inputs(
    settings: Settings, data: str | None, target: Target = Target.local, *, require_data: bool = True
) -> dict[str, str]:
    """The pipeline inputs from the settings: every value the steps need travels as an input."""
    from amlops.tracking import git_commit

    source = data or settings.data.raw
    data_inputs: dict[str, str] = {}
    if source:
        if data is None and "://" not in source and not source.startswith("azureml:"):
            source = str(settings.path(source))  # data.raw is relative to amlops.yaml, --data to the cwd
        data_inputs = _data_inputs(source, target)
    elif require_data:
        raise UserError("no training data: pass --data PATH (or set data.raw in amlops.yaml)")
    gate = settings.gate
    inputs = {
        **data_inputs,
        "schema": str(settings.path(settings.data.schema_file)),
        "max_bad_row_share": str(settings.data.max_bad_row_share),
        "model_name": settings.model_name,
        "seed": str(settings.train.seed),
        "holdout_days": str(settings.train.holdout_days),
        "params": _params_text(settings.train.params),
        "metric": gate.metric,
        "max_mae": str(gate.max_mae or 0.0),
        "max_rmse": str(gate.max_rmse or 0.0),
        "max_mape": str(gate.max_mape or 0.0),
        "min_improvement": str(gate.min_improvement),
        "bootstrap_samples": str(gate.bootstrap_samples),
        "confidence": str(gate.confidence),
        "require_confident": str(gate.require_confident).lower(),
        "auto_promote": str(gate.auto_promote).lower(),
        "git_commit": git_commit(settings.base_dir),
    }
    return inputs


def _read(folder: Path | None, name: str) -> dict[str, Any] | None:
    if folder is None or not (folder / name).is_file():
        return None
    data = json.loads((folder / name).read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def summary_markdown(verdict: dict[str, Any] | None, registration: dict[str, Any] | None, run: str) -> str:
    lines = [f"### amlops train — {run}", ""]
    if registration:
        role = "**champion**" if registration.get("is_champion") else "challenger (not promoted)"
        lines.append(
            f"- model `{registration['model_name']}` **v{registration['version']}** registered as {role}"
        )
        lines.append(
            f"- data `{str(registration.get('data_digest', ''))[:19]}`, "
            f"commit `{registration.get('git_commit')}`"
        )
    if verdict:
        mark = "passed ✅" if verdict.get("passed") else "failed ❌"
        lines.append(f"- gate {mark}: {verdict.get('summary', '')}")
        metric = verdict.get("metric")
        chall = (verdict.get("challenger") or {}).get("metrics", {})
        champ = (verdict.get("champion") or {}).get("metrics") or {}
        lines += ["", "| metric | challenger | champion |", "|---|---|---|"]
        for m in ("mae", "rmse", "mape"):
            star = " (gate)" if m == metric else ""
            c = f"{champ[m]:.4g}" if champ.get(m) is not None else "—"
            v = f"{chall[m]:.4g}" if chall.get(m) is not None else "—"
            lines.append(f"| {m}{star} | {v} | {c} |")
        interval = verdict.get("interval") or {}
        if interval.get("low") is not None:
            lines.append("")
            lines.append(
                f"Improvement {verdict['improvement']:+.2%}, {interval['confidence']:.0%} interval "
                f"[{interval['low']:+.2%}, {interval['high']:+.2%}] "
                f"({interval['method']}, {interval['samples']} samples)"
            )
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("train")
    @handle_errors
    def train(
        target: Annotated[
            Target, typer.Option("--target", "-t", help="local (default) or azure")
        ] = Target.local,
        env: Annotated[
            str | None, typer.Option("--env", help="Azure environment from azure.environments (azure)")
        ] = None,
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
        pipeline: Annotated[
            Path | None, typer.Option("--pipeline", help=f"Default: {TRAINING_PIPELINE} of the project")
        ] = None,
    ) -> None:
        """Train, gate and register: pipelines/training.yml with inputs from amlops.yaml (--set overrides)."""
        from amlops.commands.run import parse_sets
        from amlops.config import load_settings

        settings = load_settings()
        path = pipeline or settings.pipeline_file("training")
        if not path.is_file():
            raise UserError(f"{path}: training pipeline not found")
        overrides = parse_sets(set_)
        data_by_set = next((overrides[k] for k in ("raw_file", "raw_folder") if k in overrides), None)
        inputs = training_inputs(settings, data, target, require_data=data_by_set is None)
        if data_by_set is not None:
            inputs.pop("raw_file", None)
            inputs.pop("raw_folder", None)
            inputs["data_uri"] = data_by_set
        inputs.update(overrides)

        if target is Target.azure:
            from amlops.azure.jobs import submit_pipeline

            submitted = submit_pipeline(path, inputs, settings, env=env, wait=True)
            out.print(f"job {submitted.name}: {submitted.status}")
            if submitted.studio_url:
                out.print(f"  {submitted.studio_url}")
            if summary is not None:
                with summary.open("a", encoding="utf-8") as fh:
                    fh.write(
                        f"### amlops train — Azure ML job {submitted.name}\n\n- status: {submitted.status}\n"
                        + (f"- [studio]({submitted.studio_url})\n" if submitted.studio_url else "")
                    )
            if str(submitted.status).lower() not in ("completed", "finished"):
                raise UserError(f"Azure ML job {submitted.name} ended {submitted.status}")
            return

        from amlops.runner.local import run_pipeline

        result = run_pipeline(path, inputs, settings)
        outputs = result.job_outputs
        verdict = _read(outputs.get("evaluate", {}).get("verdict"), "verdict.json")
        registration = _read(outputs.get("register", {}).get("registration"), "registration.json")
        out.print(f"[green]completed[/] {result.pipeline} run {result.run_id}  ({result.run_dir})")
        if verdict:
            colour = "green" if verdict.get("passed") else "yellow"
            out.print(f"[{colour}]{verdict.get('summary', '')}[/]")
            for note in verdict.get("notes", []):
                out.print(f"  note: {note}")
        if registration:
            role = "champion" if registration.get("is_champion") else "challenger (champion unchanged)"
            out.print(
                f"registered {registration['model_name']} v{registration['version']} as {role}; "
                f"champion: v{registration.get('champion') or '-'}"
            )
        if summary is not None:
            with summary.open("a", encoding="utf-8") as fh:
                fh.write(summary_markdown(verdict, registration, f"run {result.run_id}"))
        if strict and not (verdict or {}).get("passed"):
            raise UserError("gate did not pass (--strict)", exit_code=3)
