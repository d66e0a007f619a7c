"""Drift, data-quality and performance metrics on histograms, with Azure ML model monitoring's names.

Everything here works on counts (the reference profile's histogram and the current window's counts on the same
edges), so a window is scored in O(bins), whatever its row count.

**The metric registry** (`DRIFT_METRICS`, `QUALITY_METRICS`) is the one place a metric is declared: its name, the
feature kinds it applies to with their default thresholds, whether it is a p-value (drift below the threshold)
or a distance (drift above), a short label, a one-line definition, and the function that computes it. The monitor,
the report, the CLI summary, the settings' validation and `Thresholds` all read it. Adding a metric is one
`DriftMetric(...)` entry (plus its function) in this module, and its test.

Definitions (docs/monitor.md repeats them):

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

from amlops.data.io import finite_or_none as _num

# numpy is imported in the functions that compute: every CLI command reads this registry (metric names, labels,
# thresholds: amlops.config validates the settings with it) and would otherwise pay numpy's ~55 ms import.
if TYPE_CHECKING:
    import numpy as np

    from amlops.drift.profile import CategoricalProfile, NumericProfile

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical")
COARSE_BINS = 10
PSI_EPSILON = 1e-4  # proportions are floored here so that an empty bin gives a large, finite PSI


# ------------------------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class Computed:
    """A metric's value for one feature in one window (None or NaN: undefined), and its test statistic."""

    value: float | None
    statistic: float | None = None


@dataclass(frozen=True)
class DriftMetric:
    """One drift metric. `thresholds` maps each feature kind the metric applies to onto its default threshold."""

    name: str
    thresholds: Mapping[Kind, float]
    p_value: bool  # True: drift when the value is BELOW the threshold (a test's p-value); False: above
    label: str  # short, for tables and the CLI
    definition: str  # one line for the report
    compute: Callable[[WindowCounts], Computed]
    statistic: bool = False  # the entry also carries the test statistic

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(self.thresholds)

    def exceeded(self, value: float | None, threshold: float) -> bool:
        if value is None or not math.isfinite(value) or not math.isfinite(threshold):
            return False
        return value < threshold if self.p_value else value > threshold


@dataclass(frozen=True)
class QualityMetric:
    """A data-quality rate: a finding when the window's rate exceeds the reference's rate + the threshold."""

    name: str
    threshold: float
    label: str
    definition: str
    compute: Callable[[QualityCounts], tuple[float | None, float]]  # (rate or None, the reference's rate)


def _no_counts() -> np.ndarray:
    import numpy as np

    return np.zeros(0)


@dataclass
class WindowCounts:
    """What a drift metric sees of one feature in one window.

    `reference` / `current` are counts on the comparison bins: for a numeric feature COARSE_BINS groups of equal
    reference mass plus an underflow and an overflow bin, for a categorical one the reference categories plus
    "other". A numeric feature also gives the fine histogram (`numeric`, `fine` = underflow, B bins, overflow)
    and the out-of-range sums the Wasserstein distance needs.
    """

    kind: Kind
    reference: np.ndarray
    current: np.ndarray
    n_reference: int
    n_current: int
    numeric: NumericReference | None = None
    fine: np.ndarray = field(default_factory=_no_counts)
    under_sum: float = 0.0
    over_sum: float = 0.0

    @property
    def ref(self) -> NumericReference:
        assert self.numeric is not None, "a numeric-only metric was computed on a categorical feature"
        return self.numeric

    @cached_property
    def ks_statistic(self) -> float:
        return ks_statistic(self.ref, self.fine)


@dataclass(frozen=True)
class QualityCounts:
    rows: int
    nulls: int
    type_errors: int
    out_of_bounds: int
    valid: int
    reference_null_rate: float


def _normalized_wasserstein(w: WindowCounts) -> Computed:
    return Computed(wasserstein(w.ref, w.fine, w.under_sum, w.over_sum) / w.ref.scale)


def _ks_test(w: WindowCounts) -> Computed:
    d = w.ks_statistic
    return Computed(ks_pvalue(d, w.n_reference, w.n_current), d)


def _chi_squared(w: WindowCounts) -> Computed:
    p_value, stat = chi_squared_test(w.reference, w.current)
    return Computed(p_value, stat)


