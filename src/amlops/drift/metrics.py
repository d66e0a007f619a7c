"""Drift, data-quality and performance metrics on histograms, with Azure ML model monitoring's names.

Everything here works on counts (the reference profile's histogram and the current window's counts on the same
edges), so a window is scored in O(bins), whatever its row count. Definitions (docs/monitor.md repeats them):

- normalized_wasserstein_distance: W1(reference, current) / reference std. W1 = integral of |F_ref - F_cur|;
  inside the reference range both CDFs are linear within a bin (step functions for a discrete feature), and
  beyond the range the integral is exact from the sums of the out-of-range values.
- two_sample_kolmogorov_smirnov_test: value = p-value (asymptotic Kolmogorov distribution, as scipy's ks_2samp
  method="asymp" up to its finite-n refinement), statistic = max |F_ref - F_cur| over the bin edges.
- jensen_shannon_distance (base 2, in [0, 1]) and population_stability_index: numeric features on
  COARSE_BINS bins of equal reference mass plus an underflow and an overflow bin; categorical features on the
  reference categories plus one "other" bucket (the reference's tail and any unseen category).
- pearsons_chi_squared_test: value = p-value of Pearson's test on the 2 x k table of counts (as
  scipy.stats.chi2_contingency).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from amlops.drift.profile import CategoricalProfile, NumericProfile

NUMERIC_METRICS = (
    "normalized_wasserstein_distance",
    "jensen_shannon_distance",
    "population_stability_index",
    "two_sample_kolmogorov_smirnov_test",
)
CATEGORICAL_METRICS = ("jensen_shannon_distance", "population_stability_index", "pearsons_chi_squared_test")
DATA_QUALITY_METRICS = ("null_value_rate", "data_type_error_rate", "out_of_bounds_rate")
PERFORMANCE_METRICS = ("mae", "rmse", "mape", "wape")
# Metrics whose value is a p-value: drift when the value is BELOW the threshold. All others: above.
P_VALUE_METRICS = frozenset({"two_sample_kolmogorov_smirnov_test", "pearsons_chi_squared_test"})

# AML model monitoring defaults where it states one (normalized Wasserstein 0.1 for numeric, Jensen-Shannon
# 0.1 for categorical); PSI 0.2 is the usual "significant shift" rule; p-value thresholds are 0.05. Data
# quality: a finding when the current rate exceeds the reference rate by more than the threshold.
DEFAULT_THRESHOLDS: dict[str, float] = {
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
# The metric that decides a feature's `drifted` flag (distances, not p-values: at a million rows every p-value
# is tiny). The others are reported with their thresholds but do not flip the flag.
DEFAULT_DECIDING = {"numeric": "normalized_wasserstein_distance", "categorical": "jensen_shannon_distance"}
COARSE_BINS = 10
PSI_EPSILON = 1e-4  # proportions are floored here so that an empty bin gives a large, finite PSI


class Thresholds:
    """Threshold lookup: `<kind>.<metric>` override, then `<metric>` override, then the default."""

    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        self.overrides = dict(overrides or {})
        known = set(DEFAULT_THRESHOLDS) | {k.split(".", 1)[1] for k in DEFAULT_THRESHOLDS if "." in k}
        unknown = sorted(k for k in self.overrides if k not in known)
        if unknown:
            raise ValueError(f"unknown metric name(s) in thresholds: {', '.join(unknown)}")

    def get(self, kind: str, metric: str) -> float:
        for key in (f"{kind}.{metric}", metric):
            if key in self.overrides:
                return float(self.overrides[key])
        return DEFAULT_THRESHOLDS.get(f"{kind}.{metric}", DEFAULT_THRESHOLDS.get(metric, math.nan))

    def effective(self) -> dict[str, float]:
        out = {}
        for key in DEFAULT_THRESHOLDS:
            kind, _, metric = key.rpartition(".")
            out[key] = self.get(kind, metric) if kind else self.get("", metric)
        return out


def exceeded(metric: str, value: float | None, threshold: float) -> bool:
    if value is None or not math.isfinite(value) or not math.isfinite(threshold):
        return False
    return value < threshold if metric in P_VALUE_METRICS else value > threshold


# ------------------------------------------------------------------------------------------ distribution math
def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Base-2 Jensen-Shannon distance of two count (or probability) vectors; 0 when either is empty."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    sp, sq = p.sum(), q.sum()
    if sp <= 0 or sq <= 0:
        return math.nan
    p, q = p / sp, q / sq
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max(0.0, (kl_p + kl_q) / 2)))


def population_stability_index(p: np.ndarray, q: np.ndarray) -> float:
    """PSI = sum (q - p) ln(q / p) over bins (reference p, current q), proportions floored at PSI_EPSILON."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    sp, sq = p.sum(), q.sum()
    if sp <= 0 or sq <= 0:
        return math.nan
    p = np.maximum(p / sp, PSI_EPSILON)
    q = np.maximum(q / sq, PSI_EPSILON)
    return float(((q - p) * np.log(q / p)).sum())


