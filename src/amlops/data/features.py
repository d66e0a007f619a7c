"""Feature engineering and the model pipeline: calendar features + ordinal-encoded categories + gradient
boosting.

The trained pipeline is pickled with this module *by value* (cloudpickle), so a saved model loads where
amlops is not installed (an AML batch endpoint builds its environment from the model's pip requirements only).
Keep this module self-contained: only numpy, pandas and scikit-learn, no amlops imports.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

DEFAULT_PARAMS: dict[str, Any] = {
    "loss": "poisson",  # counts: a log link keeps predictions positive and effects multiplicative
    "learning_rate": 0.05,
    "max_iter": 200,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 40,
    "l2_regularization": 0.0,
    "early_stopping": False,  # early stopping draws a random validation split: off, so training is exact
}
# HistGradientBoosting handles at most 255 categories per feature; rarer ones share one code.
MAX_CATEGORIES = 250


def add_calendar_features(X: pd.DataFrame, date_column: str) -> pd.DataFrame:
    """Replace the date column by calendar features (weekday, day of month, month, position in the year)."""
    out = X.copy()
    when = pd.to_datetime(out.pop(date_column))
    year_angle = 2 * np.pi * (when.dt.day_of_year.to_numpy(dtype="float64") - 1) / 365.25
    out["day_of_week"] = when.dt.day_of_week.to_numpy(dtype="float64")
    out["day_of_month"] = when.dt.day.to_numpy(dtype="float64")
    out["month"] = when.dt.month.to_numpy(dtype="float64")
    out["year_sin"] = np.sin(year_angle)
    out["year_cos"] = np.cos(year_angle)
    return out


def build_pipeline(
    numeric: list[str], categorical: list[str], date_column: str, params: dict[str, Any], seed: int
) -> Pipeline:
    """The unfitted pipeline; `params` override DEFAULT_PARAMS of the HistGradientBoostingRegressor."""
    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,  # an unseen category is treated as missing, not as an error
                    encoded_missing_value=np.nan,
                    max_categories=MAX_CATEGORIES,
                    dtype=np.float64,
                ),
                categorical,
            ),
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    regressor = HistGradientBoostingRegressor(
        **{**DEFAULT_PARAMS, **params, "random_state": seed, "categorical_features": list(categorical)}
    )
    return Pipeline(
        [
            (
                "calendar",
                FunctionTransformer(
                    add_calendar_features, kw_args={"date_column": date_column}, validate=False
                ),
            ),
            ("encode", encode),
            ("model", regressor),
        ]
    )


def model_input(
    df: pd.DataFrame, numeric: list[str], categorical: list[str], date_column: str
) -> pd.DataFrame:
    """The model's input frame: date, numeric features as float64, categorical features as strings."""
    out = pd.DataFrame(index=df.index)
    out[date_column] = pd.to_datetime(df[date_column]).astype("datetime64[ns]")
    for col in numeric:
        out[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in categorical:
        out[col] = df[col].astype("str").where(df[col].notna(), other=np.nan).astype(object)
    return out
