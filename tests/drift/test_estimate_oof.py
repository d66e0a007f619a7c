"""The error estimator's training rows: every training row is predicted by a model that never saw its week, so
the estimator learns the error on new data (over the whole training period, not only the last weeks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from amlops.steps.train import OOF_MAX_ROWS, out_of_fold


class Recorder:
    """A stand-in model: remembers the dates it was fitted on and predicts the mean of its labels."""

    def __init__(self, fits: list[set[Any]]) -> None:
        self.fits = fits

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Recorder:
        self.fits.append(set(X["date"]))
        self.mean = float(np.mean(y))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), self.mean)


def frame(days: int) -> pd.DataFrame:
    dates = pd.date_range("2025-01-06", periods=days, freq="D").repeat(3)
    return pd.DataFrame({"date": dates, "x": np.arange(len(dates), dtype=float)})


def test_no_row_is_predicted_by_a_model_that_trained_on_its_week() -> None:
    df = frame(28)
    y = np.where((df["date"] - df["date"].min()).dt.days // 7 % 2 == 0, 10.0, 20.0)
    fits: list[set[Any]] = []
    pred = out_of_fold(df, df, y, "date", lambda X, yy: Recorder(fits).fit(X, yy))
    assert pred is not None and len(fits) == 2
    # Alternating whole weeks: a day's rows never sit on both sides (they share its weather and calendar).
    assert not fits[0] & fits[1]
    # Each row got the other fold's mean: weeks labelled 10 are predicted 20 and the reverse.
    assert np.array_equal(pred, np.where(y == 10.0, 20.0, 10.0))


def test_a_row_split_would_leak_and_is_caught() -> None:
    """The check above can fail: planting a row-wise split (the leak out_of_fold avoids) breaks it."""
    df = frame(28)
    fits: list[set[Any]] = []
    model = Recorder(fits)
    rows = np.arange(len(df)) % 2 == 0
    model.fit(df[rows], np.zeros(int(rows.sum())))
    Recorder(fits).fit(df[~rows], np.zeros(int((~rows).sum())))
    with pytest.raises(AssertionError):
        assert not fits[0] & fits[1]


def test_one_week_or_too_many_rows_gives_no_out_of_fold() -> None:
    fit = lambda X, y: Recorder([]).fit(X, y)  # noqa: E731
    one_week = frame(7)
    assert out_of_fold(one_week, one_week, np.ones(len(one_week)), "date", fit) is None
    big = pd.DataFrame({"date": pd.Timestamp("2025-01-06"), "x": np.zeros(OOF_MAX_ROWS + 1)})
    assert out_of_fold(big, big, np.ones(len(big)), "date", fit) is None
