"""`python -m amlops.steps.monitor` on small files, and `amlops monitor` through the local runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from amlops.drift.profile import ReferenceProfile
from amlops.steps import monitor as step

from .conftest import make_frame


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("monitor-data")
    paths = {
        "reference": root / "reference.parquet",
        "drift": root / "drift.parquet",
        "clean": root / "clean.csv",
    }
    make_frame(20_000, seed=1).to_parquet(paths["reference"])
    make_frame(14_000, seed=2, drift_from_day=14).to_parquet(paths["drift"])
    make_frame(14_000, seed=3).to_csv(paths["clean"], index=False)
    return paths


COLUMNS = [
    "--timestamp-column",
    "date",
    "--id-column",
    "row_id",
    "--prediction-column",
    "prediction",
    "--label-column",
    "units_sold",
]


def test_step_names_drift_and_first_window(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "out"
    code = step.main(
        [
            "--current",
            str(files["drift"]),
            "--reference-data",
            str(files["reference"]),
            "--window",
            "weekly",
            *COLUMNS,
            "--output",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "drift" in printed and "x1" in printed and "2024-W03" in printed
    result = json.loads((out / "result.json").read_text())
    assert result["verdict"]["first_drifted_window"] == "2024-W03"
    assert set(result["verdict"]["drifted_features"]) == {"x1", "price", "promo"}
    assert result["verdict"]["performance"]["count"] == 14_000
    assert (out / "report.html").read_text().count("<svg") > 3
    # The profile built on the fly is kept, and used again it gives the same verdict on the clean CSV.
    profile = ReferenceProfile.from_json(out / "reference_profile.json")
    assert "units_sold" not in profile.numeric and "row_id" not in profile.numeric
    assert profile.outputs["target"].name == "units_sold"
    clean_out = tmp_path / "clean"
    code = step.main(
        [
            "--current",
            str(files["clean"]),
            "--reference-profile",
            str(out / "reference_profile.json"),
            "--window",
            "auto",
            *COLUMNS,
            "--output",
            str(clean_out),
        ]
    )
    assert code == 0
    clean = json.loads((clean_out / "result.json").read_text())
    assert clean["verdict"]["status"] == "no_drift"
    assert clean["settings"]["window"] == "weekly"  # auto: the timestamp column exists


def test_model_dir_and_empty_optional_flags(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model folder holding reference_profile.json (as the training step writes it); empty optional
    values (pipeline inputs of "") mean "not set"."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from amlops.drift.profile import build_profile

    model = tmp_path / "model"
    build_profile(pd.read_parquet(files["reference"]), ["x0", "x1"], ["promo"]).to_json(
        model / "reference_profile.json"
    )
    out = tmp_path / "out"
    code = step.main(
        [
            "--current",
            str(files["drift"]),
            "--model-dir",
            str(model),
            "--thresholds",
            "--labels",
            "--window",
            "all",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert set(result["verdict"]["drifted_features"]) == {"x1", "promo"}
    assert result["windows"] == []


def test_bad_input_exits_1_with_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        (
            ["--current", str(tmp_path / "missing.parquet"), "--reference-data", str(files["reference"])],
            "not found",
        ),
        (["--current", str(files["drift"])], "exactly one of"),
        (
            [
                "--current",
                str(files["drift"]),
                "--reference-data",
                str(files["reference"]),
                "--window",
                "weekly",
            ],
            "timestamp column",
        ),
        (["--current", str(files["drift"]), "--reference-profile", str(files["drift"])], "not valid JSON"),
    ]
    for args, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "amlops.steps.monitor", *args, "--output", str(tmp_path / "o")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr


def test_metrics_are_logged_to_mlflow(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "monitor-test")
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
    code = step.main(
        [
            "--current",
            str(files["drift"]),
            "--reference-data",
            str(files["reference"]),
            "--window",
            "weekly",
            *COLUMNS,
            "--output",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("monitor-test")
    assert exp is not None
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.tags["amlops.monitor.status"] == "drift"
    assert run.data.tags["amlops.monitor.first_drifted_window"] == "2024-W03"
    assert run.data.metrics["drift_detected"] == 1.0
    history = client.get_metric_history(run.info.run_id, "x1.normalized_wasserstein_distance")
    assert len(history) == 4 and history[-1].value > 0.1 > history[0].value
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "monitor")}
    assert artifacts == {"monitor/result.json", "monitor/report.html"}


@pytest.mark.slow
def test_amlops_monitor_command(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI runs pipelines/monitoring.yml on the local runner and prints the verdict (exit 0 on drift)."""
    from typer.testing import CliRunner

    from amlops.cli import app

    repo = Path(__file__).resolve().parents[2]
    # Thresholds from the config travel as a JSON text input (with spaces and braces): it must reach the step
    # as one argument. Same values as the defaults, so the verdict below holds.
    (tmp_path / "amlops.yaml").write_text(
        "experiment: t\nmonitor:\n  thresholds:\n"
        "    numeric.normalized_wasserstein_distance: 0.1\n    categorical.jensen_shannon_distance: 0.1\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMLOPS_CONFIG", str(tmp_path / "amlops.yaml"))
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "monitor",
            "--current",
            str(files["drift"]),
            "--reference",
            str(files["reference"]),
            "--pipeline",
            str(repo / "pipelines/monitoring.yml"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "DRIFT" in res.output and "2024-W03" in res.output and "x1" in res.output
    assert (tmp_path / "out" / "report.html").is_file()
    bad = runner.invoke(
        app,
        [
            "monitor",
            "--current",
            str(tmp_path / "nope.parquet"),
            "--reference",
            str(files["reference"]),
            "--pipeline",
            str(repo / "pipelines/monitoring.yml"),
        ],
    )
    assert bad.exit_code != 0 and "not found" in bad.output
