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


def test_a_row_split_would_leak_and_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: with the folds planted row by row (the leak week_folds avoids), a day's rows
    sit on both sides and the same assertion breaks."""
    import amlops.steps.train as train_step

    monkeypatch.setattr(train_step, "week_folds", lambda days: np.arange(len(days)) % 2)
    df = frame(28)
    fits: list[set[Any]] = []
    pred = train_step.out_of_fold(df, df, np.ones(len(df)), "date", lambda X, yy: Recorder(fits).fit(X, yy))
    assert pred is not None and len(fits) == 2
    with pytest.raises(AssertionError):
        assert not fits[0] & fits[1]


def test_one_week_or_too_many_rows_gives_no_out_of_fold() -> None:
    fit = lambda X, y: Recorder([]).fit(X, y)  # noqa: E731
    one_week = frame(7)
    assert out_of_fold(one_week, one_week, np.ones(len(one_week)), "date", fit) is None
    big = pd.DataFrame({"date": pd.Timestamp("2025-01-06"), "x": np.zeros(OOF_MAX_ROWS + 1)})
    assert out_of_fold(big, big, np.ones(len(big)), "date", fit) is None


def test_the_reference_level_is_the_holdouts_when_older_rows_join_the_fit() -> None:
    """Out-of-fold training rows widen what the estimator learns from, but its reference level (what the
    policy compares a window's estimate with) stays the holdout's, like the measured error's reference."""
    from amlops.drift.estimate import fit_error_estimator

    rng = np.random.default_rng(3)
    n_old, n_hold = 3000, 1000
    x = rng.uniform(0, 1, n_old + n_hold)
    pred = 10 * x + 1
    noise = np.where(np.arange(len(x)) < n_old, 0.5, 2.0)  # the holdout's rows err four times as much
    y = pred + rng.normal(0, noise)
    df = pd.DataFrame({"x": x})
    hold = np.arange(len(x)) >= n_old
    with_ref = fit_error_estimator(df, pred, y, ["x"], [], seed=1, reference_rows=hold)
    everything = fit_error_estimator(df, pred, y, ["x"], [], seed=1)
    realized_hold = float(np.mean(np.abs(y - pred)[hold]))
    assert with_ref.reference["realized_mae"] == pytest.approx(realized_hold)
    assert with_ref.reference["rows"] == n_hold
    assert everything.reference["realized_mae"] < 0.6 * realized_hold  # mostly the quiet older rows
    assert with_ref.reference["mean_prediction"] == pytest.approx(float(np.mean(np.abs(pred[hold]))))
    # The estimate's level is brought to the holdout's (the quieter older rows pulled it down): what the policy
    # compares a window's estimate with, and what the band around it is drawn from.
    assert with_ref.reference["estimated_mae"] == pytest.approx(realized_hold, rel=1e-9)
    assert everything.reference["estimated_mae"] < 0.6 * realized_hold
    assert with_ref.metadata["level_factor_abs"] > 1.5