def ks_pvalue(statistic: float, n_ref: int, n_cur: int) -> float:
    """Two-sided p-value from the asymptotic Kolmogorov distribution at sqrt(n m / (n + m)) * D.

    Matches scipy.stats.ks_2samp(method="asymp") closely for windows of a few hundred rows and more (tests pin
    the tolerance); uses scipy.special only, which imports far faster than scipy.stats.
    """
    from scipy.special import kolmogorov

    if n_ref <= 0 or n_cur <= 0 or not math.isfinite(statistic):
        return math.nan
    en = n_ref * n_cur / (n_ref + n_cur)
    return float(np.clip(kolmogorov(math.sqrt(round(en)) * statistic), 0.0, 1.0))


def chi_squared_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """(p-value, statistic) of Pearson's test on the 2 x k table, as scipy.stats.chi2_contingency (Yates'
    correction when there is one degree of freedom); (1, 0) when the test is undefined (a single category)."""
    from scipy.special import chdtrc

    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0, 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    dof = table.shape[1] - 1
    if dof == 1:
        diff = expected - table
        table = table + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    stat = float(((table - expected) ** 2 / expected).sum())
    return float(chdtrc(dof, stat)), stat


# ------------------------------------------------------------------------------------------ numeric reference
@dataclass
class NumericReference:
    """What scoring a numeric window needs from the profile, precomputed once."""

    profile: NumericProfile
    cdf: np.ndarray  # reference CDF at the edges, len B+1
    widths: np.ndarray  # bin widths, len B
    groups: np.ndarray  # start index (into bins 1..B of the current counts) of each coarse bin
    ref_coarse: np.ndarray  # reference counts per coarse bin, with 0 for the underflow and overflow bins
    scale: float  # what the Wasserstein distance is divided by

    @classmethod
    def from_profile(cls, p: NumericProfile) -> NumericReference:
        counts = p.counts.astype(np.float64)
        total = counts.sum()
        cdf = np.concatenate([[0.0], np.cumsum(counts)]) / total if total > 0 else np.zeros(len(p.edges))
        n_bins = len(counts)
        if n_bins:
            cuts = (
                np.searchsorted(np.cumsum(counts), np.arange(1, COARSE_BINS) * total / COARSE_BINS, "left")
                + 1
            )
            groups = np.unique(np.concatenate([[0], cuts[cuts < n_bins]])).astype(np.int64)
            ref_coarse = np.concatenate([[0.0], np.add.reduceat(counts, groups), [0.0]])
        else:
            groups = np.zeros(0, dtype=np.int64)
            ref_coarse = np.zeros(2)
        std = p.std
        if math.isfinite(std) and std > 0:
            scale = std
        elif math.isfinite(p.mean) and p.mean != 0:
            scale = abs(p.mean)  # a constant reference: distances relative to its value
        else:
            scale = 1.0
        return cls(p, cdf, np.diff(p.edges), groups, ref_coarse, scale)

    def coarse(self, counts: np.ndarray) -> np.ndarray:
        """Current counts (underflow, B bins, overflow) summed into (underflow, coarse groups, overflow)."""
        inner = counts[1:-1]
        grouped = np.add.reduceat(inner, self.groups) if len(self.groups) else np.zeros(0)
        return np.concatenate([[counts[0]], grouped, [counts[-1]]]).astype(np.float64)


