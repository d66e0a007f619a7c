"""Binned, streamed metrics against exact scipy computations on the raw values.

Stated tolerances (docs/monitor.md), for a reference profile of 20k rows at 500 bins:
- two-sample KS statistic within 0.01 of scipy's ks_2samp; its p-value within 0.02 of scipy's (kstwo, as
  ks_2samp method="asymp") at the same statistic;
- normalized Wasserstein within 0.01 + 3% of scipy's wasserstein_distance / reference std;
- Jensen-Shannon distance equal to scipy's jensenshannon(base=2) on the same bins (1e-12);
- Pearson's chi-squared equal to scipy's chi2_contingency on the category counts (1e-9);
- discrete (integer) features: KS and Wasserstein exact.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, kstwo, wasserstein_distance

from amlops.drift import metrics as M
from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.profile import build_profile

N_REF, N_CUR = 20_000, 8_000


def _score(ref: np.ndarray, cur: np.ndarray, kind: str = "numeric") -> dict:
    profile = build_profile(
        pd.DataFrame({"f": ref}), ["f"] if kind == "numeric" else [], ["f"] if kind == "categorical" else []
    )
    result = run_monitor([pa.table({"f": cur})], profile, MonitorOptions(min_window_rows=1))
    return result["overall"]["features"]["f"]


CASES = {
    "same normal": (lambda r: r.normal(0, 1, N_REF), lambda r: r.normal(0, 1, N_CUR)),
    "shifted normal": (lambda r: r.normal(0, 1, N_REF), lambda r: r.normal(0.3, 1, N_CUR)),
    "wider normal": (lambda r: r.normal(0, 1, N_REF), lambda r: r.normal(0, 1.5, N_CUR)),
    "lognormal scaled": (lambda r: r.lognormal(0, 0.7, N_REF), lambda r: 1.4 * r.lognormal(0, 0.7, N_CUR)),
    "beyond the range": (lambda r: r.uniform(0, 1, N_REF), lambda r: r.uniform(0.5, 2.0, N_CUR)),
    "gamma vs exponential": (lambda r: r.gamma(2.0, 1.0, N_REF), lambda r: r.exponential(2.0, N_CUR)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_numeric_metrics_agree_with_scipy(case: str) -> None:
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    make_ref, make_cur = CASES[case]
    ref, cur = make_ref(rng), make_cur(rng)
    f = _score(ref, cur)
    m = f["metrics"]
    exact_ks = ks_2samp(ref, cur, method="asymp")
    ks = m["two_sample_kolmogorov_smirnov_test"]
    assert abs(ks["statistic"] - exact_ks.statistic) <= 0.01, (ks["statistic"], exact_ks.statistic)
    en = round(N_REF * len(cur) / (N_REF + len(cur)))
    assert abs(ks["value"] - kstwo.sf(ks["statistic"], en)) <= 0.02, (ks["value"], exact_ks.pvalue)
    exact_nwd = wasserstein_distance(ref, cur) / np.std(ref)
    nwd = m["normalized_wasserstein_distance"]["value"]
    assert abs(nwd - exact_nwd) <= 0.01 + 0.03 * exact_nwd, (nwd, exact_nwd)
    assert m["normalized_wasserstein_distance"]["exceeded"] == (nwd > 0.1)


def test_jensen_shannon_and_psi_on_the_coarse_bins() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, N_REF), rng.normal(0.4, 1.2, N_CUR)
    profile = build_profile(pd.DataFrame({"f": ref}), ["f"], [])
    p = profile.numeric["f"]
    reference = M.NumericReference.from_profile(p)
    counts = np.bincount(np.searchsorted(p.edges, cur, side="right"), minlength=len(p.edges) + 1)
    coarse = reference.coarse(counts)
    # The coarse bins: ~10 of equal reference mass plus an underflow and an overflow bin.
    assert len(coarse) == len(reference.ref_coarse) == M.COARSE_BINS + 2
    ours = M.jensen_shannon_distance(reference.ref_coarse, coarse)
    assert ours == pytest.approx(jensenshannon(reference.ref_coarse, coarse, base=2), abs=1e-12)
    pr = np.maximum(reference.ref_coarse / reference.ref_coarse.sum(), M.PSI_EPSILON)
    pc = np.maximum(coarse / coarse.sum(), M.PSI_EPSILON)
    assert M.population_stability_index(reference.ref_coarse, coarse) == pytest.approx(
        float(((pc - pr) * np.log(pc / pr)).sum()), rel=1e-12
    )
    f = _score(ref, cur)
    assert f["metrics"]["jensen_shannon_distance"]["value"] == pytest.approx(ours, abs=1e-12)


def test_categorical_metrics_agree_with_scipy() -> None:
    rng = np.random.default_rng(5)
    cats = np.array([f"k{i}" for i in range(6)])
    ref = rng.choice(cats, N_REF, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05])
    cur = rng.choice(cats, N_CUR, p=[0.2, 0.2, 0.2, 0.2, 0.1, 0.1])
    f = _score(ref, cur, "categorical")
    ref_counts = np.array([(ref == c).sum() for c in cats])
    cur_counts = np.array([(cur == c).sum() for c in cats])
    exact = chi2_contingency(np.vstack([ref_counts, cur_counts]))
    chi = f["metrics"]["pearsons_chi_squared_test"]
    assert chi["statistic"] == pytest.approx(exact.statistic, rel=1e-9)
    assert chi["value"] == pytest.approx(exact.pvalue, rel=1e-6, abs=1e-300)
    js = f["metrics"]["jensen_shannon_distance"]["value"]
    assert js == pytest.approx(jensenshannon(ref_counts, cur_counts, base=2), abs=1e-12)


def test_chi_squared_with_one_degree_of_freedom_uses_yates() -> None:
    table = np.array([[30, 70], [45, 55]])
    exact = chi2_contingency(table)
    p, stat = M.chi_squared_test(table[0], table[1])
    assert stat == pytest.approx(exact.statistic, rel=1e-12)
    assert p == pytest.approx(exact.pvalue, rel=1e-9)


def test_discrete_feature_metrics_are_exact() -> None:
    rng = np.random.default_rng(11)
    ref = rng.poisson(6, N_REF).astype(float)
    cur = rng.poisson(7, N_CUR).astype(float)
    cur = cur[cur <= ref.max()]  # inside the reference's atoms
    f = _score(ref, cur)
    m = f["metrics"]
    assert m["two_sample_kolmogorov_smirnov_test"]["statistic"] == pytest.approx(
        ks_2samp(ref, cur).statistic, abs=1e-12
    )
    assert m["normalized_wasserstein_distance"]["value"] == pytest.approx(
        wasserstein_distance(ref, cur) / np.std(ref), rel=1e-9
    )


def test_p_value_metrics_flag_below_threshold() -> None:
    assert M.exceeded("two_sample_kolmogorov_smirnov_test", 0.01, 0.05)
    assert not M.exceeded("two_sample_kolmogorov_smirnov_test", 0.2, 0.05)
    assert M.exceeded("normalized_wasserstein_distance", 0.2, 0.1)
    assert not M.exceeded("normalized_wasserstein_distance", None, 0.1)


def test_threshold_overrides() -> None:
    t = M.Thresholds({"jensen_shannon_distance": 0.2, "numeric.jensen_shannon_distance": 0.05})
    assert t.get("numeric", "jensen_shannon_distance") == 0.05
    assert t.get("categorical", "jensen_shannon_distance") == 0.2
    assert t.get("numeric", "normalized_wasserstein_distance") == 0.1
    with pytest.raises(ValueError, match="unknown metric"):
        M.Thresholds({"wasserstein": 0.1})