# Order is the order of the result's metrics and of the report's columns. Default thresholds: AML model
# monitoring's where it states one (normalized Wasserstein 0.1 for numeric, Jensen-Shannon 0.1 for categorical;
# https://learn.microsoft.com/azure/machine-learning/how-to-monitor-model-performance), PSI 0.2 (the usual
# "significant shift" rule), p-values 0.05.
DRIFT_METRICS: tuple[DriftMetric, ...] = (
    DriftMetric(
        "normalized_wasserstein_distance",
        {"numeric": 0.1},
        p_value=False,
        label="Wasserstein (norm.)",
        definition="Earth mover's distance between the two distributions, divided by the reference's "
        "standard deviation.",
        compute=_normalized_wasserstein,
    ),
    DriftMetric(
        "jensen_shannon_distance",
        {"numeric": 0.1, "categorical": 0.1},
        p_value=False,
        label="Jensen-Shannon",
        definition="Base-2 Jensen-Shannon distance of the shares per bin (numeric: 10 bins of equal reference "
        "mass + out of range) or per category; 0 same, 1 disjoint.",
        compute=lambda w: Computed(jensen_shannon_distance(w.reference, w.current)),
    ),
    DriftMetric(
        "population_stability_index",
        {"numeric": 0.2, "categorical": 0.2},
        p_value=False,
        label="PSI",
        definition="Sum of (current - reference) x ln(current / reference) over the same bins as "
        "Jensen-Shannon.",
        compute=lambda w: Computed(population_stability_index(w.reference, w.current)),
    ),
    DriftMetric(
        "two_sample_kolmogorov_smirnov_test",
        {"numeric": 0.05},
        p_value=True,
        label="KS p-value",
        definition="p-value of the two-sample Kolmogorov-Smirnov test (statistic: largest gap between the "
        "two CDFs).",
        compute=_ks_test,
        statistic=True,
    ),
    DriftMetric(
        "pearsons_chi_squared_test",
        {"categorical": 0.05},
        p_value=True,
        label="χ² p-value",
        definition="p-value of Pearson's chi-squared test on the reference vs current category counts.",
        compute=_chi_squared,
        statistic=True,
    ),
)
QUALITY_METRICS: tuple[QualityMetric, ...] = (
    QualityMetric(
        "null_value_rate",
        0.01,
        "null rate",
        "Share of rows with no value, against the reference's share.",
        lambda c: (c.nulls / c.rows if c.rows else None, c.reference_null_rate),
    ),
    QualityMetric(
        "data_type_error_rate",
        0.0,
        "type errors",
        "Share of rows whose value has the wrong type (text in a numeric column, +-inf).",
        lambda c: (c.type_errors / c.rows if c.rows else None, 0.0),
    ),
    QualityMetric(
        "out_of_bounds_rate",
        0.01,
        "out of bounds",
        "Share of values outside the reference's range (numeric) or categories (categorical).",
        lambda c: (c.out_of_bounds / c.valid if c.valid else None, 0.0),
    ),
)
# The metric that decides a feature's `drifted` flag (distances, not p-values: at a million rows every p-value
# is tiny). The others are reported with their thresholds but do not flip the flag.
DEFAULT_DECIDING: dict[Kind, str] = {
    "numeric": "normalized_wasserstein_distance",
    "categorical": "jensen_shannon_distance",
}
PERFORMANCE_METRICS = ("mae", "rmse", "mape", "wape")


def drift_metric(name: str) -> DriftMetric:
    for m in DRIFT_METRICS:
        if m.name == name:
            return m
    raise KeyError(name)


def metric_names(kind: Kind) -> tuple[str, ...]:
    """The drift metrics of a feature kind, in registry order."""
    return tuple(m.name for m in DRIFT_METRICS if kind in m.thresholds)


def check_deciding(kind: Kind, name: str) -> str:
    """`name` if it is a drift metric of `kind`, else ValueError naming the choices."""
    names = metric_names(kind)
    if name not in names:
        raise ValueError(f"{kind} metric {name!r}: use one of {', '.join(names)}")
    return name


def label(name: str) -> str:
    """The short display label of a drift or quality metric (the name itself when unknown)."""
    labels = {m.name: m.label for m in DRIFT_METRICS} | {q.name: q.label for q in QUALITY_METRICS}
    return labels.get(name, name)


