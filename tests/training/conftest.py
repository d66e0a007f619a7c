"""Fixtures for the training tests: small generated data, an isolated MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from training_helpers import SMALL, make_tracked

from amlops.config import Settings
from amlops.data.generate import generate
from amlops.data.io import write_table


@pytest.fixture(scope="session")
def demand_df() -> pd.DataFrame:
    return generate(SMALL)


@pytest.fixture
def raw_csv(tmp_path: Path, demand_df: pd.DataFrame) -> Path:
    return write_table(demand_df, tmp_path / "raw" / "demand.csv")


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-template")


@pytest.fixture
def tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_template: Path) -> Iterator[Settings]:
    """Settings in tmp_path with MLflow pointed at its SQLite store, as the local runner sets for a step."""
    yield make_tracked(tmp_path, store_template, monkeypatch)
