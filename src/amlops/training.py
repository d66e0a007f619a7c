"""Run the training pipeline (pipelines/training.yml) on either target and read what it decided.

Application layer: the `train` command, the loop and the demo call these; they build their inputs with
`amlops.job_inputs.training_inputs`, so a setting reaches the job the same way from every caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.errors import UserError
from amlops.records import REGISTRATION_FILE, VERDICT_FILE, GateVerdict, Registration

if TYPE_CHECKING:
    from amlops.azure.jobs import SubmittedJob
    from amlops.config import Settings


@dataclass(frozen=True)
class TrainingRun:
    """A finished local training run: the gate's verdict and the registration it wrote (None: not reached)."""

    pipeline: str
    run_id: str
    run_dir: Path
    verdict: GateVerdict | None
    registration: Registration | None

    @property
    def gate_passed(self) -> bool:
        return bool(self.verdict and self.verdict.passed)

    def detail(self) -> dict[str, Any]:
        """What the retrain ledger keeps of the run (JSON)."""
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "verdict": self.verdict.to_json_dict() if self.verdict else {},
            "registration": self.registration.to_json_dict() if self.registration else {},
        }


def read_record(folder: Path | None, name: str, model: type[Any]) -> Any:
    """`name` in a step's output folder (or the only JSON file there) as `model`; None when absent."""
    if folder is None or not folder.is_dir():
        return None
    path = folder / name
    if not path.is_file():
        found = sorted(folder.rglob("*.json"))
        if len(found) != 1:
            return None
        path = found[0]
    try:
        return model.read(path)
    except ValueError as exc:
        raise UserError(f"{path}: not a {name} ({str(exc).splitlines()[0]})") from None


def run_local(
    settings: Settings, inputs: dict[str, str], *, pipeline: Path | None = None, quiet: bool = False
) -> TrainingRun:
    """Run the training pipeline with the local runner."""
    from amlops.runner.local import run_pipeline

    path = pipeline or settings.pipeline_file("training")
    if not path.is_file():
        raise UserError(f"{path}: training pipeline not found")
    run = run_pipeline(path, inputs, settings, quiet=quiet)
    outputs = run.job_outputs
    verdict_dir = run.outputs.get("verdict") or outputs.get("evaluate", {}).get("verdict")
    registration_dir = run.outputs.get("registration") or outputs.get("register", {}).get("registration")
    return TrainingRun(
        pipeline=run.pipeline,
        run_id=run.run_id,
        run_dir=run.run_dir,
        verdict=read_record(verdict_dir, VERDICT_FILE, GateVerdict),
        registration=read_record(registration_dir, REGISTRATION_FILE, Registration),
    )


def submit(
    settings: Settings,
    inputs: dict[str, str],
    *,
    env: str | None = None,
    wait: bool = True,
    pipeline: Path | None = None,
) -> SubmittedJob:
    """Submit the training pipeline to the Azure ML workspace of `env`."""
    from amlops.azure.jobs import submit_pipeline

    path = pipeline or settings.pipeline_file("training")
    return submit_pipeline(path, inputs, settings, env=env, wait=wait)
