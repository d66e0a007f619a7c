"""Fixtures of the reliability tests (faults and hostile inputs; README.md in this folder lists every case of the
suite). The training fixtures are the training tests' own (tests/training/training_helpers.py), the scoring
fixtures the scoring tests' (tests/scoring/conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
sys.path.insert(0, str(Path(__file__).parents[1] / "scoring"))

from training_helpers import SMALL, make_tracked

from amlops.config import Settings
from amlops.data.generate import generate
from scoring import conftest as _scoring

# The scoring tests' fixtures (two trained models, a registry per test), for the reliability tests that score.
demand = _scoring.demand
model_dirs = _scoring.model_dirs
register_model = _scoring.register_model
scoring_settings = _scoring.scoring_settings
shared_store = _scoring.shared_store


@pytest.fixture(scope="session")
def demand_df() -> pd.DataFrame:
    return generate(SMALL)


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow-template")


@pytest.fixture
def tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_template: Path) -> Iterator[Settings]:
    yield make_tracked(tmp_path, store_template, monkeypatch)
