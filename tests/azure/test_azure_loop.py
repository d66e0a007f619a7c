"""The loop on both targets: the same inputs reach the monitoring job, the same policy facts reach `decide()`,
the same decision comes out, and the retrain it starts carries every training setting.

The Azure half runs the real SDK against the fake at the HTTP boundary (the submitted job's JSON is what is
compared); the local half runs `cycle_local` with the runner stopped at its entry (its inputs are captured). Both
monitoring runs return the same result folder, so any difference in the decision comes from the loop itself.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure_helpers import MODEL, seed_model, serve_run_history
from fakeazure import WS, FakeAzure, Recorded, Reply

from amlops import loop
from amlops.config import Settings
from amlops.drift.policy import Decision
from amlops.job_inputs import Target, training_inputs
from amlops.retrain import FolderStore, decisions, ledger
from amlops.runner.local import PipelineRunResult

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
IMPORTANCE = {"price": 0.6, "promotion": 0.3, "temperature": 0.05, "store_type": 0.05}


def _window(i: int, drifted: tuple[str, ...]) -> dict[str, Any]:
    return {
        "window": f"2026-W{i:02d}",
        "start": f"2026-01-{i * 7 - 6:02d}",
        "end": f"2026-01-{i * 7:02d}",
        "row_count": 800,
        "status": "ok",
        "drift_detected": bool(drifted),
        "drifted_features": list(drifted),
        "features": {},
        "data_quality_findings": [],
        "prediction_drift": None,
        "performance": None,
    }


def _result(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """A result.json as the monitoring step writes it (the parts the loop reads filled in)."""
    drifted = sorted({f for w in windows for f in w["drifted_features"]})
    return {
        "schema": "amlops.monitor_result",
        "schema_version": 1,
        "created_at": "2026-11-30T12:00:00+00:00",
        "settings": {
            "window": "weekly",
            "timestamp_column": "date",
            "id_column": "row_id",
            "prediction_column": "prediction",
            "label_column": "units_sold",
            "numeric_metric": "normalized_wasserstein_distance",
            "categorical_metric": "jensen_shannon_distance",
            "min_window_rows": 500,
            "thresholds": {},
        },
        "reference": {
            "row_count": 10_000,
            "created_at": None,
            "numeric_features": ["price", "temperature"],
            "categorical_features": ["promotion", "store_type"],
            "prediction_reference": None,
            "metadata": {},
        },
        "current": {"row_count": 800 * len(windows), "missing_columns": []},
        "verdict": {
            "status": "drift" if drifted else "no_drift",
            "drift_detected": bool(drifted),
            "drifted_features": drifted,
            "first_drifted_window": next((w["window"] for w in windows if w["drifted_features"]), None),
            "drifted_window_count": sum(1 for w in windows if w["drifted_features"]),
            "window_count": len(windows),
            "evaluated_window_count": len(windows),
            "prediction_drift": False,
            "data_quality_findings": [],
            "performance": None,
            "summary": "test",
        },
        "overall": {**_window(0, ()), "window": "overall", "start": None, "end": None},
        "windows": windows,
    }


def _result_folder(root: Path, drifted_late: tuple[str, ...]) -> Path:
    """What the monitoring step writes: result.json and the model's feature importance beside it."""
    folder = root / "result"
    folder.mkdir(parents=True)
    result = _result([_window(1, ()), _window(2, drifted_late), _window(3, drifted_late)])
    (folder / "result.json").write_text(json.dumps(result))
    (folder / "feature_importance.json").write_text(json.dumps(IMPORTANCE))
    return folder


@pytest.fixture
def custom(settings: Settings) -> Settings:
    """Settings a user changed everywhere the loop could forget them."""
    settings.base_dir = REPO  # the repository's pipelines/ and schema
    settings.state_dir = str(settings.base_dir / ".amlops-test-unused")
    settings.model_name = MODEL
    m = settings.monitor
    m.window = "weekly"
    m.thresholds = {"normalized_wasserstein_distance": 0.15}
    m.min_window_rows = 321
    m.numeric_metric = "jensen_shannon_distance"
    m.categorical_metric = "population_stability_index"
    m.label_column = "demand"
    m.chunk_rows = 1234
    settings.gate.metric = "rmse"
    settings.gate.min_improvement = 0.02
    settings.train.seed = 7
    return settings


def _job_inputs(put: Recorded) -> dict[str, Any]:
    return dict(put.json()["properties"]["inputs"])


