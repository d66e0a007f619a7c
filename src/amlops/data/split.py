"""The time split shared by training and evaluation: the most recent `holdout_days` days are the holdout."""

from __future__ import annotations

import pandas as pd

from amlops.errors import AmlopsError


class SplitError(AmlopsError, ValueError):
    """The data cannot be split as asked (too few days)."""


def split_holdout(
    df: pd.DataFrame, date_column: str, holdout_days: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """(train, holdout, first holdout day). Calendar days, not rows: every series is cut at the same date."""
    if holdout_days < 1:
        raise SplitError(f"holdout_days must be at least 1, got {holdout_days}")
    dates = pd.to_datetime(df[date_column])
    last = dates.max().normalize()
    cutoff = last - pd.Timedelta(days=holdout_days - 1)
    is_holdout = dates >= cutoff
    days = int(dates.dt.normalize().nunique())
    if is_holdout.all():
        raise SplitError(
            f"holdout_days={holdout_days} covers all {days} day(s) of data: nothing left to train on "
            "(use more data or fewer holdout days)"
        )
    return df[~is_holdout], df[is_holdout], cutoff
