"""The monitor's result as typed models: what `run_monitor` returns, what result.json holds, read by attribute.

The JSON on disk keeps its documented shape (docs/monitor.md, `schema_version` 1), so Azure jobs and CI readers
of earlier results are not broken: a key that a result does not carry (a test's `statistic`, a feature's
`distribution`, the `source` the step adds) stays absent when the model is written back, and keys this version
does not know are kept (`extra="allow"`). Read a stored result with `MonitorResult.read(path)`; write one with
`result.write(path)`.

Only pydantic is imported here: a reader of result.json needs no numpy, pandas or pyarrow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

SCHEMA = "amlops.monitor_result"
SCHEMA_VERSION = 1
RESULT_FILE = "result.json"

Status = Literal["drift", "no_drift", "insufficient_data"]
WindowStatus = Literal["ok", "insufficient_rows"]


class _Record(BaseModel):
    """A JSON object of the result. Optional keys in `_omit_unless_set` are written only when the object was
    given them (built by the monitor or read from a file that had them)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)
    _omit_unless_set: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _absent_stay_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for name in self._omit_unless_set:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data

    def __getitem__(self, key: str) -> Any:
        """Read-only dict-style access for readers written against the plain-dict result (and the tests that
        pin its shape); new code reads attributes."""
        if key in type(self).model_fields or (self.model_extra and key in self.model_extra):
            return getattr(self, key)
        raise KeyError(key)


class MetricEntry(_Record):
    """One drift metric of one feature: the value (None when undefined), its threshold, and whether it crossed
    it (p-values: below; distances: above). Tests also carry their statistic."""

    _omit_unless_set = frozenset({"statistic"})
    value: float | None
    threshold: float | None
    exceeded: bool
    statistic: float | None = None


class QualityEntry(_Record):
    """One data-quality rate: a finding when `value` > `reference` + `threshold`."""

    value: float | None
    reference: float | None
    threshold: float | None
    exceeded: bool


class FeatureSummary(_Record):
    """Counts and moments of the window. Numeric features carry the range and moment keys, categorical ones
    the category keys."""

    _omit_unless_set = frozenset(
        {
            "below_range",
            "above_range",
            "mean",
            "std",
            "reference_mean",
            "reference_std",
            "reference_min",
            "reference_max",
            "unseen_count",
            "categories",
            "reference_other_count",
        }
    )
    count: int
    null_count: int
    type_error_count: int
    below_range: int | None = None
    above_range: int | None = None
    mean: float | None = None
    std: float | None = None
    reference_mean: float | None = None
    reference_std: float | None = None
    reference_min: float | None = None
    reference_max: float | None = None
    unseen_count: int | None = None
    categories: int | None = None
    reference_other_count: int | None = None


class NumericDistribution(_Record):
    """Reference vs current shares on display bins (the report's histogram)."""

    edges: list[float]
    reference: list[float]
    current: list[float]
    current_below: float
    current_above: float
    current_below_mean: float | None
    current_above_mean: float | None
    reference_min: float | None
    reference_max: float | None
    discrete: bool


class CategoricalDistribution(_Record):
    categories: list[str]
    reference: list[float]
    current: list[float]


class FeatureResult(_Record):
    """One feature (or the model output, as `prediction_drift`) in one window."""

    _omit_unless_set = frozenset({"distribution", "missing_column", "reference_role"})
    type: Literal["numeric", "categorical"]
    deciding_metric: str
    drifted: bool
    metrics: dict[str, MetricEntry]
    data_quality: dict[str, QualityEntry]
    summary: FeatureSummary
    distribution: NumericDistribution | CategoricalDistribution | None = None  # the overall window only
    missing_column: bool = False  # the column is absent from the current data
    reference_role: str | None = None  # prediction drift: "prediction" or "target" of the reference

    @property
    def deciding(self) -> MetricEntry:
        return self.metrics[self.deciding_metric]


class Finding(_Record):
    """A data-quality rate over its threshold (`window` is set in the verdict's list)."""

    _omit_unless_set = frozenset({"window"})
    window: str | None = None
    feature: str
    metric: str
    value: float | None
    threshold: float | None
    reference: float | None


class Performance(_Record):
    """Regression error on the labelled rows; `reference` is the champion's own holdout error, when known."""

    _omit_unless_set = frozenset({"reference"})
    count: int
    mae: float | None
    rmse: float | None
    mape: float | None
    wape: float | None
    reference: dict[str, Any] | None = None


