"""Multivariate drift: a change in how two features move together, with every marginal unchanged, is seen by the
PCA reconstruction error and by none of the per-feature metrics; undrifted windows do not alarm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from amlops.drift.monitor import MonitorOptions, multivariate_extra, run_monitor
from amlops.drift.multivariate import PCADrift, fit_pca
from amlops.drift.profile import build_profile
from amlops.drift.report import render_html

NUMERIC = ["a", "b", "c"]


def make(n: int, seed: int, rho: float = 0.9) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    b = rho * a + np.sqrt(1 - rho * rho) * rng.normal(0, 1, n)  # N(0, 1) whatever rho is
    return pd.DataFrame({"a": a, "b": b, "c": rng.normal(0, 1, n)})


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return make(20_000, seed=1)


def monitor(reference: pd.DataFrame, current: pd.DataFrame, pca: PCADrift) -> list:  # type: ignore[type-arg]
    profile = build_profile(reference, NUMERIC, [])
    options = MonitorOptions(window="5000", min_window_rows=500)
    table = pa.Table.from_pandas(current, preserve_index=False)
    result = run_monitor(table.to_batches(4_000), profile, options, extras=[multivariate_extra(pca)])
    return result.windows


def test_a_flipped_correlation_is_seen_only_by_the_multivariate_metric(reference: pd.DataFrame) -> None:
    pca = fit_pca(reference, NUMERIC)
    current = pd.concat([make(5_000, seed=2), make(5_000, seed=3, rho=-0.9)], ignore_index=True)
    before, after = monitor(reference, current, pca)
    assert before.multivariate is not None and after.multivariate is not None
    assert not before.multivariate.exceeded
    assert after.multivariate.exceeded
    assert (
        after.multivariate.value is not None and after.multivariate.value > 1.5 * after.multivariate.reference
    )
    # Every marginal is unchanged: the per-feature metrics see nothing.
    assert not before.drift_detected and not after.drift_detected


def test_undrifted_windows_do_not_alarm(reference: pd.DataFrame) -> None:
    pca = fit_pca(reference, NUMERIC)
    windows = monitor(reference, make(100_000, seed=7), pca)
    assert len(windows) == 20
    assert not any(w.multivariate is not None and w.multivariate.exceeded for w in windows)


def test_small_windows_need_a_larger_rise(reference: pd.DataFrame) -> None:
    pca = fit_pca(reference, NUMERIC)
    assert pca.threshold(50) > pca.threshold(5_000) >= pca.reference_error * 1.1


def test_stored_and_read_back(reference: pd.DataFrame, tmp_path: Path) -> None:
    pca = fit_pca(reference, NUMERIC)
    pca.save(tmp_path)
    assert PCADrift.load(str(tmp_path)) == pca
    assert PCADrift.load(str(tmp_path / "none")) is None


def test_the_report_lists_it(reference: pd.DataFrame) -> None:
    pca = fit_pca(reference, NUMERIC)
    profile = build_profile(reference, NUMERIC, [])
    current = make(6_000, seed=3, rho=-0.9)
    result = run_monitor(
        pa.Table.from_pandas(current).to_batches(),
        profile,
        MonitorOptions(),
        extras=[multivariate_extra(pca)],
    )
    assert result.overall.multivariate is not None and result.overall.multivariate.exceeded
    assert "Multivariate drift (PCA reconstruction error)" in render_html(result)
