"""Session 4 hostile pass: `amlops score --input "my data.csv"` (a space in the file or a folder name, or a `$`
in a parent folder's name) printed "scored 0 rows in 0 file(s)" and exited 0. The local runner quotes such a
path for the command line and handed the same quoted text to the parallel driver as `input_data`, which found no
file of that name and ran no mini-batch (runner/local.py `_parallel_command`). A silent empty result reads as
success to a script and leaves the monitor nothing to judge.

`scoring.check_scored` now refuses a run that wrote no predictions for an input that has data files (exit 1, one
line), and the runner hands the driver the raw path (`runner.command.substitute`), so such a path scores; the
driver itself fails on an `input_data` that does not exist instead of running no mini-batch."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from scoring_helpers import PIPELINE, files_in, read_predictions
from typer.testing import CliRunner

from amlops.cli import app
from amlops.config import Settings
from amlops.errors import UserError
from amlops.scoring import check_scored

ROWS = 60


def _input(base: Path, demand: pd.DataFrame, relative: str) -> Path:
    path = base / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    demand.head(ROWS).to_csv(path, index=False)
    return path


def _score(settings: Settings, monkeypatch: pytest.MonkeyPatch, data: Path, out: Path):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(settings.base_dir)
    monkeypatch.setenv("AMLOPS_CONFIG", str(settings.base_dir / "amlops.yaml"))
    args = ["score", "--pipeline", str(PIPELINE), "--model-version", "1", "--input", str(data)]
    return CliRunner().invoke(app, [*args, "--out", str(out)])


def test_a_run_that_wrote_no_predictions_is_refused(tmp_path: Path, demand: pd.DataFrame) -> None:
    """The planted fault: the step ran and wrote nothing for an input of two files."""
    data = tmp_path / "in"
    _input(data, demand, "a.csv")
    _input(data, demand, "b.csv")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    empty = tmp_path / "run" / "score" / "predictions"
    empty.mkdir(parents=True)
    with pytest.raises(UserError, match=r"the step wrote no predictions for 2 input file\(s\)") as caught:
        check_scored(data, empty, tmp_path / "run")
    assert caught.value.exit_code == 1
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before


def test_predictions_that_were_written_pass(tmp_path: Path, demand: pd.DataFrame) -> None:
    data = _input(tmp_path, demand, "in.csv")
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    demand.head(3).to_parquet(predictions / "in.parquet")
    check_scored(data, predictions, tmp_path)


@pytest.mark.parametrize(
    "relative",
    ["my data.csv", "dir x/in.csv", "a$b/in.csv"],
    ids=["space-file", "space-folder", "dollar-folder"],
)
def test_score_never_reports_zero_rows_for_a_path_it_accepted(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    relative: str,
) -> None:
    """Either every row is scored (once the runner passes the path unquoted) or the command fails with one line;
    never exit 0 with an empty result. The input is never touched."""
    register_model(model_dirs["v1"])
    data = _input(scoring_settings.base_dir / "inputs", demand, relative)
    before = data.read_bytes()
    out = scoring_settings.base_dir / "scored"
    result = _score(scoring_settings, monkeypatch, data, out)
    text = " ".join(result.output.split())
    if result.exit_code == 0:
        assert len(read_predictions(out)) == ROWS, text
    else:
        assert result.exit_code == 1, text
        assert "the step wrote no predictions for 1 input file(s)" in text
        assert "Traceback" not in result.output
        assert not out.exists() or files_in(out) == []
    assert data.read_bytes() == before


def test_a_file_name_with_a_space_is_scored(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_model(model_dirs["v1"])
    data = _input(scoring_settings.base_dir, demand, "my data.csv")
    out = scoring_settings.base_dir / "scored"
    result = _score(scoring_settings, monkeypatch, data, out)
    assert result.exit_code == 0, result.output
    assert len(read_predictions(out)) == ROWS
    shutil.rmtree(out)
