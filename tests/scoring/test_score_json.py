"""`amlops score --json`: one JSON document on stdout (what CI reads), everything for people on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from scoring_helpers import PIPELINE
from typer.testing import CliRunner

from amlops import registry
from amlops.cli import app
from amlops.config import Settings


@pytest.mark.slow
def test_score_json_is_the_only_thing_on_stdout(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = scoring_settings.model_name
    version = register_model(model_dirs["v1"])
    registry.promote(scoring_settings, name, version, reason="first", actor="test")
    data = scoring_settings.base_dir / "week.parquet"
    demand.head(120).drop(columns=["units_sold"]).to_parquet(data, index=False)
    monkeypatch.chdir(scoring_settings.base_dir)
    monkeypatch.setenv("AMLOPS_CONFIG", str(scoring_settings.base_dir / "amlops.yaml"))

    result = CliRunner().invoke(app, ["score", "--pipeline", str(PIPELINE), "--input", str(data), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # nothing else on stdout
    assert document["target"] == "local" and document["version"] == version and document["role"] == "champion"
    assert document["rows"] == 120 and Path(document["predictions"]).is_dir()
    assert f"scoring {data} with {name} v{version}" in result.stderr
