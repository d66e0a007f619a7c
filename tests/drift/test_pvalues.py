"""amlops.drift.pvalues against scipy.special, whose import it saves: the Kolmogorov tail (KS p-values) and the
chi-squared tail (Pearson's test) over the centre and both tails, with degrees of freedom up to the profile's
1000 categories."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import chdtrc, kolmogorov

from amlops.drift import metrics
from amlops.drift.pvalues import chi2_sf, kolmogorov_sf


def _close(got: float, want: float) -> bool:
    if want < 1e-280:  # both underflow to (almost) nothing
        return abs(got - want) < 1e-280
    return abs(got - want) <= 1e-11 * want


def test_kolmogorov_tail_matches_scipy() -> None:
    grid = np.concatenate([np.linspace(0.0, 0.3, 31), np.linspace(0.3, 3.0, 271), np.linspace(3.0, 30.0, 55)])
    for y in [*grid.tolist(), 1e-3, 0.999999, 1.0, 1.000001]:
        assert _close(kolmogorov_sf(y), float(kolmogorov(y))), y
    assert kolmogorov_sf(-1.0) == 1.0 and math.isnan(kolmogorov_sf(math.nan))


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 7, 10, 50, 300, 999])
def test_chi_squared_tail_matches_scipy(dof: int) -> None:
    xs = np.concatenate(
        [np.linspace(0.0, 3.0 * dof + 50.0, 120), [1e-6, 1e-3, dof, dof + 1.0, 10.0 * dof + 1e3]]
    )
    for x in xs.tolist():
        assert _close(chi2_sf(dof, x), float(chdtrc(dof, x))), (dof, x)
    assert chi2_sf(dof, math.inf) == 0.0 and math.isnan(chi2_sf(dof, math.nan))


def test_the_metrics_use_them_and_agree_with_scipy_stats() -> None:
    from scipy.stats import chi2_contingency

    ref = np.array([400.0, 300.0, 200.0, 100.0])
    cur = np.array([380.0, 330.0, 190.0, 100.0])
    p, stat = metrics.chi_squared_test(ref, cur)
    want = chi2_contingency(np.vstack([ref, cur]))
    assert stat == pytest.approx(want.statistic, rel=1e-12) and p == pytest.approx(want.pvalue, rel=1e-10)
    assert metrics.ks_pvalue(0.05, 1_000, 1_000) == pytest.approx(float(kolmogorov(math.sqrt(500) * 0.05)))
