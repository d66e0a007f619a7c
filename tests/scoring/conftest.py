"""Fixtures for the scoring tests: two small models trained by the real train step, a registry per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scoring_helpers import MODEL_PARAMS, SCHEMA, SMALL

from amlops.config import Settings, load_settings
from amlops.data.generate import generate
from amlops.data.schema import load_schema
from amlops.data.snapshot import write_snapshot


@pytest.fixture(scope="session")
def demand() -> pd.DataFrame:
    return generate(SMALL)


@pytest.fixture(scope="session")
def model_dirs(shared_cache: Callable[[str, Callable[[Path], None]], Path]) -> dict[str, Path]:
    """{"v1": folder, "v2": folder}: MLflow models written by amlops.steps.train (what scoring reads). Trained
    once per test run, shared by the xdist workers; tests that change a model copy it first."""
    root = shared_cache("scoring-models", _train_models)
    return {key: root / key / "model" for key in MODEL_PARAMS}


def _train_models(root: Path) -> None:
    from amlops.steps.train import train

    snapshot = root / "snapshot"
    write_snapshot(generate(SMALL), load_schema(SCHEMA), snapshot)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("MLFLOW_EXPERIMENT_NAME", "scoring-fixture")
        mp.delenv("AMLOPS_TEST_KILL_AT", raising=False)
        for key, params in MODEL_PARAMS.items():
            train(
                snapshot,
                SCHEMA,
                root / key / "model",
                root / key / "run_info",
                seed=3,
                holdout_days=14,
                params=params,
            )


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One SQLite MLflow store for the session (creating one takes seconds); tests differ by model name."""
    root = tmp_path_factory.mktemp("scoring-mlflow")
    return {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_root": str(root / "artifacts")}


@pytest.fixture
def scoring_settings(tmp_path: Path, shared_store: dict[str, str]) -> Iterator[Settings]:
    """Settings rooted in tmp_path (runs, model cache) on the shared store, with a model name of its own;
    also written as amlops.yaml for the CLI."""
    name = f"demand-{uuid.uuid4().hex[:8]}"
    (tmp_path / "amlops.yaml").write_text(
        yaml.safe_dump({"model_name": name, "experiment": "scoring-tests", "mlflow": shared_store})
    )
    yield load_settings(tmp_path / "amlops.yaml", environ={})


@pytest.fixture
def register_model(scoring_settings: Settings) -> Callable[[Path], str]:
    """Register a model folder as a new version of the settings' model (as the register step does: the run's
    `model` artifact is the version's source); returns the version."""
    from amlops import registry
    from amlops.tracking import ensure_experiment

    client = registry.client_for(scoring_settings)
    experiment_id = ensure_experiment(scoring_settings)

    def register(folder: Path) -> str:
        run = client.create_run(experiment_id)
        client.log_artifacts(run.info.run_id, str(folder), "model")
        client.set_terminated(run.info.run_id)
        registry.ensure_registered_model(client, scoring_settings.model_name)
        mv = client.create_model_version(
            scoring_settings.model_name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        return str(mv.version)

    return register