def wasserstein(ref: NumericReference, counts: np.ndarray, under_sum: float, over_sum: float) -> float:
    """W1 between the reference and a current histogram (counts len B+2) plus its out-of-range sums:
    under_sum = sum(edges[0] - x) over x below the range, over_sum = sum(x - edges[-1]) over x above it."""
    n = float(counts.sum())
    if n <= 0 or len(ref.widths) == 0:
        return math.nan
    g = (counts[0] + np.concatenate([[0.0], np.cumsum(counts[1:-1], dtype=np.float64)])) / n
    d = ref.cdf - g  # at each edge
    if ref.profile.discrete:
        # Step CDFs: on [v_i, v_{i+1}) both equal their value just before the next edge.
        inside = float((np.abs(d[1:]) * ref.widths).sum())
    else:
        a, b = d[:-1], d[1:]
        same = a * b >= 0
        abs_sum = np.abs(a) + np.abs(b)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = np.where(abs_sum > 0, (a * a + b * b) / (2 * abs_sum), 0.0)
        inside = float((ref.widths * np.where(same, abs_sum / 2, crossing)).sum())
    return inside + (under_sum + over_sum) / n


def ks_statistic(ref: NumericReference, counts: np.ndarray) -> float:
    n = float(counts.sum())
    if n <= 0 or len(ref.widths) == 0:
        return math.nan
    g = (counts[0] + np.concatenate([[0.0], np.cumsum(counts[1:-1], dtype=np.float64)])) / n
    return float(np.abs(ref.cdf - g).max())


def numeric_drift(
    ref: NumericReference, counts: np.ndarray, under_sum: float, over_sum: float, thresholds: Thresholds
) -> dict[str, dict[str, float | bool | None]]:
    """All numeric drift metrics of one window, each {value, threshold, exceeded} (+ statistic for KS)."""
    n_cur = int(counts.sum())
    if n_cur == 0 or ref.profile.count == 0:
        return {m: _entry("numeric", m, None, thresholds) for m in NUMERIC_METRICS}
    w = wasserstein(ref, counts, under_sum, over_sum)
    coarse = ref.coarse(counts)
    d = ks_statistic(ref, counts)
    out = {
        "normalized_wasserstein_distance": _entry(
            "numeric", "normalized_wasserstein_distance", w / ref.scale, thresholds
        ),
        "jensen_shannon_distance": _entry(
            "numeric", "jensen_shannon_distance", jensen_shannon_distance(ref.ref_coarse, coarse), thresholds
        ),
        "population_stability_index": _entry(
            "numeric",
            "population_stability_index",
            population_stability_index(ref.ref_coarse, coarse),
            thresholds,
        ),
        "two_sample_kolmogorov_smirnov_test": _entry(
            "numeric",
            "two_sample_kolmogorov_smirnov_test",
            ks_pvalue(d, ref.profile.count, n_cur),
            thresholds,
        ),
    }
    out["two_sample_kolmogorov_smirnov_test"]["statistic"] = _num(d)
    return out


# ------------------------------------------------------------------------------------------ categorical
@dataclass
class CategoricalReference:
    profile: CategoricalProfile
    index: dict[str, int]  # category -> position; everything else goes to position len(index) ("other")
    ref_counts: np.ndarray  # len K + 1: the categories, then the reference's "other" bucket

    @classmethod
    def from_profile(cls, p: CategoricalProfile) -> CategoricalReference:
        index = {c: i for i, c in enumerate(p.categories)}
        ref_counts = np.array([*p.categories.values(), p.other_count], dtype=np.float64)
        return cls(p, index, ref_counts)

    @property
    def other(self) -> int:
        return len(self.index)


