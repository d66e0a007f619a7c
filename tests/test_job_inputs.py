"""Settings → pipeline inputs, one home for every caller and both targets (amlops.job_inputs).

A setting must reach a job the same way whether it runs here or on Azure ML: the local and the Azure inputs of
each pipeline carry the same names and the same values, and differ only in where the data lives. The inputs are
the pipeline's own, and with amlops.yaml's defaults they equal the YAML's defaults — so `az ml job create -f` and
`amlops` start the same job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from amlops.config import Settings
from amlops.errors import UsageError, UserError
from amlops.job_inputs import (
    Target,
    model_reference,
    monitoring_inputs,
    parse_sets,
    scoring_inputs,
    training_inputs,
    with_overrides,
)

REPO = Path(__file__).resolve().parents[1]
# Inputs whose value is where data lives: they differ between targets by design.
DATA = {"raw_file", "raw_folder", "data_uri", "current_data", "model", "data", "labels", "schema"}


def _pipeline_inputs(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "pipelines" / f"{name}.yml").read_text())["inputs"])


def _settings(tmp_path: Path) -> Settings:
    s = Settings(base_dir=REPO)
    s.model_name = "my-model"
    s.monitor.thresholds = {"jensen_shannon_distance": 0.2}
    s.monitor.min_window_rows = 77
    s.gate.require_confident = False
    s.train.params = {"max_iter": 50}
    return s


def _both(tmp_path: Path, which: str) -> tuple[dict[str, str], dict[str, str]]:
    s = _settings(tmp_path)
    data = tmp_path / "data.csv"
    data.write_text("date,price\n2026-01-01,1\n")
    if which == "training":
        return training_inputs(s, str(tmp_path)), training_inputs(s, "azureml:demand:3", Target.azure)
    if which == "monitoring":
        local, _ = monitoring_inputs(s, str(data), model="my-model@champion")
        azure, _ = monitoring_inputs(
            s, None, model="azureml:my-model:3", target=Target.azure, labels="azureml:labels:1"
        )
        local["labels"] = str(data)
        return local, azure
    return scoring_inputs(s, str(data), str(tmp_path), "3"), scoring_inputs(
        s, "azureml:new:1", "azureml:m:3", "3"
    )


@pytest.mark.parametrize("which", ["training", "monitoring", "batch_inference"])
def test_local_and_azure_inputs_differ_only_in_data_locations(which: str, tmp_path: Path) -> None:
    local, azure = _both(tmp_path, which)
    assert set(local) == set(azure)
    same = {k for k in local if k not in DATA}
    assert same, "nothing compared"
    assert {k: local[k] for k in same} == {k: azure[k] for k in same}
    declared = _pipeline_inputs(which)
    assert set(local) <= set(declared), f"inputs the pipeline does not declare: {set(local) - set(declared)}"


@pytest.mark.parametrize("which", ["training", "monitoring", "batch_inference"])
def test_default_settings_give_the_yaml_defaults(which: str, tmp_path: Path) -> None:
    s = Settings(base_dir=REPO)
    data = tmp_path / "d.csv"
    data.write_text("date\n2026-01-01\n")
    if which == "training":
        built = training_inputs(s, str(data))
    elif which == "monitoring":
        built, _ = monitoring_inputs(s, str(data))
    else:
        built = scoring_inputs(s, str(data), str(tmp_path), "")
    declared = _pipeline_inputs(which)
    compared = 0
    for name, value in built.items():
        default = declared[name]
        if name in DATA or name == "git_commit" or isinstance(default, dict):
            continue  # data, and the commit stamped at submission
        if isinstance(default, bool):
            default = str(default).lower()
        assert str(default) == value, f"{which}.yml input {name}: YAML {default!r}, amlops.yaml {value!r}"
        compared += 1
    assert compared >= 2


def test_a_changed_setting_reaches_every_pipeline(tmp_path: Path) -> None:
    local, azure = _both(tmp_path, "training")
    assert local["model_name"] == azure["model_name"] == "my-model"
    assert local["require_confident"] == "false" and local["params"] == "max_iter=50"
    mon, _ = _both(tmp_path, "monitoring")
    assert " " not in mon["thresholds"]  # one argument in the map step's program_arguments
    assert mon["min_window_rows"] == "77" and json.loads(mon["thresholds"]) == {
        "jensen_shannon_distance": 0.2
    }


def test_azure_training_without_data_uses_the_configured_training_data(tmp_path: Path) -> None:
    s = Settings(base_dir=tmp_path)
    inputs = training_inputs(s, None, Target.azure)
    assert inputs["raw_folder"] == inputs["data_uri"] == s.azure.training_data
    with pytest.raises(UsageError, match="no training data"):
        training_inputs(s, None, Target.local)
    s.data.raw = "raw/"  # data.raw wins on both targets (relative to amlops.yaml)
    (tmp_path / "raw").mkdir()
    assert training_inputs(s, None, Target.azure)["raw_folder"] == str(tmp_path / "raw")


def test_monitoring_on_azure_defaults_to_the_configured_folder(tmp_path: Path) -> None:
    s = Settings(base_dir=tmp_path)
    inputs, note = monitoring_inputs(s, None, model="azureml:m:2", target=Target.azure)
    assert inputs["current_data"] == s.azure.monitoring_data and note is None
    with pytest.raises(UsageError, match="--current is required"):
        monitoring_inputs(s, None)
    with pytest.raises(UserError, match="need --target azure"):
        monitoring_inputs(s, "azureml:new:1")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("m@champion", "models:/m@champion"),
        ("m/3", "models:/m/3"),
        ("m:3", "models:/m/3"),
        ("azureml:m:3", "azureml:m:3"),
        ("models:/m/1", "models:/m/1"),
    ],
)
def test_model_references(spec: str, expected: str) -> None:
    assert model_reference(spec) == expected


def test_set_overrides_replace_the_data_and_become_lineage(tmp_path: Path) -> None:
    s = Settings(base_dir=REPO)
    data = tmp_path / "d.csv"
    data.write_text("x\n")
    built = training_inputs(s, str(data))
    merged = with_overrides(built, parse_sets(["inputs.raw_folder=other/", "inputs.seed=9"]))
    assert "raw_file" not in merged and merged["raw_folder"] == merged["data_uri"] == "other/"
    assert merged["seed"] == "9"
    with pytest.raises(UsageError, match="expected inputs"):
        parse_sets(["seed=9"])
