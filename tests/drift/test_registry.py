"""The metric registry is the one place a drift metric is declared: the monitor, the thresholds, the settings,
the report and the CLI summary all take a newly registered metric, and refuse a name that is not registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from amlops.config import ConfigError, MonitorSettings, load_settings
from amlops.drift import metrics as M
from amlops.drift.monitor import MonitorError, MonitorOptions, run_monitor
from amlops.drift.profile import ReferenceProfile
from amlops.drift.report import render_html


def _example_distance(w: M.WindowCounts) -> M.Computed:
    p = w.reference / w.reference.sum()
    q = w.current / w.current.sum()
    return M.Computed(float(np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum())))


EXAMPLE = M.DriftMetric(
    "example_distance",
    {"numeric": 0.1, "categorical": 0.05},
    p_value=False,
    label="Example (test)",
    definition="Hellinger distance of the shares on the Jensen-Shannon bins (an example metric).",
    compute=_example_distance,
)


@pytest.fixture
def with_example_distance(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a newcomer's one-entry change to DRIFT_METRICS does, without editing the module."""
    monkeypatch.setattr(M, "DRIFT_METRICS", (*M.DRIFT_METRICS, EXAMPLE))


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.mark.usefixtures("with_example_distance")
def test_a_registered_metric_reaches_every_reader(
    drifted_frame: pd.DataFrame,
    reference_profile: ReferenceProfile,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from amlops.commands.monitor import print_summary

    # Settings accept it as a deciding metric and as a threshold name.
    settings = MonitorSettings(numeric_metric="example_distance", thresholds={"example_distance": 0.12})
    options = MonitorOptions(
        window="weekly",
        timestamp_column="date",
        numeric_metric=settings.numeric_metric,
        thresholds=settings.thresholds,
    )
    result = run_monitor([_table(drifted_frame)], reference_profile, options)
    # The monitor computes it for both kinds, decides with it, and records its thresholds.
    x1, promo = result.overall.features["x1"], result.overall.features["promo"]
    assert x1.deciding_metric == "example_distance" and x1.drifted
    assert list(x1.metrics)[-1] == "example_distance" and "example_distance" in promo.metrics
    assert promo.deciding_metric == "jensen_shannon_distance"
    assert result.settings.thresholds["numeric.example_distance"] == 0.12
    assert result.settings.thresholds["categorical.example_distance"] == 0.12
    assert 0 < x1.deciding.value < 1 and x1.deciding.threshold == 0.12
    # The report shows its column and its definition, the CLI its label.
    page = render_html(result)
    assert "<th>Example (test)</th>" in page and EXAMPLE.definition in page
    print_summary(result, tmp_path / "report.html")
    assert "Example (test)" in capsys.readouterr().out


def test_an_unregistered_name_is_refused_everywhere(
    reference_profile: ReferenceProfile, clean_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """Without the registry entry (the planted fault) each reader refuses the name with one clear line."""
    with pytest.raises(ValueError, match="numeric metric 'example_distance': use one of"):
        MonitorSettings(numeric_metric="example_distance")
    with pytest.raises(ValueError, match="unknown metric name"):
        MonitorSettings(thresholds={"numeric.example_distance": 0.1})
    with pytest.raises(MonitorError, match="use one of normalized_wasserstein_distance"):
        run_monitor(
            [_table(clean_frame)], reference_profile, MonitorOptions(numeric_metric="example_distance")
        )
    config = tmp_path / "amlops.yaml"
    config.write_text("monitor:\n  categorical_metric: two_sample_kolmogorov_smirnov_test\n")
    with pytest.raises(ConfigError, match=r"monitor\.categorical_metric: Value error, categorical metric"):
        load_settings(config, environ={})


def test_registry_declares_aml_names_and_defaults() -> None:
    """Names and default thresholds as Azure ML model monitoring states them (and PSI 0.2, p-values 0.05); a
    metric added later adds keys, it does not change these."""
    aml = {
        "numeric.normalized_wasserstein_distance": 0.1,
        "numeric.jensen_shannon_distance": 0.1,
        "numeric.population_stability_index": 0.2,
        "numeric.two_sample_kolmogorov_smirnov_test": 0.05,
        "categorical.jensen_shannon_distance": 0.1,
        "categorical.population_stability_index": 0.2,
        "categorical.pearsons_chi_squared_test": 0.05,
        "null_value_rate": 0.01,
        "data_type_error_rate": 0.0,
        "out_of_bounds_rate": 0.01,
    }
    assert aml.items() <= M.default_thresholds().items()
    assert {"two_sample_kolmogorov_smirnov_test", "pearsons_chi_squared_test"} <= {
        m.name for m in M.DRIFT_METRICS if m.p_value
    }
    for kind, name in M.DEFAULT_DECIDING.items():
        assert not M.drift_metric(name).p_value and name in M.metric_names(kind)
    assert MonitorSettings().numeric_metric == M.DEFAULT_DECIDING["numeric"]
    assert MonitorSettings().categorical_metric == M.DEFAULT_DECIDING["categorical"]


def test_mape_counts_the_same_rows_in_training_the_gate_and_the_monitor() -> None:
    """One MAPE definition (non-zero actuals, by their size): train's metrics, the gate's per-day sums and the
    monitor's streaming sums agree on data with zero and negative actuals."""
    from amlops.drift.monitor import _Performance
    from amlops.steps.evaluate import _per_day_sums, metrics_of
    from amlops.steps.train import regression_metrics

    rng = np.random.default_rng(7)
    y = np.r_[rng.normal(5, 3, 400), np.zeros(50), -np.abs(rng.normal(2, 1, 50))]
    pred = y + rng.normal(0, 1, y.size)
    mask = y != 0
    expected = float(np.mean(np.abs(pred - y)[mask] / np.abs(y[mask])))
    assert regression_metrics(y, pred)["mape"] == pytest.approx(expected, rel=1e-12)
    day = np.arange(y.size) % 7
    assert metrics_of(_per_day_sums(y, pred, day, 7))["mape"] == pytest.approx(expected, rel=1e-12)
    perf = _Performance()
    perf.update(y, pred, day, np.arange(7))
    assert perf.sums(slice(None)).result()["mape"] == pytest.approx(expected, rel=1e-12)
    # All-zero actuals: no MAPE rather than a division by zero.
    assert np.isnan(regression_metrics(np.zeros(3), np.ones(3))["mape"])