def categorical_drift(
    ref: CategoricalReference, counts: np.ndarray, thresholds: Thresholds
) -> dict[str, dict[str, float | bool | None]]:
    """counts: current counts per reference category, then "other" (unseen or tail), len K + 1."""
    if counts.sum() == 0 or ref.ref_counts.sum() == 0:
        return {m: _entry("categorical", m, None, thresholds) for m in CATEGORICAL_METRICS}
    p_value, stat = chi_squared_test(ref.ref_counts, counts)
    out = {
        "jensen_shannon_distance": _entry(
            "categorical",
            "jensen_shannon_distance",
            jensen_shannon_distance(ref.ref_counts, counts),
            thresholds,
        ),
        "population_stability_index": _entry(
            "categorical",
            "population_stability_index",
            population_stability_index(ref.ref_counts, counts),
            thresholds,
        ),
        "pearsons_chi_squared_test": _entry("categorical", "pearsons_chi_squared_test", p_value, thresholds),
    }
    out["pearsons_chi_squared_test"]["statistic"] = _num(stat)
    return out


# ------------------------------------------------------------------------------------------ data quality
def data_quality(
    rows: int,
    nulls: int,
    type_errors: int,
    out_of_bounds: int,
    valid: int,
    reference_null_rate: float,
    thresholds: Thresholds,
) -> dict[str, dict[str, float | bool | None]]:
    """Rates in the window: nulls and type errors over all rows; out-of-bounds over the valid values.
    A finding (exceeded) when the rate is above the reference's rate (0 for errors and bounds) + threshold."""

    def entry(metric: str, value: float | None, baseline: float) -> dict[str, float | bool | None]:
        t = thresholds.get("", metric)
        hit = value is not None and value > baseline + t
        return {"value": value, "reference": baseline, "threshold": t, "exceeded": bool(hit)}

    return {
        "null_value_rate": entry("null_value_rate", nulls / rows if rows else None, reference_null_rate),
        "data_type_error_rate": entry("data_type_error_rate", type_errors / rows if rows else None, 0.0),
        "out_of_bounds_rate": entry("out_of_bounds_rate", out_of_bounds / valid if valid else None, 0.0),
    }


# ------------------------------------------------------------------------------------------ performance
@dataclass
class RegressionSums:
    """Streaming sums for MAE / RMSE / MAPE (MAPE over rows with a non-zero label, as a fraction) and WAPE
    (sum of absolute errors over sum of absolute actuals: scale-free, stable with small counts)."""

    n: int = 0
    abs_err: float = 0.0
    sq_err: float = 0.0
    ape: float = 0.0
    n_ape: int = 0
    abs_y: float = 0.0

    def add(self, y: np.ndarray, yhat: np.ndarray) -> None:
        ok = np.isfinite(y) & np.isfinite(yhat)
        y, yhat = y[ok], yhat[ok]
        e = np.abs(y - yhat)
        nz = y != 0
        self.n += int(y.size)
        self.abs_err += float(e.sum())
        self.sq_err += float(np.einsum("i,i->", e, e))
        self.ape += float((e[nz] / np.abs(y[nz])).sum())
        self.n_ape += int(nz.sum())
        self.abs_y += float(np.abs(y).sum())

    def merge(self, other: RegressionSums) -> None:
        self.n += other.n
        self.abs_err += other.abs_err
        self.sq_err += other.sq_err
        self.ape += other.ape
        self.n_ape += other.n_ape
        self.abs_y += other.abs_y

    def result(self) -> dict[str, float | int | None]:
        if self.n == 0:
            return {"count": 0, "mae": None, "rmse": None, "mape": None, "wape": None}
        return {
            "count": self.n,
            "mae": self.abs_err / self.n,
            "rmse": math.sqrt(self.sq_err / self.n),
            "mape": self.ape / self.n_ape if self.n_ape else None,
            "wape": self.abs_err / self.abs_y if self.abs_y else None,
        }


# ------------------------------------------------------------------------------------------ helpers
def _entry(
    kind: str, metric: str, value: float | None, thresholds: Thresholds
) -> dict[str, float | bool | None]:
    t = thresholds.get(kind, metric)
    v = _num(value)
    return {"value": v, "threshold": t, "exceeded": exceeded(metric, v, t)}


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
