"""`amlops demo --out DIR` removes only what an earlier demo wrote there; any other folder is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.demo import LOCK, MARKER, prepare_folder, run_demo
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


def test_a_second_demo_in_a_busy_folder_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    """Two `amlops demo --out DIR` at once: the second would delete the first one's state under it. It is
    refused at once (the running demo holds an flock on DIR/.amlops-demo.lock), and nothing is removed."""
    from amlops.config import Settings
    from amlops.locks import file_lock

    folder = tmp_path / "demo"
    prepare_folder(folder)
    (folder / "state").mkdir()
    (folder / "state" / "mlflow.db").write_text("the running demo's registry")
    running = file_lock(folder / LOCK, timeout=0, on_timeout=AssertionError)  # the first demo, still running
    refused = pytest.raises(UserError, match="another amlops demo is running in this folder")
    with running, refused:
        run_demo(Settings(base_dir=tmp_path), folder)
    assert (folder / "state" / "mlflow.db").read_text() == "the running demo's registry"


def test_a_folder_with_shell_syntax_is_refused_before_any_work(tmp_path: Path) -> None:
    from amlops.config import Settings

    folder = tmp_path / "it's"
    with pytest.raises(UserError, match="the path has shell syntax"):
        run_demo(Settings(base_dir=tmp_path), folder)
    assert not folder.exists()


def test_a_refused_folder_is_left_without_a_lock_file(tmp_path: Path) -> None:
    from amlops.config import Settings

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and not made by amlops demo"):
        run_demo(Settings(base_dir=tmp_path), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_folder_holding_only_the_lock_counts_as_empty(tmp_path: Path) -> None:
    """A demo interrupted before it marked its folder leaves the lock file: a rerun takes the folder."""
    (tmp_path / LOCK).write_text("")
    prepare_folder(tmp_path)
    assert (tmp_path / MARKER).is_file()


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
