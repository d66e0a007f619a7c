"""The training steps and the registry conventions against an MLflow tracking server (REST, proxied artifacts
on Azurite under `make test`), as on a shared team server."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from training_helpers import FAST_PARAMS, HOLDOUT_DAYS, run_steps

from amlops import registry
from amlops.config import Settings

pytestmark = pytest.mark.integration

WEAK = {"max_iter": 3}


def test_pipeline_steps_and_roles_over_rest(
    mlflow_server_uri: str, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        base_dir=tmp_path,
        model_name=f"server-{suffix}",
        experiment=f"server-{suffix}",
        mlflow={"tracking_uri": mlflow_server_uri},
    )
    settings.train.params = dict(FAST_PARAMS)
    settings.train.holdout_days = HOLDOUT_DAYS
    settings.gate.bootstrap_samples = 200
    client = MlflowClient(mlflow_server_uri, registry_uri=mlflow_server_uri)
    client.create_experiment(settings.experiment)  # the server chooses the (proxied) artifact location
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_server_uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", settings.experiment)
    monkeypatch.setenv("AMLOPS_GIT_COMMIT", "server01")
    name = settings.model_name

    # A missing alias over REST is "not found", not "no alias API": no champion, no fallback.
    assert registry.resolve_champion(client, name) is None
    first = run_steps(settings, raw_csv, tmp_path / "a", monkeypatch, run_id=f"a-{suffix}", params=WEAK)
    assert first.json(first.registration, "registration.json")["is_champion"]
    second = run_steps(settings, raw_csv, tmp_path / "b", monkeypatch, run_id=f"b-{suffix}")
    assert second.json(second.verdict, "verdict.json")["passed"]  # the champion was downloaded and scored
    assert str(client.get_model_version_by_alias(name, "champion").version) == "2"
    assert registry.roles_of(client, name) == {"champion": "2", "challenger": "2"}

    profile = registry.download_reference_profile(
        f"models:/{name}@champion", client, dst=tmp_path / "profile"
    )
    assert profile.name == "reference_profile.json" and profile.stat().st_size > 0

    back = registry.rollback(client, name, reason="server test", actor="ci")
    assert back.version == "1" and registry.resolve_champion(client, name)[0] == "1"  # type: ignore[index]
    served = registry.served_at(client, name, "now")
    assert served is not None and (served.version, served.git_commit) == ("1", "server01")
