"""Score: a header-only file, a wrong delimiter and a profile JSON of the wrong shape give the clear messages
training gives (before: "column 'date' is missing", an empty predictions file, a KeyError). A bare model folder
that unpickles says so before it is loaded; the project's own registry downloads do not warn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from scoring_helpers import PIPELINE, files_in
from typer.testing import CliRunner

from amlops.cli import app
from amlops.config import Settings
from amlops.drift.profile import ProfileError, ReferenceProfile
from amlops.runner.local import run_pipeline
from amlops.steps import score


def _options(model: score.Model) -> score.Options:
    return score.resolve_options(model, "1", "row_id", "prediction")


def _header_only(df: pd.DataFrame, folder: Path) -> Path:
    path = folder / "header.csv"
    df.head(0).to_csv(path, index=False)
    return path


def _semicolons(df: pd.DataFrame, folder: Path) -> Path:
    path = folder / "semi.csv"
    df.head(20).to_csv(path, index=False, sep=";")
    return path


def _empty_parquet(df: pd.DataFrame, folder: Path) -> Path:
    path = folder / "empty.parquet"
    df.head(0).to_parquet(path, index=False)
    return path


CASES: list[tuple[str, Callable[[pd.DataFrame, Path], Path], str]] = [
    ("header-only-csv", _header_only, "header.csv: no data rows (only a header)"),
    ("wrong-delimiter", _semicolons, "semi.csv: wrong delimiter: the header 'row_id;date;"),
    ("empty-parquet", _empty_parquet, "empty.parquet: no data rows (only a header)"),
]


@pytest.mark.parametrize(("name", "build", "message"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("parse_csv", [True, False], ids=["full-check", "header-check"])
def test_score_input_shape_errors(
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    tmp_path: Path,
    name: str,
    build,
    message: str,
    parse_csv: bool,  # type: ignore[no-untyped-def]
) -> None:
    path = build(demand, tmp_path)
    before = path.read_bytes()
    model = score.load_model(model_dirs["v1"])
    with pytest.raises(score.ScoreInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        score.check_inputs([path], model, _options(model), None, parse_csv=parse_csv)
    assert path.read_bytes() == before


def test_score_command_refuses_a_header_only_file(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register_model(model_dirs["v1"])
    data = _header_only(demand, scoring_settings.base_dir)
    monkeypatch.chdir(scoring_settings.base_dir)
    monkeypatch.setenv("AMLOPS_CONFIG", str(scoring_settings.base_dir / "amlops.yaml"))
    out = scoring_settings.base_dir / "scored"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--pipeline",
            str(PIPELINE),
            "--model-version",
            "1",
            "--input",
            str(data),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 1, result.output
    assert f"{data}: no data rows (only a header)" in " ".join(result.output.split())
    assert not out.exists() or files_in(out) == []


PROFILES = [
    ("array", [1, 2], "a JSON array, not an object"),
    (
        "numeric-as-list",
        {"schema": "amlops.reference_profile", "schema_version": 1, "row_count": 3, "numeric": []},
        "'numeric' must be an object of feature -> object, got a JSON array",
    ),
    (
        "feature-without-edges",
        {
            "schema": "amlops.reference_profile",
            "schema_version": 1,
            "row_count": 3,
            "numeric": {"price": {"counts": [1], "count": 1}},
        },
        "numeric feature 'price' has no field 'edges'",
    ),
    (
        "no-row-count",
        {"schema": "amlops.reference_profile", "schema_version": 1},
        "field 'row_count' is missing",
    ),
    (
        "a-monitor-result",
        {"schema": "amlops.monitor_result", "schema_version": 1, "verdict": {}},
        "not an amlops reference profile",
    ),
    (
        "categories-as-list",
        {
            "schema": "amlops.reference_profile",
            "schema_version": 1,
            "row_count": 3,
            "categorical": {"store": {"categories": ["a", "b"]}},
        },
        "categorical feature 'store'",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), PROFILES, ids=[p[0] for p in PROFILES])
def test_a_profile_of_the_wrong_shape_is_one_clear_line(
    tmp_path: Path, name: str, content: object, message: str
) -> None:
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ProfileError) as info:
        ReferenceProfile.from_json(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_a_bare_model_folder_that_unpickles_is_announced(
    scoring_settings: Settings,
    model_dirs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    empty = tmp_path / "in"
    empty.mkdir()
    # An empty input folder: the step has nothing to score; the warning comes before it starts.
    run_pipeline(
        PIPELINE,
        {"data": str(empty), "model": str(model_dirs["v1"]), "model_version": "1"},
        scoring_settings,
        quiet=True,
    )
    err = " ".join(capsys.readouterr().err.split())
    assert f"warning: model folder {model_dirs['v1']} is loaded by unpickling model.pkl" in err


def test_the_projects_own_registry_download_is_not_announced(
    scoring_settings: Settings,
    model_dirs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import shutil

    cached = scoring_settings.state_path / "models" / scoring_settings.model_name / "1"
    shutil.copytree(model_dirs["v1"], cached)
    empty = tmp_path / "in"
    empty.mkdir()
    run_pipeline(
        PIPELINE,
        {"data": str(empty), "model": str(cached), "model_version": "1"},
        scoring_settings,
        quiet=True,
    )
    assert "unpickling" not in capsys.readouterr().err
