"""How the monitor compares each feature: as a distribution of numbers, or as shares of a few values.

A number column with only a handful of distinct values (a 0/1 flag such as `holiday` or `promotion`, a count of
doors) is compared as categories: the share of each value, judged with the categorical metric (Jensen-Shannon
distance, threshold 0.1). Why: normalized Wasserstein divides the distance by the reference's standard deviation,
and for a 0/1 column with share p that is sqrt(p(1-p)), so the metric becomes |p_now - p_ref| / sqrt(p_ref(1-p_ref)):
a rare flag is judged on its own tiny scale, and a window with none of it scores sqrt(p/(1-p)), above 0.1 as soon
as p > 1 %. The demo's `holiday` (1.6 % of the training rows) scored 0.127 in every week without a holiday; the
JS distance of such a week is 0.089. The price: a rare flag's small changes count less (a 0/1 column going from
2 % to 6 % alarms in about 1 window in 5 under JS, in every window under Wasserstein); declare such a column
`monitor_as: numeric`. docs/monitor.md ("Column kinds") has the measurements.

The automatic rule is Evidently's: a number column with at most 5 distinct values is categorical
(https://github.com/evidentlyai/evidently/blob/main/docs/book/reference/data-drift-algorithm.md, "numerical columns
with n_unique <= 5"). Azure ML model monitoring decides int columns by their distinct-value ratio and lets a
signal override the kind per column with `feature_type_override` (Azure/azureml-assets,
assets/model_monitoring/components/src/shared_utilities/df_utils.py, `is_categorical`); the schema's
`monitor_as: numeric | categorical` is that override here.

The decision is made when monitoring, from the reference profile (its exact value counts for a discrete column)
and the declared kinds (the monitor component's `column_kinds` input, from the schema), so every process that
monitors the same model with the same schema decides the same way, and profiles stored before this rule existed
get it too. The stored profile keeps the column as the model sees it (a number).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

# numpy, pyarrow and the profile are imported where they are used: the CLI imports this module for the
# `column_kinds` input's text (declared_text) alone, ~0.1 s of imports it never needs (`amlops monitor`).
if TYPE_CHECKING:
    import numpy as np

    from amlops.drift.profile import CategoricalProfile, NumericProfile, ReferenceProfile

# Evidently's rule (module docstring): at most this many distinct values and a number column is compared as
# categories.
MAX_CATEGORICAL_VALUES = 5
KINDS = ("numeric", "categorical")
# Where the decision is recorded in the profile's metadata (the result copies it; the report explains it).
METADATA_KEY = "compared_as_categories"


def compared_as(numeric: NumericProfile, declared: str | None = None) -> str:
    """'categorical' or 'numeric' for a numeric feature: the declared kind if any, else categorical when the
    reference holds at most MAX_CATEGORICAL_VALUES distinct values (a discrete profile counts each value)."""
    if declared is not None:
        if declared not in KINDS:
            raise ValueError(f"monitor_as: {declared!r} is not one of {', '.join(KINDS)}")
        return declared
    if numeric.discrete and 0 < len(numeric.counts) <= MAX_CATEGORICAL_VALUES:
        return "categorical"
    return "numeric"


def value_labels(values: np.ndarray, dtype: str | None = None) -> list[str]:
    """The category names of numeric values, spelt as the monitor spells current values (Arrow's cast to text:
    1 and 1.0 are both "1"; a bool column's values are "false"/"true"), so reference and current categories
    meet."""
    import pyarrow as pa
    import pyarrow.compute as pc

    typ = pa.bool_() if dtype == "bool" else pa.float64()
    return [str(v) for v in pc.cast(pa.array(values, pa.float64()).cast(typ), pa.string()).to_pylist()]


def as_categorical(numeric: NumericProfile) -> CategoricalProfile:
    """The exact value counts of a discrete numeric profile as a categorical profile (most frequent first)."""
    from amlops.drift.profile import CategoricalProfile

    if not numeric.discrete:
        raise ValueError(
            f"{numeric.name}: only a discrete profile (exact value counts) can become categories"
        )
    labels = value_labels(numeric.edges[:-1], numeric.dtype)
    counts = {label: int(c) for label, c in zip(labels, numeric.counts.tolist(), strict=True) if c}
    ordered = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return CategoricalProfile(
        name=numeric.name,
        categories=ordered,
        # +-inf cannot be a category: they stay type errors as they were for the number column.
        null_count=numeric.null_count + numeric.nonfinite_count,
        dtype=numeric.dtype,
    )


def with_comparison_kinds(
    profile: ReferenceProfile, declared: Mapping[str, str] | None = None
) -> ReferenceProfile:
    """The profile the monitor compares against: numeric features to be compared as categories moved to the
    categorical side (declared `monitor_as`, else the automatic rule). A declared kind for a feature the
    profile does not have is ignored (the schema may describe more columns than a model uses); `numeric` for a
    text column is refused, a text cannot be measured as a number."""
    declared = dict(declared or {})
    for name, kind in declared.items():
        if kind == "numeric" and name in profile.categorical:
            raise ValueError(f"monitor_as: {name} is a text column in the reference; it cannot be numeric")
    moved: dict[str, str] = {}
    numeric: dict[str, NumericProfile] = {}
    categorical = dict(profile.categorical)
    for name, p in profile.numeric.items():
        kind = compared_as(p, declared.get(name))
        if kind == "categorical" and p.discrete:
            categorical[name] = as_categorical(p)
            why = "declared in the schema" if name in declared else f"{len(p.counts)} distinct values"
            moved[name] = why
        else:
            # Declared categorical but with too many values to have been counted exactly: stays a number.
            numeric[name] = p
    if not moved:
        return profile
    metadata = {**profile.metadata, METADATA_KEY: moved}
    return replace(profile, numeric=numeric, categorical=categorical, metadata=metadata)


def parse_declared(text: str | None) -> dict[str, str]:
    """`name=kind,name=kind` (the monitor component's `column_kinds` input) -> {name: kind}."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, kind = item.partition("=")
        name, kind = name.strip(), kind.strip()
        if not sep or not name or kind not in KINDS:
            raise ValueError(f"--column-kinds: expected name=numeric|categorical pairs, got {item.strip()!r}")
        out[name] = kind
    return out


def declared_text(declared: Mapping[str, str]) -> str:
    """The inverse of parse_declared, in a stable order."""
    return ",".join(f"{k}={v}" for k, v in sorted(declared.items()))