class EstimatedPerformance(_Record):
    """The window's error estimated without labels (amlops.drift.estimate): MAE and RMSE with a 95 % interval
    (sampling error of the window + the estimator's own error). `reference` is the estimator's level on the
    champion's holdout (realized and estimated MAE/RMSE, mean prediction, rows)."""

    count: int
    mae: float | None
    rmse: float | None
    mae_low: float | None = None
    mae_high: float | None = None
    rmse_low: float | None = None
    rmse_high: float | None = None
    mean_prediction: float | None = None
    unsupported_share: float | None = None  # rows outside what the estimator saw (ranges, categories)
    reference: dict[str, float] | None = None


class MultivariateDrift(_Record):
    """PCA reconstruction error of the window vs the reference (amlops.drift.multivariate): drift in the joint
    distribution that no single column shows."""

    value: float | None  # mean reconstruction error of the window's rows
    reference: float  # the same on reference rows the PCA was not fitted on
    threshold: float | None  # the window's alarm level (reference + the allowed rise, widened for small n)
    exceeded: bool
    count: int


class WindowResult(_Record):
    _omit_unless_set = frozenset({"estimated_performance", "multivariate"})
    window: str  # "2024-W05", "2024-01-29", "rows 0-99999", "undated", "overall"
    start: str | int | None
    end: str | int | None
    row_count: int
    status: WindowStatus
    drift_detected: bool
    drifted_features: list[str]  # most drifted first
    features: dict[str, FeatureResult]  # most drifted first
    data_quality_findings: list[Finding]
    prediction_drift: FeatureResult | None
    performance: Performance | None
    # Optional (absent from results written before them, and when the model has no estimator / no PCA):
    estimated_performance: EstimatedPerformance | None = None
    multivariate: MultivariateDrift | None = None

    @property
    def judged(self) -> bool:
        return self.status == "ok"


def not_judged(row_count: int, min_rows: int) -> str:
    """How a window below the minimum reads everywhere (CLI, report): never "ok"."""
    return f"not judged ({row_count:,} < {min_rows:,} rows)"


class Verdict(_Record):
    status: Status
    drift_detected: bool
    drifted_features: list[str]
    first_drifted_window: str | None
    drifted_window_count: int
    window_count: int
    evaluated_window_count: int
    prediction_drift: bool
    data_quality_findings: list[Finding]
    performance: Performance | None
    summary: str


class RunSettings(_Record):
    window: str
    timestamp_column: str | None
    id_column: str | None
    prediction_column: str | None
    label_column: str | None
    numeric_metric: str
    categorical_metric: str
    min_window_rows: int
    thresholds: dict[str, float | None]  # every threshold in effect, `<kind>.<metric>` or a quality metric


class ReferenceInfo(_Record):
    _omit_unless_set = frozenset({"source"})
    row_count: int
    created_at: str | None
    numeric_features: list[str]
    categorical_features: list[str]
    prediction_reference: str | None
    metadata: dict[str, Any]  # from the profile: feature_importance, performance, data_digest, ...
    source: str | None = None


class CurrentInfo(_Record):
    _omit_unless_set = frozenset({"source"})
    row_count: int
    missing_columns: list[str]
    source: str | None = None


class MonitorResult(_Record):
    """The monitor's result (result.json)."""

    schema_name: str = Field(SCHEMA, alias="schema")
    schema_version: int = SCHEMA_VERSION
    created_at: str
    settings: RunSettings
    reference: ReferenceInfo
    current: CurrentInfo
    verdict: Verdict
    overall: WindowResult  # the whole current data, with distributions
    windows: list[WindowResult]  # in time order (undated last); empty when window is "all"

    def __getitem__(self, key: str) -> Any:
        return self.schema_name if key == "schema" else super().__getitem__(key)

    @property
    def judged_windows(self) -> list[WindowResult]:
        """The windows the verdict rests on: each judged window, or the overall one when there are none."""
        return [w for w in (self.windows or [self.overall]) if w.judged]

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON object as written to result.json (non-finite numbers as null)."""
        from amlops.data.io import finite_json

        return finite_json(self.model_dump(mode="json", by_alias=True))  # type: ignore[no-any-return]

    def to_json(self, indent: int | None = 1) -> str:
        from amlops.data.io import dumps_json

        return dumps_json(self.to_json_dict(), indent=indent)

    def write(self, path: str | Path) -> Path:
        """Write result.json (`path` is the file, or a folder to write RESULT_FILE into)."""
        p = Path(path)
        if p.is_dir():
            p = p / RESULT_FILE
        p.write_text(self.to_json() + "\n", encoding="utf-8")
        return p

    @classmethod
    def read(cls, path: str | Path) -> MonitorResult:
        """A stored result (`path` is result.json or the folder holding it)."""
        p = Path(path)
        if p.is_dir():
            p = p / RESULT_FILE
        return cls.model_validate_json(p.read_text(encoding="utf-8"))
