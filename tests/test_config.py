"""One validated settings model: file + AMLOPS_* overrides, one clear line naming the key on error."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "amlops.yaml"
    path.write_text(text)
    return path


def test_defaults_use_sqlite_under_the_state_folder(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "experiment: e1\n"), environ={})
    assert s.experiment == "e1"
    assert s.tracking_uri == f"sqlite:///{tmp_path / '.amlops' / 'mlflow.db'}"
    assert s.runs_path == tmp_path / "runs"
    assert s.artifact_root == str(tmp_path / ".amlops" / "mlartifacts")


def test_environment_overrides_nested_keys_with_types(tmp_path: Path) -> None:
    path = write(tmp_path, "gate:\n  min_improvement: 0.01\n")
    s = load_settings(
        path,
        environ={
            "AMLOPS_GATE__MIN_IMPROVEMENT": "0.05",
            "AMLOPS_GATE__AUTO_PROMOTE": "false",
            "AMLOPS_AZURE__WORKSPACE": "mlw-dev",
            "UNRELATED": "x",
        },
    )
    assert s.gate.min_improvement == 0.05
    assert s.gate.auto_promote is False
    assert s.azure.workspace == "mlw-dev"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("gate:\n  min_improvement: lots\n", {}, "gate.min_improvement: Input should be a valid number"),
        ("gate:\n  minimum: 1\n", {}, "gate.minimum: unknown key"),
        ("experiment: ''\n", {}, "experiment: Value error, must not be empty"),
        ("- a\n- b\n", {}, "expected a mapping of settings at the top level"),
        ("gate: [1,\n", {}, "not valid YAML"),
        (
            "",
            {"AMLOPS_POLICY__MIN_ROWS": "-3"},
            "(with AMLOPS_* overrides): policy.min_rows: Input should be greater",
        ),
    ],
)
def test_invalid_config_gives_one_line_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "\n" not in message


def test_azure_environment_merges_over_base(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "azure:\n  subscription_id: sub\n  compute: base\n"
        "  environments:\n    prod: {workspace: mlw-prod, compute: big}\n",
    )
    s = load_settings(path, environ={})
    prod = s.azure_for("prod")
    assert (prod.subscription_id, prod.workspace, prod.compute) == ("sub", "mlw-prod", "big")
    with pytest.raises(ConfigError, match="no environment named 'dev' \\(configured: prod\\)"):
        s.azure_for("dev")


def test_repo_config_file_is_valid(repo: Path) -> None:
    s = load_settings(repo / "amlops.yaml", environ={})
    assert s.model_name


def test_pipelines_next_to_the_config_win_over_the_checkout(tmp_path: Path, repo: Path) -> None:
    """`amlops train/score/monitor` and the loop find pipelines the same way: the project's own copy first (a
    customised training.yml), else the one shipped with this checkout; a missing one is one line naming it."""
    s = load_settings(write(tmp_path, "experiment: e1\n"), environ={})
    assert s.pipeline_file("training") == (repo / "pipelines" / "training.yml").resolve()
    own = tmp_path / "pipelines" / "training.yml"
    own.parent.mkdir()
    own.write_text("type: pipeline\n")
    assert s.pipeline_file("training") == own.resolve()
    assert s.pipeline_file("training.yml") == own.resolve()
    with pytest.raises(ConfigError, match=r"pipelines/nope\.yml not found next to"):
        s.pipeline_file("nope")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "monitor:\n  window: fortnightly\n",
            "monitor.window: Value error, window 'fortnightly': use all, daily",
        ),
        (
            "monitor:\n  numeric_metric: psi\n",
            "monitor.numeric_metric: Value error, numeric metric 'psi': use one",
        ),
        (
            "monitor:\n  thresholds: {wasserstein: 0.2}\n",
            "monitor.thresholds: Value error, unknown metric name(s)",
        ),
        ("gate:\n  metric: r2\n", "gate.metric: Input should be 'mae', 'rmse' or 'mape'"),
        (
            "gate:\n  bootstrap_samples: 10\n",
            "gate.bootstrap_samples: Input should be greater than or equal to 50",
        ),
    ],
)
def test_monitor_and_gate_values_are_checked_when_the_file_is_read(
    tmp_path: Path, text: str, expected: str
) -> None:
    """A wrong metric, window or threshold name fails at load time, not in a pipeline step an hour later."""
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ={})
    assert expected in str(info.value)


def test_monitor_values_the_steps_accept_are_accepted(tmp_path: Path) -> None:
    text = (
        "monitor:\n  window: 5000 rows\n  categorical_metric: pearsons_chi_squared_test\n"
        "  thresholds: {numeric.population_stability_index: 0.25, null_value_rate: 0.02}\n"
    )
    s = load_settings(write(tmp_path, text), environ={})
    assert s.monitor.window == "5000 rows" and s.monitor.categorical_metric == "pearsons_chi_squared_test"
    assert s.monitor.numeric_metric == "normalized_wasserstein_distance"
    assert load_settings(write(tmp_path, "monitor:\n  window: auto\n"), environ={}).monitor.window == "auto"