def _literal(entry: dict[str, Any] | None) -> str | None:
    """A literal input's value as sent; the SDK leaves out empty strings ("" = not given)."""
    if entry is None:
        return ""
    if entry.get("jobInputType") != "literal":
        return None
    value = str(entry["value"])
    # The SDK converts to the YAML input's type: booleans go out as True/False (the steps accept both).
    return value.lower() if value in ("True", "False") else value


def _serve_completed_jobs(fake: FakeAzure) -> None:
    def answer(req: Recorded) -> Reply:
        stored = fake.arm[req.path.lower()]
        stored["properties"]["status"] = "Completed"
        return Reply(200, stored)

    fake.on("GET", rf"/workspaces/{WS}/jobs/[^/]+$", answer)
    serve_run_history(fake, {"monitor": "Completed"})


def _run_azure(
    fake: FakeAzure, settings: Settings, folder: Path, monkeypatch: pytest.MonkeyPatch, tmp: Path, **kw: Any
) -> tuple[loop.CycleOutcome, FolderStore]:
    from azure.ai.ml.operations import JobOperations

    seed_model(fake, "3", champion_since="2026-11-01T10:00:00.000000Z")
    _serve_completed_jobs(fake)

    def download(_self: Any, name: str, download_path: str, output_name: str | None = None, **_: Any) -> None:
        assert output_name == "result"
        shutil.copytree(folder, Path(download_path) / "named-outputs" / "result")

    monkeypatch.setattr(JobOperations, "download", download)
    store = FolderStore(tmp / "azure-ledger")
    outcome = loop.cycle_azure(settings, None, None, None, kw.pop("via", "azure"), now=NOW, store=store)
    return outcome, store


def _run_local(
    settings: Settings, folder: Path, monkeypatch: pytest.MonkeyPatch, tmp: Path
) -> tuple[dict[str, str], Decision]:
    captured: dict[str, str] = {}
    model_dir = tmp / "model"
    model_dir.mkdir()
    monkeypatch.setattr(loop, "champion", lambda _s: loop.Champion("3", model_dir))

    def run_pipeline(path: Path, inputs: dict[str, str], *_a: Any, **_kw: Any) -> PipelineRunResult:
        assert Path(path).name == "monitoring.yml"
        captured.update(inputs)
        return PipelineRunResult("monitoring", "r1", tmp, "completed", outputs={"result": folder})

    monkeypatch.setattr("amlops.runner.local.run_pipeline", run_pipeline)
    current = tmp / "current.parquet"
    import pandas as pd

    pd.DataFrame({"date": pd.to_datetime(["2026-01-05"]), "price": [1.0]}).to_parquet(current)
    outcome, _history = loop.cycle_local(
        settings, current, None, None, now=NOW, store=FolderStore(tmp / "local-ledger")
    )
    return captured, outcome.decision