def default_thresholds() -> dict[str, float]:
    """Every threshold key with its default: `<kind>.<metric>` for drift metrics, the bare name for data
    quality (a finding when the current rate exceeds the reference rate by more than the threshold)."""
    drift = {f"{k}.{m.name}": m.thresholds[k] for k in KINDS for m in DRIFT_METRICS if k in m.thresholds}
    return drift | {q.name: q.threshold for q in QUALITY_METRICS}


class Thresholds:
    """Threshold lookup: `<kind>.<metric>` override, then `<metric>` override, then the default."""

    def __init__(self, overrides: Mapping[str, float] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self.defaults = default_thresholds()
        unknown = unknown_threshold_names(self.overrides)
        if unknown:
            raise ValueError(f"unknown metric name(s) in thresholds: {', '.join(unknown)}")

    def get(self, kind: str, metric: str) -> float:
        for key in (f"{kind}.{metric}", metric):
            if key in self.overrides:
                return float(self.overrides[key])
        return self.defaults.get(f"{kind}.{metric}", self.defaults.get(metric, math.nan))

    def effective(self) -> dict[str, float]:
        out = {}
        for key in self.defaults:
            kind, _, metric = key.rpartition(".")
            out[key] = self.get(kind, metric) if kind else self.get("", metric)
        return out


def unknown_threshold_names(names: Iterable[str]) -> list[str]:
    """The names that are neither a threshold key (`numeric.<metric>`, `null_value_rate`) nor a metric name."""
    defaults = default_thresholds()
    known = set(defaults) | {k.split(".", 1)[1] for k in defaults if "." in k}
    return sorted(k for k in names if k not in known)


def exceeded(metric: str, value: float | None, threshold: float) -> bool:
    return drift_metric(metric).exceeded(value, threshold)


# ------------------------------------------------------------------------------------------ distribution math
def jensen_shannon_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Base-2 Jensen-Shannon distance of two count (or probability) vectors; 0 when either is empty."""
    import numpy as np

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
    import numpy as np

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
    import numpy as np
    from scipy.special import kolmogorov

    if n_ref <= 0 or n_cur <= 0 or not math.isfinite(statistic):
        return math.nan
    en = n_ref * n_cur / (n_ref + n_cur)
    return float(np.clip(kolmogorov(math.sqrt(round(en)) * statistic), 0.0, 1.0))


def chi_squared_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """(p-value, statistic) of Pearson's test on the 2 x k table, as scipy.stats.chi2_contingency (Yates'
    correction when there is one degree of freedom); (1, 0) when the test is undefined (a single category)."""
    import numpy as np
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
        import numpy as np

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
        import numpy as np

        inner = counts[1:-1]
        grouped = np.add.reduceat(inner, self.groups) if len(self.groups) else np.zeros(0)
        return np.concatenate([[counts[0]], grouped, [counts[-1]]]).astype(np.float64)


def wasserstein(ref: NumericReference, counts: np.ndarray, under_sum: float, over_sum: float) -> float:
    """W1 between the reference and a current histogram (counts len B+2) plus its out-of-range sums:
    under_sum = sum(edges[0] - x) over x below the range, over_sum = sum(x - edges[-1]) over x above it."""
    import numpy as np

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
    import numpy as np

    n = float(counts.sum())
    if n <= 0 or len(ref.widths) == 0:
        return math.nan
    g = (counts[0] + np.concatenate([[0.0], np.cumsum(counts[1:-1], dtype=np.float64)])) / n
    return float(np.abs(ref.cdf - g).max())


def numeric_drift(
    ref: NumericReference, counts: np.ndarray, under_sum: float, over_sum: float, thresholds: Thresholds
) -> dict[str, dict[str, float | bool | None]]:
    """Every numeric drift metric of one window, each {value, threshold, exceeded} (+ statistic for tests)."""
    n_cur = int(counts.sum())
    if n_cur == 0 or ref.profile.count == 0:
        return {m: _entry("numeric", m, None, thresholds) for m in metric_names("numeric")}
    window = WindowCounts(
        "numeric",
        ref.ref_coarse,
        ref.coarse(counts),
        ref.profile.count,
        n_cur,
        numeric=ref,
        fine=counts,
        under_sum=under_sum,
        over_sum=over_sum,
    )
    return _score("numeric", window, thresholds)


# ------------------------------------------------------------------------------------------ categorical
@dataclass
class CategoricalReference:
    profile: CategoricalProfile
    index: dict[str, int]  # category -> position; everything else goes to position len(index) ("other")
    ref_counts: np.ndarray  # len K + 1: the categories, then the reference's "other" bucket

    @classmethod
    def from_profile(cls, p: CategoricalProfile) -> CategoricalReference:
        import numpy as np

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
        return {m: _entry("categorical", m, None, thresholds) for m in metric_names("categorical")}
    window = WindowCounts("categorical", ref.ref_counts, counts, int(ref.ref_counts.sum()), int(counts.sum()))
    return _score("categorical", window, thresholds)


def _score(
    kind: Kind, window: WindowCounts, thresholds: Thresholds
) -> dict[str, dict[str, float | bool | None]]:
    out = {}
    for metric in DRIFT_METRICS:
        if kind not in metric.thresholds:
            continue
        computed = metric.compute(window)
        entry = _entry(kind, metric.name, computed.value, thresholds)
        if metric.statistic:
            entry["statistic"] = _num(computed.statistic)
        out[metric.name] = entry
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
    counts = QualityCounts(rows, nulls, type_errors, out_of_bounds, valid, reference_null_rate)
    out: dict[str, dict[str, float | bool | None]] = {}
    for metric in QUALITY_METRICS:
        value, baseline = metric.compute(counts)
        t = thresholds.get("", metric.name)
        hit = value is not None and value > baseline + t
        out[metric.name] = {"value": value, "reference": baseline, "threshold": t, "exceeded": bool(hit)}
    return out


# ------------------------------------------------------------------------------------------ performance
def counts_for_mape(y: np.ndarray) -> np.ndarray:
    """The rows MAPE counts: a non-zero actual (a zero has no percentage error; a negative one counts by its
    size). Training, the gate and the monitor all use this, so their MAPEs compare."""
    return y != 0


def percentage_errors(y: np.ndarray, abs_err: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """|error| / |actual| on `rows` (counts_for_mape, possibly narrowed further), 0 elsewhere."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rows, abs_err / np.abs(y), 0.0)


