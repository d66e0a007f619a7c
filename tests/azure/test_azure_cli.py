"""The Azure commands through the real CLI (`amlops deploy`, `components publish`, `schedule ...`) offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from azure_helpers import FIXTURES, MODEL, seed_model, serve_run_history
from fakeazure import LOCATION, RG, SUB, WS, FakeAzure, Recorded, Reply
from typer.testing import CliRunner

from amlops.cli import app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeAzure) -> Path:
    """A project folder as `amlops infra deploy --env dev` leaves it: amlops.yaml with
    azure.environments.dev."""
    for folder in ("components", "src"):
        shutil.copytree(FIXTURES / folder, tmp_path / folder)
    shutil.copytree(REPO / "pipelines", tmp_path / "pipelines")
    shutil.copytree(REPO / "components", tmp_path / "repo_components")  # referenced by pipelines/*.yml
    for file in (tmp_path / "pipelines").glob("*.yml"):
        file.write_text(file.read_text().replace("../components/", "../repo_components/"))
    (tmp_path / "data").symlink_to(REPO / "data")
    config = {
        "azure": {
            "environments": {
                "dev": {
                    "subscription_id": SUB,
                    "resource_group": RG,
                    "workspace": WS,
                    "compute": "cpu-cluster",
                }
            }
        }
    }
    (tmp_path / "amlops.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("AMLOPS_CONFIG", str(tmp_path / "amlops.yaml"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_deploy_command(project: Path, fake: FakeAzure) -> None:
    seed_model(fake, "5", champion_since="2026-11-20T08:00:00.000000Z")
    serve_run_history(fake)

    def endpoint(req: Recorded) -> Reply:
        stored = fake._finish(req.path, req.json())
        stored["properties"]["scoringUri"] = (
            f"https://{stored['name']}.{LOCATION}.inference.ml.azure.com/jobs"
        )
        fake.arm[req.path.lower()] = stored
        return Reply(200, stored)

    fake.on("PUT", r"/batchEndpoints/[^/]+$", endpoint)
    code, output = run("deploy", "--env", "dev")
    assert code == 0, output
    assert f"deployment demand-forecaster-v5 serves {MODEL}:5" in output
    assert "no smoke input" in output
    code, output = run("deploy", "--env", "dev")
    assert code == 0 and "(unchanged)" in output, output


def test_deploy_without_champion_exits_1(project: Path, fake: FakeAzure) -> None:
    seed_model(fake, "1")
    code, output = run("deploy", "--env", "dev")
    assert code == 1
    assert f"error: model '{MODEL}' has no champion in workspace {WS}" in output


def test_unknown_environment_exits_2(project: Path, fake: FakeAzure) -> None:
    code, output = run("deploy", "--env", "prod")
    assert code == 2
    assert "azure.environments: no environment named 'prod' (configured: dev)" in output


def test_components_publish_command(project: Path, fake: FakeAzure) -> None:
    code, output = run("components", "publish", "--env", "dev")
    assert code == 0, output
    assert "2 published, 0 already up to date" in output
    code, output = run("components", "publish", "--env", "dev")
    assert "0 published, 2 already up to date" in output


def test_schedule_commands(project: Path, fake: FakeAzure) -> None:
    seed_model(fake, "5", champion_since="2026-11-20T08:00:00.000000Z")
    code, output = run("schedule", "create", "--env", "dev")
    assert code == 0, output
    assert "scheduled: amlops-monitoring, amlops-training" in output
    code, output = run("schedule", "list", "--env", "dev")
    assert code == 0 and "amlops-monitoring" in output and "0 6 * * 1" in output, output
    code, output = run("schedule", "disable", "--env", "dev", "--which", "training")
    assert code == 0 and "disabled: amlops-training" in output, output


def test_cli_module_does_not_import_the_sdk() -> None:
    code = "import sys, amlops.commands.azure_cmds; print('azure.ai.ml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