def test_local_and_azure_loops_send_the_same_inputs_and_decide_the_same(
    fake: FakeAzure, custom: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Drift only on a feature that carries 5 % of the importance: with the importance the policy stays calm;
    # without it (the Azure loop used to pass none) every drifted window alarms and a retrain starts.
    folder = _result_folder(tmp_path / "monitor-output", ("store_type",))
    local_inputs, local_decision = _run_local(custom, folder, monkeypatch, tmp_path)
    azure, _store = _run_azure(fake, custom, folder, monkeypatch, tmp_path)

    [put] = [r for r in fake.calls("PUT", rf"/workspaces/{WS}/jobs/[^/]+$")]
    sent = _job_inputs(put)
    data_inputs = {"current_data", "model"}
    assert set(sent) == set(local_inputs)
    for name, value in local_inputs.items():
        if name not in data_inputs:
            assert _literal(sent.get(name)) == value, name
    assert sent["model"]["uri"].endswith(f"/models/{MODEL}/versions/3")
    assert sent["current_data"]["uri"] == custom.azure.monitoring_data
    # The settings the user changed really travelled (a YAML default would not say 321).
    assert local_inputs["min_window_rows"] == "321" and local_inputs["label_column"] == "demand"

    assert local_decision.action == azure.decision.action == "none"
    assert local_decision.reasons == azure.decision.reasons
    assert (
        local_decision.weighted_drift
        == azure.decision.weighted_drift
        == {
            "2026-W01": 0.0,
            "2026-W02": pytest.approx(0.05),
            "2026-W03": pytest.approx(0.05),
        }
    )


def test_azure_loop_retrains_with_every_training_setting(
    fake: FakeAzure, custom: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _result_folder(tmp_path / "monitor-output", ("price", "promotion"))
    outcome, store = _run_azure(fake, custom, folder, monkeypatch, tmp_path)

    assert outcome.decision.retrain
    assert outcome.trigger is not None and outcome.trigger.status == "started"
    puts = fake.calls("PUT", rf"/workspaces/{WS}/jobs/[^/]+$")
    assert len(puts) == 2  # monitoring, then training
    sent = _job_inputs(puts[1])
    expected = training_inputs(custom, None, Target.azure)
    assert expected["raw_folder"] == custom.azure.training_data  # no --data: the configured training data
    for name, value in expected.items():
        if name in {"raw_folder", "schema", "git_commit"}:  # data; the commit is stamped at submission
            continue
        assert _literal(sent.get(name)) == value, name
    assert sent["raw_folder"]["uri"] == custom.azure.training_data
    assert _literal(sent["git_commit"])
    assert _literal(sent["model_name"]) == MODEL and _literal(sent["metric"]) == "rmse"
    # The ledger and the decision log record it; the same decision again starts nothing.
    [entry] = ledger(store)
    assert entry["status"] == "completed" and entry["training_job"] == puts[1].path.rsplit("/", 1)[-1]
    assert [d["action"] for d in decisions(store)] == ["retrain"]
    # Another runner on the same ledger, an hour later: the cooldown holds...
    later = NOW.replace(hour=13)
    again = loop.cycle_azure(custom, None, None, None, "azure", now=later, store=store)
    assert not again.decision.retrain and "cooldown" in " ".join(again.decision.reasons)
    # ... and without a cooldown the same windows' dedupe key starts nothing either.
    custom.policy.cooldown_hours = 0
    again = loop.cycle_azure(custom, None, None, None, "azure", now=later, store=store)
    assert again.trigger is not None and again.trigger.status == "duplicate"
    assert len(fake.calls("PUT", rf"/workspaces/{WS}/jobs/training-[^/]+$")) == 1


def test_azure_loop_hands_over_to_github(
    fake: FakeAzure, custom: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = _result_folder(tmp_path / "monitor-output", ("price", "promotion"))
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    outcome, store = _run_azure(fake, custom, folder, monkeypatch, tmp_path, via="github")

    assert outcome.decision.retrain
    assert len(fake.calls("PUT", rf"/workspaces/{WS}/jobs/[^/]+$")) == 1  # no training job from here
    lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert lines["retrain"] == "true" and lines["dedupe_key"] == outcome.decision.dedupe_key
    assert [d["action"] for d in decisions(store)] == ["retrain"]  # recorded where every runner sees it


def test_the_azure_ledger_lives_in_the_workspace_datastore(fake: FakeAzure, settings: Settings) -> None:
    from fakeazure import WS_PATH

    from amlops.retrain import BlobStore, store_for

    default = fake.arm[f"{WS_PATH}/datastores/workspaceblobstore".lower()]
    fake.on("GET", r"/datastores$", Reply(200, {"value": [default]}))  # the list get_default() filters

    store = store_for(settings, Target.azure)
    assert isinstance(store, BlobStore)
    assert store.where == (
        "abfs://azureml-blobstore-11111111-2222-3333-4444-555555555555@stamlopsdev.dfs.core.windows.net"
        "/amlops/state/retrain"
    )
    assert store.container.account_name == "stamlopsdev"
    settings.policy.ledger = "abfs://shared@otheraccount.dfs.core.windows.net/team/ledger"
    assert store_for(settings, Target.azure).where == settings.policy.ledger


def test_loop_command_json_on_azure(
    fake: FakeAzure, custom: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`amlops loop --once --target azure --json` as the monitor workflow runs it: the decision on stdout."""
    import yaml
    from azure.ai.ml.operations import JobOperations
    from typer.testing import CliRunner

    from amlops.cli import app

    folder = _result_folder(tmp_path / "monitor-output", ("store_type",))
    seed_model(fake, "3", champion_since="2026-11-01T10:00:00.000000Z")
    _serve_completed_jobs(fake)
    monkeypatch.setattr(
        JobOperations,
        "download",
        lambda _self, name, download_path, output_name=None, **_: shutil.copytree(
            folder, Path(download_path) / "result"
        ),
    )
    config = {
        "model_name": MODEL,
        "azure": custom.azure.model_dump(exclude={"environments"}),
        "policy": {"ledger": str(tmp_path / "ledger")},  # a folder instead of the workspace datastore
    }
    (tmp_path / "amlops.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMLOPS_CONFIG", str(tmp_path / "amlops.yaml"))
    result = CliRunner().invoke(app, ["loop", "--once", "--target", "azure", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["champion"] == "3" and document["decision"]["action"] == "none"
    assert document["monitoring_job"].startswith("monitoring-") and document["retrain"] is None
    assert decisions(FolderStore(tmp_path / "ledger"))[0]["monitoring_job"] == document["monitoring_job"]
