"""The training run's MLflow dataset record: its schema, built column by column for speed, is MLflow's own."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.types.utils import _infer_schema

from amlops.tracking import column_schema, pandas_dataset


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 500
    df = pd.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(n)],
            "date": pd.Timestamp("2025-01-06") + pd.to_timedelta(rng.integers(0, 60, n), unit="D"),
            "store_id": rng.choice(["S001", "S002"], n).astype(object),
            "price": rng.uniform(1, 5, n),
            "promotion": rng.integers(0, 2, n),
            "temperature": np.where(rng.uniform(size=n) < 0.05, np.nan, rng.normal(15, 5, n)),
            "store_type": pd.Categorical(rng.choice(["urban", "rural"], n)),
            "flag": rng.uniform(size=n) < 0.5,
            "units_sold": rng.poisson(3, n),
        }
    )
    df.loc[3, "store_id"] = None  # a missing text value: not required
    df.loc[7, "date"] = pd.NaT
    df["product_id"] = pd.array(rng.choice(["P001", "P002"], n), dtype="string")  # pandas' own text dtype
    df["product_category"] = pd.array(["a"] * (n - 1) + [None], dtype="string")
    return df


@pytest.mark.parametrize("drop", [[], ["temperature"], ["store_id", "date"]])
def test_the_schema_equals_mlflows_inference(drop: list[str]) -> None:
    df = frame().drop(columns=drop)
    assert column_schema(df) == _infer_schema(df)


def test_a_mismatch_would_be_caught() -> None:
    """The comparison above can fail: a column whose required flag is flipped is a different schema."""
    df = frame()
    ours = column_schema(df).to_dict()
    ours[0]["required"] = not ours[0]["required"]
    assert ours != _infer_schema(df).to_dict()


def test_the_logged_dataset_carries_it_and_the_full_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own per-value inference never runs (planted to fail: MLflow would then record no schema), yet
    the record holds MLflow's schema and the profile of every row."""
    import mlflow.data.pandas_dataset as mlflow_pandas
    from mlflow.data.dataset_source import DatasetSource

    def refuse(_df: object) -> None:
        raise RuntimeError("MLflow's slow schema inference ran")

    expected = _infer_schema(frame())
    monkeypatch.setattr(mlflow_pandas, "_infer_schema", refuse)

    class Source(DatasetSource):
        @staticmethod
        def _get_source_type() -> str:
            return "test"

        def load(self, **_: object) -> str:
            return ""

        @staticmethod
        def _can_resolve(raw_source: object) -> bool:
            return False

        @classmethod
        def _resolve(cls, raw_source: object) -> Source:
            return cls()

        def to_dict(self) -> dict[str, str]:
            return {"uri": "x"}

        @classmethod
        def from_dict(cls, source_dict: dict[str, str]) -> Source:
            return cls()

    df = frame()
    record = pandas_dataset(df, source=Source(), name="demand@1", digest="abc").to_dict()
    assert record["schema"] == json.dumps({"mlflow_colspec": expected.to_dict()})
    assert json.loads(record["profile"])["num_rows"] == len(df)
