"""Fixtures for the training tests: small generated data, an isolated MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from training_helpers import FAST_PARAMS, HOLDOUT_DAYS, SCHEMA, SMALL

from amlops.config import Settings
from amlops.data.generate import generate
from amlops.data.io import write_table


@pytest.fixture(scope="session")
def demand_df() -> pd.DataFrame:
    return generate(SMALL)


@pytest.fixture
def raw_csv(tmp_path: Path, demand_df: pd.DataFrame) -> Path:
    return write_table(demand_df, tmp_path / "raw" / "demand.csv")


@pytest.fixture
def tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings in tmp_path with MLflow pointed at its SQLite store, as the local runner sets for a step."""
    from amlops.tracking import ensure_experiment, mlflow_env

    settings = Settings(base_dir=tmp_path, model_name="demand-test", experiment="training-tests")
    settings.data.schema_file = str(SCHEMA)
    settings.train.params = dict(FAST_PARAMS)
    settings.train.holdout_days = HOLDOUT_DAYS
    settings.gate.bootstrap_samples = 200
    ensure_experiment(settings)
    for key, value in mlflow_env(settings).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AMLOPS_GIT_COMMIT", "c0ffee0")
    monkeypatch.delenv("AMLOPS_TEST_KILL_AT", raising=False)
    yield settings
