"""CLI conventions users know from `az ml` and `mlflow`: -h, --version, flags shown as flags."""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amlops.cli import app


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.output
    return result.output


def test_version() -> None:
    assert invoke("--version").strip() == f"amlops {version('amlops')}"


def test_dash_h_is_help_everywhere() -> None:
    assert invoke("-h") == invoke("--help")
    assert "Usage: amlops train" in invoke("train", "-h")


def test_flags_show_no_value_and_lists_read_as_repeatable() -> None:
    text = invoke("train", "--help")
    strict = next(line for line in text.splitlines() if "--strict" in line)
    assert "<bool>" not in text and "<" not in strict.split("--strict", 1)[1].split("Exit", 1)[0]
    assert "<text> (repeatable)" in next(line for line in text.splitlines() if "│ --set" in line)
    assert "<list[" not in text


def test_a_missing_azure_setting_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "amlops.yaml").write_text("")
    for key in [k for k in os.environ if k.startswith("AMLOPS_AZURE")]:
        monkeypatch.delenv(key)
    for args in (["deploy"], ["schedule", "list"], ["run", "x.yml", "--target", "azure"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "azure.subscription_id is not set" in result.output
        assert len(result.output.strip().splitlines()) == 1
