"""The training steps end to end in-process: deterministic training, the gate, registration with lineage."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from training_helpers import SCHEMA, make_tracked, run_steps

from amlops import registry
from amlops.config import Settings
from amlops.data.io import write_table
from amlops.data.schema import load_schema
from amlops.data.snapshot import read_snapshot
from amlops.data.split import split_holdout
from amlops.steps import evaluate as evaluate_step
from amlops.steps import register as register_step
from amlops.steps.evaluate import evaluate, predict
from amlops.steps.prep import prep
from amlops.steps.train import parse_params, train
from amlops.tracking import mlflow_env

WEAK = {"max_iter": 3}


def holdout_predictions(model: Path, snapshot: Path, holdout_days: int) -> np.ndarray:
    schema = load_schema(SCHEMA)
    df, _ = read_snapshot(snapshot, schema)
    _, holdout, _ = split_holdout(df, schema.date_column, holdout_days)
    return predict(mlflow.pyfunc.load_model(str(model)), holdout, schema)


@dataclass
class TrainedTwice:
    settings: Settings
    root: Path
    runs: list[tuple[Path, dict[str, Any], dict[str, Any]]]


@pytest.fixture(scope="module")
def trained_twice(
    tmp_path_factory: pytest.TempPathFactory, store_template: Path, demand_df: pd.DataFrame
) -> Iterator[TrainedTwice]:
    """The same data, configuration and seed trained twice (shared by the tests below: training is the slow
    part)."""
    root = tmp_path_factory.mktemp("trained-twice")
    with pytest.MonkeyPatch.context() as mp:
        settings = make_tracked(root, store_template, mp)
        raw = write_table(demand_df, root / "raw.csv")
        runs = []
        for i in (1, 2):
            out = root / f"run{i}"
            manifest = prep(raw, SCHEMA, out / "snapshot", out / "quarantine", data_uri="azureml:demand:3")
            info = train(
                out / "snapshot",
                SCHEMA,
                out / "model",
                out / "info",
                seed=42,
                holdout_days=settings.train.holdout_days,
                params=settings.train.params,
                data_uri="azureml:demand:3",
            )
            runs.append((out, manifest, info))
        yield TrainedTwice(settings, root, runs)


def test_training_twice_gives_identical_predictions(trained_twice: TrainedTwice) -> None:
    settings = trained_twice.settings
    (a, ma, ia), (b, mb, ib) = trained_twice.runs
    assert ma["digest"] == mb["digest"]
    assert ia["run_id"] != ib["run_id"]  # two MLflow runs ...
    assert ia["metrics"] == ib["metrics"]  # ... with the same numbers
    pa = holdout_predictions(a / "model", a / "snapshot", settings.train.holdout_days)
    pb = holdout_predictions(b / "model", b / "snapshot", settings.train.holdout_days)
    assert len(pa) > 0 and np.array_equal(pa, pb)
    # another seed (with column subsampling, so that the seed matters) is another model: the test can fail
    with pytest.MonkeyPatch.context() as mp:
        for key, value in mlflow_env(settings).items():
            mp.setenv(key, value)
        root = trained_twice.root
        train(
            a / "snapshot",
            SCHEMA,
            root / "m3",
            root / "i3",
            seed=7,
            holdout_days=settings.train.holdout_days,
            params={**settings.train.params, "max_features": 0.5},
        )
    pc = holdout_predictions(root / "m3", a / "snapshot", settings.train.holdout_days)
    assert not np.array_equal(pa, pc)


def test_the_snapshot_digest_is_about_content_not_format(demand_df: pd.DataFrame, tmp_path: Path) -> None:
    csv = write_table(demand_df, tmp_path / "a.csv")
    m1 = prep(csv, SCHEMA, tmp_path / "s1", tmp_path / "q1")
    parquet = write_table(demand_df, tmp_path / "b.parquet")
    m2 = prep(parquet, SCHEMA, tmp_path / "s2", tmp_path / "q2")
    assert m1["digest"] == m2["digest"] and m1["digest"].startswith("sha256:")
    changed = demand_df.copy()
    changed.loc[5, "units_sold"] += 1
    m3 = prep(write_table(changed, tmp_path / "c.csv"), SCHEMA, tmp_path / "s3", tmp_path / "q3")
    assert m3["digest"] != m1["digest"]


def test_the_logged_run_and_model(trained_twice: TrainedTwice) -> None:
    settings = trained_twice.settings
    out, _, info = trained_twice.runs[0]
    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    run = client.get_run(info["run_id"])
    assert run.data.params["seed"] == "42" and run.data.params["model.max_iter"] == "60"
    assert {"holdout_mae", "holdout_rmse", "holdout_mape", "train_mae"} <= set(run.data.metrics)
    assert run.data.tags["data.digest"] == info["data_digest"] and run.data.tags["git.commit"] == "c0ffee0"
    assert run.inputs is not None
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.digest == info["data_digest"].split(":")[1][:32]
    assert json.loads(dataset.dataset.source) == {"uri": "azureml:demand:3"}
    # the model folder: MLflow model + reference profile + feature importance, logged as the run's `model`
    files = {p.name for p in (out / "model").iterdir()}
    assert {"MLmodel", "reference_profile.json", "feature_importance.json", "input_example.json"} <= files
    logged = {a.path for a in client.list_artifacts(info["run_id"], "model")}
    assert "model/reference_profile.json" in logged and "model/MLmodel" in logged
    requirements = (out / "model" / "requirements.txt").read_text().split()
    assert all("==" in r for r in requirements) and any(r.startswith("scikit-learn==") for r in requirements)
    profile = json.loads((out / "model" / "reference_profile.json").read_text())
    assert set(profile["numeric"]) == {"price", "promotion", "temperature", "holiday"}
    assert "store_type" in profile["categorical"] and "prediction" in profile["outputs"]
    assert set(profile["metadata"]["feature_importance"]) >= {"price", "store_id", "date"}
    model = mlflow.pyfunc.load_model(str(out / "model"))
    assert model.metadata.get_input_schema().input_names()[0] == "date"


def test_the_model_loads_without_amlops(trained_twice: TrainedTwice) -> None:
    """Scoring environments (an AML batch endpoint) have the model's pip requirements, not amlops."""
    out = trained_twice.runs[0][0]
    code = f"""
import builtins, sys
real = builtins.__import__
def guard(name, *a, **k):
    if name == "amlops" or name.startswith("amlops."):
        raise ImportError("amlops is not installed here")
    return real(name, *a, **k)
builtins.__import__ = guard
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model({str(out / "model")!r})
rows = pd.read_parquet({str(out / "snapshot" / "data.parquet")!r}).head(5)
print(len(model.predict(rows)))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "5"


def test_champion_challenger_sequence(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = tracked.model_name
    # 1. No champion yet: absolute thresholds only -> the first model becomes champion.
    first = run_steps(tracked, raw_csv, tmp_path / "r1", monkeypatch, run_id="run-1", params=WEAK)
    v1 = first.json(first.verdict, "verdict.json")
    assert v1["passed"] and v1["champion"] is None and "no champion" in v1["notes"][0]
    assert registry.resolve_champion(tracked, name) == ("1", f"models:/{name}/1")

    # 2. A clearly better challenger: passes on the margin and on the interval, becomes champion.
    second = run_steps(tracked, raw_csv, tmp_path / "r2", monkeypatch, run_id="run-2")
    v2 = second.json(second.verdict, "verdict.json")
    assert v2["passed"], v2["reasons"]
    assert v2["champion"]["version"] == "1" and v2["improvement"] > 0.05
    assert 0 < v2["interval"]["low"] <= v2["improvement"] <= v2["interval"]["high"]
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "2"}

    # 3. A worse challenger: registered, made challenger, NOT promoted.
    third = run_steps(tracked, raw_csv, tmp_path / "r3", monkeypatch, run_id="run-3", params=WEAK)
    v3 = third.json(third.verdict, "verdict.json")
    assert not v3["passed"] and "does not beat champion v2" in v3["reasons"][0]
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "3"}
    reg = third.json(third.registration, "registration.json")
    assert reg["version"] == "3" and not reg["promoted"] and not reg["is_champion"]

    # Lineage on every version; one promotion event per promoted version.
    client = MlflowClient(tracked.tracking_uri, registry_uri=tracked.tracking_uri)
    tags = client.get_model_version(name, "3").tags
    assert set(registry.LINEAGE_TAGS) | set(registry.GATE_TAGS) <= set(tags)
    assert (
        tags["pipeline.run_id"] == "run-3"
        and tags["parent.version"] == "2"
        and tags["gate.passed"] == "false"
    )
    assert tags["git.commit"] == "c0ffee0" and tags["data.digest"].startswith("sha256:")
    assert tags["config.digest"].startswith("sha256:") and tags["registration"] == "complete"
    assert float(tags["gate.challenger"]) > float(tags["gate.champion"])
    # same training and gate configuration -> same config digest; other parameters -> another one
    assert client.get_model_version(name, "1").tags["config.digest"] == tags["config.digest"]
    assert client.get_model_version(name, "2").tags["config.digest"] != tags["config.digest"]
    events = registry.history(tracked, name)
    assert [(e.version, e.previous, e.actor) for e in events] == [
        ("1", None, "pipeline:run-1"),
        ("2", "1", "pipeline:run-2"),
    ]
    served = registry.served_at(tracked, name, "now")
    assert served is not None and served.version == "2"
    assert (served.data_digest, served.git_commit) == (tags["data.digest"], "c0ffee0")
    # The verdict also travels with the training run.
    run_id = third.json(third.run_info, "run_info.json")["run_id"]
    assert client.download_artifacts(run_id, "gate/verdict.json", str(tmp_path / "dl"))

    # 4. Rerunning the registration of pipeline run 3 is a no-op: no second version, no event.
    register_step.register(
        third.run_info, third.verdict, third.snapshot, tmp_path / "again", model_name=name, auto_promote=True
    )
    assert len(registry.list_versions(tracked, name)) == 3
    assert len(registry.history(tracked, name)) == 2


def test_gate_thresholds_auto_promote_and_fail_closed(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = tracked.model_name
    strict = run_steps(tracked, raw_csv, tmp_path / "a", monkeypatch, run_id="a", max_mae=0.01)
    verdict = strict.json(strict.verdict, "verdict.json")
    assert not verdict["passed"] and "above max_mae 0.01" in verdict["reasons"][0]
    assert registry.resolve_champion(tracked, name) is None  # nothing promoted on a failed gate

    manual = run_steps(tracked, raw_csv, tmp_path / "b", monkeypatch, run_id="b", auto_promote=False)
    assert manual.json(manual.verdict, "verdict.json")["passed"]
    assert registry.roles_of(tracked, name) == {"challenger": "2"}  # passed, but promotion is manual

    registry.promote(tracked, name, 2, reason="reviewed", actor="alice")
    # A champion that cannot score the holdout: the comparison is impossible, so the gate fails (closed).
    client = MlflowClient(tracked.tracking_uri, registry_uri=tracked.tracking_uri)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "MLmodel").write_text("flavors: {}\n")
    mv = client.create_model_version(name, source=str(broken))
    registry.promote(tracked, name, mv.version, reason="test", actor="test")
    out = tmp_path / "verdict"
    result = evaluate(
        manual.model,
        manual.snapshot,
        SCHEMA,
        out,
        model_name=name,
        bootstrap_samples=100,
        holdout_days=tracked.train.holdout_days,
    )
    assert (
        not result["passed"] and f"champion v{mv.version} could not score the holdout" in result["reasons"][0]
    )


def test_same_model_is_not_an_improvement_and_the_interval_is_seeded(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_steps(tracked, raw_csv, tmp_path / "a", monkeypatch, run_id="a")
    kwargs = dict(
        model_name=tracked.model_name,
        bootstrap_samples=200,
        seed=3,
        holdout_days=tracked.train.holdout_days,
        require_confident=False,
    )
    v1 = evaluate(first.model, first.snapshot, SCHEMA, tmp_path / "v1", **kwargs)  # type: ignore[arg-type]
    v2 = evaluate(first.model, first.snapshot, SCHEMA, tmp_path / "v2", **kwargs)  # type: ignore[arg-type]
    assert not v1["passed"] and v1["improvement"] == 0.0 and "does not beat" in v1["reasons"][0]
    assert v1["interval"] == v2["interval"]


def test_bootstrap_interval_is_over_days() -> None:
    days = np.repeat(np.arange(20), 10)
    y = np.full(200, 10.0)
    good, bad = y + 1.0, y + 2.0
    s_good = evaluate_step._per_day_sums(y, good, days, 20)
    s_bad = evaluate_step._per_day_sums(y, bad, days, 20)
    interval = evaluate_step.bootstrap_interval(s_bad, s_good, "mae", 500, 0.9, seed=0)
    assert interval["low"] == pytest.approx(0.5) and interval["high"] == pytest.approx(0.5)
    assert interval["prob_better"] == 1.0
    assert evaluate_step.metrics_of(s_good) == pytest.approx({"mae": 1.0, "rmse": 1.0, "mape": 0.1})


def test_params_parsing() -> None:
    assert parse_params("") == {} and parse_params("{}") == {}
    assert parse_params("max_iter=200,learning_rate=0.05,loss=absolute_error") == {
        "max_iter": 200,
        "learning_rate": 0.05,
        "loss": "absolute_error",
    }
    assert parse_params('{"max_iter": 5}') == {"max_iter": 5}
    with pytest.raises(ValueError, match="expected k=v"):
        parse_params("max_iter")


def test_steps_refuse_mixed_inputs(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = run_steps(tracked, raw_csv, tmp_path / "a", monkeypatch, run_id="a", register=False)
    other = tmp_path / "other"
    changed = pd.read_csv(raw_csv)
    changed.loc[0, "units_sold"] += 3
    prep(write_table(changed, tmp_path / "o.csv"), SCHEMA, other, tmp_path / "oq")
    with pytest.raises(register_step.RegisterError, match="disagree on the data digest"):
        register_step.register(r.run_info, r.verdict, other, tmp_path / "reg", model_name=tracked.model_name)
    monkeypatch.delenv("AZUREML_ROOT_RUN_ID")
    with pytest.raises(register_step.RegisterError, match="no pipeline run id"):
        register_step.register(
            r.run_info, r.verdict, r.snapshot, tmp_path / "reg", model_name=tracked.model_name
        )
    assert registry.list_versions(tracked, tracked.model_name) == []
