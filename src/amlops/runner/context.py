"""What every step of one local pipeline run shares, handed from the runner to the sweep, distributed and reuse
helpers as one value instead of the same five arguments in each signature."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amlops.runner.plan import Plan


@dataclass(frozen=True)
class RunContext:
    plan: Plan
    # runs/<pipeline>/<run-id>/: each step's folder, log and outputs live below it.
    run_dir: Path
    # job name -> output name -> local path, filled in as steps complete (later steps bind to it).
    outputs_of: dict[str, dict[str, Path]]
    # The environment every step starts from (MLflow, AZUREML_ROOT_RUN_ID, PATH, --env overrides).
    base_env: dict[str, str]

    def step_dir(self, name: str) -> Path:
        return self.run_dir / name
