"""Run the monitoring pipeline (pipelines/monitoring.yml) on either target and bring its result back.

Application layer under `amlops monitor` and the loop. Both targets end with the same `MonitorRun`: the step's
result.json and, when the model carries one, its feature importance, read from the step's output folder — so the
policy downstream sees the same facts whichever runner produced them.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amlops.config import Settings
from amlops.drift.result import RESULT_FILE, MonitorResult
from amlops.errors import UserError
from amlops.job_inputs import Target, monitoring_mapreduce_inputs

REPORT_FILE = "report.html"
MAPREDUCE_PIPELINE = "monitoring_mapreduce"
IMPORTANCE_FILE = "feature_importance.json"


@dataclass(frozen=True)
class MonitorRun:
    """A finished monitoring run: the result (result.json), where its output folder is, and who ran it."""

    result: MonitorResult
    folder: Path
    run_dir: Path | None = None
    job_name: str | None = None

    @property
    def report(self) -> Path | None:
        path = self.folder / REPORT_FILE
        return path if path.is_file() else None

    def importance(self) -> dict[str, float] | None:
        """The reference model's permutation feature importance, as the monitor step passed it on."""
        return read_importance(self.folder)


def read_importance(folder: Path) -> dict[str, float] | None:
    path = folder / IMPORTANCE_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else None


def read_result(folder: Path, what: str) -> MonitorResult:
    path = folder / RESULT_FILE
    if not path.is_file():
        found = sorted(folder.rglob(RESULT_FILE))
        if not found:
            raise UserError(f"{what} wrote no {RESULT_FILE} ({folder})")
        path = found[0]
    try:
        return MonitorResult.read(path)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise UserError(f"{path}: not a monitor result ({str(exc).splitlines()[0]})") from None


def choose_pipeline(
    settings: Settings, inputs: dict[str, str], target: Target = Target.local
) -> tuple[Path, dict[str, str]]:
    """pipelines/monitoring.yml, or its map-reduce sibling (and its inputs) from `monitor.mapreduce_rows` rows on
    (amlops.job_inputs.monitoring_mapreduce_inputs): both write the same result.json."""
    mapreduce = monitoring_mapreduce_inputs(settings, inputs, target)
    if mapreduce is None:
        return settings.pipeline_file("monitoring"), inputs
    return settings.pipeline_file(MAPREDUCE_PIPELINE), mapreduce


def run_local(
    settings: Settings, inputs: dict[str, str], *, pipeline: Path | None = None, quiet: bool = False
) -> MonitorRun:
    """Run the monitoring pipeline with the local runner."""
    from amlops.runner.local import run_pipeline

    path, inputs = (pipeline, inputs) if pipeline else choose_pipeline(settings, inputs)
    if not path.is_file():
        raise UserError(f"{path}: monitoring pipeline not found")
    run = run_pipeline(path, inputs, settings, quiet=quiet)
    folder = (
        run.outputs.get("result")
        or run.job_outputs.get("monitor", {}).get("result")
        or run.job_outputs.get("reduce", {}).get("result")
    )
    if folder is None:
        raise UserError(f"the monitoring run {run.run_id} has no result output ({run.run_dir})")
    result_dir = Path(folder)
    return MonitorRun(read_result(result_dir, f"the monitoring run {run.run_id}"), result_dir, run.run_dir)


def run_azure(
    settings: Settings, inputs: dict[str, str], *, env: str | None, dest: Path | None = None
) -> MonitorRun:
    """Submit the monitoring pipeline to Azure ML, wait for it, download its `result` output."""
    from amlops.azure import client as azclient
    from amlops.azure.errors import azure_errors
    from amlops.azure.jobs import submit_pipeline

    path, inputs = choose_pipeline(settings, inputs, Target.azure)
    job = submit_pipeline(path, inputs, settings, env=env, wait=True)
    az = azclient.target(settings, env)
    folder = dest or Path(tempfile.mkdtemp(prefix="amlops-monitor-"))
    with azure_errors(az, env):
        ml = azclient.ml_client(settings, env)
        # `az ml job download --output-name result`: the pipeline-level output of the monitoring job.
        ml.jobs.download(name=job.name, download_path=str(folder), output_name="result")
    found = sorted(folder.rglob(RESULT_FILE))
    if not found:
        raise UserError(f"monitoring job {job.name} produced no {RESULT_FILE}")
    result_dir = found[0].parent
    return MonitorRun(read_result(result_dir, f"monitoring job {job.name}"), result_dir, None, job.name)
