"""`amlops demo --out DIR` removes only what an earlier demo wrote there; any other folder is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.demo import MARKER, prepare_folder
from amlops.errors import UserError


def test_a_folder_the_demo_did_not_make_is_refused_untouched(tmp_path: Path) -> None:
    precious = tmp_path / "project"
    (precious / ".git").mkdir(parents=True)
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and not made by amlops demo"):
        prepare_folder(precious)
    assert (precious / "notes.txt").read_text() == "mine" and (precious / ".git").is_dir()


def test_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        prepare_folder(target)
    assert target.read_text() == "x"


def test_a_rerun_replaces_only_the_demos_own_entries(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    prepare_folder(folder)  # new folder: made and marked
    assert (folder / MARKER).is_file()
    (folder / "state" / "retrain").mkdir(parents=True)
    (folder / "state" / "mlflow.db").write_text("old registry")
    (folder / "timeline.json").write_text("{}")
    (folder / "my-analysis.ipynb").write_text("kept")  # the user's own file beside the demo's
    prepare_folder(folder)
    assert not (folder / "state").exists() and not (folder / "timeline.json").exists()
    assert (folder / "my-analysis.ipynb").read_text() == "kept"


def test_an_empty_folder_is_taken(tmp_path: Path) -> None:
    prepare_folder(tmp_path)
    assert (tmp_path / MARKER).is_file()


def test_the_cli_says_it_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from amlops.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    result = CliRunner().invoke(app, ["demo", "--out", "."])
    assert result.exit_code == 1
    assert "not empty and not made by amlops demo" in result.output
    assert (tmp_path / "keep.txt").exists()
