"""Shared helpers of the training tests (uniquely named: conftest modules collide)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amlops.config import Settings
from amlops.data.generate import GeneratorConfig

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "data" / "schema" / "demand.yaml"
PIPELINE = REPO / "pipelines" / "training.yml"
# Small and quick: 3 stores x 4 products x 150 days = 1,800 rows; few boosting rounds.
SMALL = GeneratorConfig(days=150, stores=3, products=4, seed=7)
FAST_PARAMS: dict[str, Any] = {"max_iter": 60}
HOLDOUT_DAYS = 21


_TEMPLATE_DB: dict[str, Path] = {}


def fresh_store(settings: Settings, template_root: Path) -> None:
    """Give `settings` an empty, already-migrated SQLite MLflow store: copying one file instead of running the
    schema migrations for every test (seconds each)."""
    import shutil

    if "db" not in _TEMPLATE_DB:
        from amlops import registry

        template = Settings(base_dir=template_root)
        registry.client_for(template).search_experiments()  # creates and migrates the database
        _TEMPLATE_DB["db"] = template.state_path / "mlflow.db"
    target = settings.state_path / "mlflow.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE_DB["db"], target)


def make_tracked(root: Path, store_template: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings under `root` with the MLflow variables the local runner gives a step, set in the
    environment."""
    from amlops.tracking import ensure_experiment, mlflow_env

    settings = Settings(base_dir=root, model_name="demand-test", experiment="training-tests")
    settings.data.schema_file = str(SCHEMA)
    settings.train.params = dict(FAST_PARAMS)
    settings.train.holdout_days = HOLDOUT_DAYS
    settings.gate.bootstrap_samples = 200
    fresh_store(settings, store_template)
    ensure_experiment(settings)
    for key, value in mlflow_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AMLOPS_GIT_COMMIT", "c0ffee0")
    monkeypatch.delenv("AMLOPS_TEST_KILL_AT", raising=False)
    return settings


@dataclass
class StepRun:
    """The outputs of one in-process pass through prep -> train -> evaluate -> register."""

    root: Path
    snapshot: Path
    quarantine: Path
    model: Path
    run_info: Path
    verdict: Path
    registration: Path

    def json(self, folder: Path, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((folder / name).read_text())
        return data


def run_steps(
    settings: Settings,
    raw: Path,
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    run_id: str,
    params: dict[str, Any] | None = None,
    register: bool = True,
    **gate: Any,
) -> StepRun:
    """The training pipeline's steps as plain function calls (what the pipeline YAML wires together)."""
    from amlops.steps.evaluate import evaluate
    from amlops.steps.prep import prep
    from amlops.steps.register import register as register_step
    from amlops.steps.train import train

    monkeypatch.setenv("AZUREML_ROOT_RUN_ID", run_id)
    r = StepRun(
        root,
        root / "snapshot",
        root / "quarantine",
        root / "model",
        root / "run_info",
        root / "verdict",
        root / "registration",
    )
    prep(raw, SCHEMA, r.snapshot, r.quarantine, max_bad_row_share=settings.data.max_bad_row_share)
    train(
        r.snapshot,
        SCHEMA,
        r.model,
        r.run_info,
        seed=settings.train.seed,
        holdout_days=settings.train.holdout_days,
        params=settings.train.params if params is None else params,
    )
    g = settings.gate
    evaluate(
        r.model,
        r.snapshot,
        SCHEMA,
        r.verdict,
        model_name=settings.model_name,
        metric=gate.get("metric", g.metric),
        max_mae=gate.get("max_mae", g.max_mae),
        max_rmse=gate.get("max_rmse", g.max_rmse),
        max_mape=gate.get("max_mape", g.max_mape),
        min_improvement=gate.get("min_improvement", g.min_improvement),
        bootstrap_samples=g.bootstrap_samples,
        confidence=g.confidence,
        require_confident=gate.get("require_confident", g.require_confident),
        seed=settings.train.seed,
        holdout_days=settings.train.holdout_days,
    )
    if register:
        register_step(
            r.run_info,
            r.verdict,
            r.snapshot,
            r.registration,
            model_name=settings.model_name,
            auto_promote=gate.get("auto_promote", g.auto_promote),
        )
    return r


def store_with_three_versions(
    tmp_path: Path, template_root: Path, name: str, extra_tags: dict[int, dict[str, str]] | None = None
) -> Settings:
    """A fresh store holding `name` v1..v3, each with its own model folder, data digest and commit tags (plus
    `extra_tags[v]`): the registry tests' starting point."""
    import json

    from amlops import registry

    settings = Settings(base_dir=tmp_path)
    fresh_store(settings, template_root)
    client = registry.client_for(settings)
    registry.ensure_registered_model(client, name)
    for v in (1, 2, 3):
        source = tmp_path / f"model-{v}"
        source.mkdir()
        (source / "MLmodel").write_text(f"artifact_path: model\nversion: {v}\n")
        (source / "reference_profile.json").write_text(json.dumps({"version": v}))
        tags = {"data.digest": f"sha256:{v}" * 4, "git.commit": f"commit{v}", **(extra_tags or {}).get(v, {})}
        client.create_model_version(name, source=str(source), tags=tags)
    return settings
