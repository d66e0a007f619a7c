"""Paths that are the wrong kind are said before any work, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from amlops.cli import app


@pytest.mark.parametrize("key", ["state_dir", "runs_dir"])
def test_a_state_folder_that_is_a_file_is_a_config_error(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "amlops.yaml").write_text(f"{key}: occupied\n")
    (tmp_path / "occupied").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 2
    assert f"{key}: {tmp_path / 'occupied'} is a file" in result.output
    assert (tmp_path / "occupied").read_text() == "not a folder"


def test_train_summary_that_is_a_folder_is_refused_before_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "summary").mkdir()
    result = CliRunner().invoke(app, ["train", "--data", "nowhere.csv", "--summary", "summary"])
    assert result.exit_code == 2 and "--summary" in result.output and "is a folder" in result.output
    assert not (tmp_path / "runs").exists()


def test_the_default_schema_falls_back_to_the_shipped_one_and_a_custom_one_must_exist(tmp_path: Path) -> None:
    from amlops.config import ConfigError, Settings

    settings = Settings(base_dir=tmp_path)  # a new project without data/schema/
    assert settings.schema_path().name == "demand.yaml" and settings.schema_path().is_file()
    settings.data.schema_file = "schemas/mine.yaml"
    with pytest.raises(ConfigError, match=r"data.schema_file: .*schemas/mine.yaml not found"):
        settings.schema_path()
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "mine.yaml").write_text("x: 1\n")
    assert settings.schema_path() == tmp_path / "schemas" / "mine.yaml"