@dataclass
class RegressionSums:
    """Streaming sums for MAE / RMSE / MAPE (a fraction, over `counts_for_mape` rows) and WAPE (sum of absolute
    errors over sum of absolute actuals: scale-free, stable with small counts). Rows with a non-finite actual
    or prediction are left out."""

    n: int = 0
    abs_err: float = 0.0
    sq_err: float = 0.0
    ape: float = 0.0
    n_ape: int = 0
    abs_y: float = 0.0

    def add(self, y: np.ndarray, yhat: np.ndarray) -> None:
        import numpy as np

        ok = np.isfinite(y) & np.isfinite(yhat)
        y, yhat = y[ok], yhat[ok]
        e = np.abs(y - yhat)
        nz = counts_for_mape(y)
        self.n += int(y.size)
        self.abs_err += float(e.sum())
        self.sq_err += float((e * e).sum())
        self.ape += float(percentage_errors(y, e, nz)[nz].sum())
        self.n_ape += int(nz.sum())
        self.abs_y += float(np.abs(y).sum())

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


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE and WAPE of one set of predictions (NaN where undefined, e.g. MAPE of all-zero actuals),
    with the definitions the monitor uses per window."""
    import numpy as np

    sums = RegressionSums()
    sums.add(np.asarray(y, dtype="float64"), np.asarray(pred, dtype="float64"))
    result = sums.result()
    return {m: _or_nan(result[m]) for m in PERFORMANCE_METRICS}


# ------------------------------------------------------------------------------------------ helpers
def _entry(
    kind: str, metric: str, value: float | None, thresholds: Thresholds
) -> dict[str, float | bool | None]:
    t = thresholds.get(kind, metric)
    v = _num(value)
    return {"value": v, "threshold": t, "exceeded": exceeded(metric, v, t)}


def _or_nan(x: float | None) -> float:
    return math.nan if x is None else float(x)
