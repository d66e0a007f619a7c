"""Predictions are files for people and other jobs: ordinary permissions (0644 under the usual umask), not the
0600 of the temporary file they are written through."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd

from amlops.steps import score


def test_predictions_get_ordinary_permissions(
    model_dirs: dict[str, Path], demand: pd.DataFrame, tmp_path: Path
) -> None:
    data = tmp_path / "week.parquet"
    demand.head(50).drop(columns=["units_sold"]).to_parquet(data, index=False)
    assert 0o666 & ~_umask() == score.FILE_MODE
    [result] = score.score_path(data, model_dirs["v1"], tmp_path / "out", "1")
    assert stat.S_IMODE(result.output.stat().st_mode) == score.FILE_MODE


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
