"""The training CLI: data generate/validate, promote/rollback/history/models, and train's input handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from training_helpers import SCHEMA, fresh_store
from typer.testing import CliRunner

from amlops import registry
from amlops.cli import app
from amlops.config import load_settings
from amlops.console import UserError
from amlops.job_inputs import Target, training_inputs
from amlops.job_inputs import params_text as _params_text

NAME = "cli-model"


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_template: Path) -> Path:
    config = tmp_path / "amlops.yaml"
    config.write_text(f"model_name: {NAME}\ndata:\n  schema_file: {SCHEMA}\n")
    fresh_store(load_settings(path=config), store_template)
    monkeypatch.setenv("AMLOPS_CONFIG", str(config))
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generate_then_validate(project: Path) -> None:
    made = cli(
        "data",
        "generate",
        "--out",
        "d.parquet",
        "--days",
        "40",
        "--stores",
        "2",
        "--products",
        "3",
        "--drift-date",
        "2024-01-20",
        "--drift",
        "new_category",
    )
    assert made.exit_code == 0, made.output
    # 40 days x 2 stores x 3 products, plus one new-category product in 2 stores for the last 21 days
    assert "wrote 282 rows" in made.output and "drift new_category from 2024-01-20" in made.output
    ok = cli("data", "validate", "d.parquet")
    assert ok.exit_code == 0, ok.output
    assert "282 valid, 0 invalid" in ok.output
    assert "plant_based" in ok.output  # the new category is kept (allow_unseen) and reported

    df = pd.read_parquet(project / "d.parquet")
    df.loc[:50, "units_sold"] = -1
    df.to_csv(project / "bad.csv", index=False)
    bad = cli("data", "validate", "bad.csv", "--quarantine", "q.csv")
    assert bad.exit_code == 1
    assert "column 'units_sold': rule 'greater_than_or_equal_to(0.0)'" in bad.output
    assert len(pd.read_csv(project / "q.csv")) == 51

    wrong = cli("data", "generate", "--out", "x.csv", "--drift", "price_shift")
    assert wrong.exit_code == 1 and "drift kinds need a drift date" in wrong.output


def test_promote_rollback_history_models(project: Path) -> None:
    from mlflow.tracking import MlflowClient

    settings = load_settings()
    client = registry.client_for(settings)
    registry.ensure_registered_model(client, NAME)
    for v in (1, 2):
        (project / f"m{v}").mkdir()
        MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri).create_model_version(
            NAME,
            source=str(project / f"m{v}"),
            tags={
                "gate.passed": "true" if v == 1 else "false",
                "gate.metric": "mae",
                "gate.challenger": "4.5",
                "data.digest": f"sha256:{v}{'0' * 63}",
                "git.commit": f"abc{v}",
            },
        )
    registry.set_role(client, NAME, registry.CHALLENGER, 2)

    assert cli("promote", "1", "--reason", "first").exit_code == 0
    promoted = cli("promote", "--reason", "looks good")  # default: the challenger (v2), which failed its gate
    assert promoted.exit_code == 0, promoted.output
    assert "v2 did not pass the gate" in promoted.output and "v2 is now the champion" in promoted.output
    assert "already is the champion" in cli("promote", "2", "--reason", "again").output

    listing = cli("models")
    assert listing.exit_code == 0 and "champion, challenger" in listing.output

    back = cli("rollback", "--reason", "forecasts too high")
    assert back.exit_code == 0 and "champion is v1" in back.output
    again = cli("rollback", "--reason", "x")
    assert again.exit_code == 1 and "no earlier champion" in again.output
    unknown = cli("promote", "7", "--reason", "x")
    assert unknown.exit_code == 1 and "has no version 7" in unknown.output
    assert cli("promote", "1").exit_code == 2  # --reason is required

    events = json.loads(cli("history", "--json").output)
    assert [(e["action"], e["version"], e["actor"]) for e in events] == [
        ("promote", "1", "github:octocat"),
        ("promote", "2", "github:octocat"),
        ("rollback", "1", "github:octocat"),
    ]
    at = events[1]["time"]
    served = cli("history", "--at", at)
    assert "v2 of cli-model served" in served.output and "abc2" in served.output
    assert "nothing promoted yet" in cli("history", "--at", "2000-01-01").output
    assert cli("history", "--at", "last tuesday").exit_code == 1


def test_train_inputs_from_settings(project: Path) -> None:
    settings = load_settings()
    settings.train.params = {"max_iter": 50, "learning_rate": 0.1, "early_stopping": False}
    settings.gate.max_mae = 4.0
    (project / "d.csv").write_text("x\n1\n")
    (project / "parts").mkdir()
    inputs = training_inputs(settings, "d.csv")
    assert inputs["raw_file"] == str(project / "d.csv") and inputs["data_uri"] == str(project / "d.csv")
    assert inputs["params"] == "max_iter=50,learning_rate=0.1,early_stopping=false"
    assert (inputs["max_mae"], inputs["max_rmse"], inputs["require_confident"]) == ("4.0", "0.0", "true")
    assert inputs["schema"] == str(SCHEMA)
    assert training_inputs(settings, "parts")["raw_folder"] == str(project / "parts")
    assert training_inputs(settings, "demand:3", Target.azure)["raw_folder"] == "demand:3"
    with pytest.raises(UserError, match="need --target azure"):
        training_inputs(settings, "azureml:demand:3")
    with pytest.raises(UserError, match="no training data"):
        training_inputs(settings, None)
    assert _params_text({"interaction_cst": [[0, 1]]}) == '{"interaction_cst":[[0,1]]}'
    missing = cli("train", "--pipeline", str(SCHEMA.parents[2] / "pipelines" / "training.yml"))
    assert (
        missing.exit_code == 2 and "no training data" in missing.output
    )  # a usage error, like a missing flag
