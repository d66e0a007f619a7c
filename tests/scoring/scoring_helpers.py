"""Shared helpers of the scoring tests (uniquely named: conftest modules collide)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlops.data.generate import GeneratorConfig

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "data" / "schema" / "demand.yaml"
PIPELINE = REPO / "pipelines" / "batch_inference.yml"
# 3 stores x 4 products x 120 days = 1,440 rows: seconds to train, enough for distinct models.
SMALL = GeneratorConfig(days=120, stores=3, products=4, seed=11)
# Two models that predict differently, so a test can tell which one scored.
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "v1": {"max_iter": 20},
    "v2": {"max_iter": 40, "learning_rate": 0.2},
}


def bare_predictions(model_dir: Path, df: pd.DataFrame) -> np.ndarray:
    """What MLflow's own sklearn loader predicts on the rows in model-input form (the train step's form)."""
    import mlflow.sklearn

    from amlops.data.features import model_input
    from amlops.data.schema import load_schema

    schema = load_schema(SCHEMA)
    X = model_input(df, list(schema.numeric_features), list(schema.categorical_features), schema.date_column)
    return np.asarray(mlflow.sklearn.load_model(str(model_dir)).predict(X))


def read_predictions(folder: Path) -> pd.DataFrame:
    """Every predictions file of a folder, in file-name order."""
    files = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))
    assert files, f"no predictions in {folder}"
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
