"""Validate raw rows against a declared schema: typed clean rows, quarantined rows with a reason each.

Two kinds of failure:
- structural (a column missing, a column that is entirely empty or unparseable, too many nulls): the file
  cannot be used at all, `DataValidationError` is raised with one line naming the file, the column and the
  rule;
- row-level (a value that does not parse, is out of range, not allowed, a duplicate key, a date out of
  order): the row goes to quarantine with its reasons, and the caller decides with `enforce_limit` whether too
  many did.

Parsing is done here (so that one bad value costs one row, not the column); the rules themselves are pandera
checks.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from amlops.data.io import SOURCE_FILE, SOURCE_ROW
from amlops.data.schema import ColumnSpec, DatasetSchema
from amlops.errors import AmlopsError

REASON_COLUMN = "_reason"
ORDER_RULE = "dates_in_order"
BEYOND_RULE = "date_beyond_data_range"
# A date is beyond the data's own range when it lies after the date below which 99% of the rows fall by more than
# half that range (and at least BEYOND_MIN_DAYS): a few rows dated years ahead (a typo, a placeholder 2099) would
# otherwise become "the most recent days" and the whole holdout of the gate.
BEYOND_QUANTILE = 0.99
BEYOND_MIN_DAYS = 30
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


class DataValidationError(AmlopsError, ValueError):
    """Data that cannot be used; the message is one line naming the file, the column and the rule."""


@dataclass
class ValidationReport:
    source: str
    total_rows: int
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    # (column, rule) -> number of rows failing it, and one example value
    rule_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def bad_rows(self) -> int:
        return len(self.quarantine)

    @property
    def bad_share(self) -> float:
        return self.bad_rows / self.total_rows if self.total_rows else 0.0

    def top_rules(self, n: int = 10) -> list[tuple[str, str, int]]:
        ranked = sorted(self.rule_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(col, rule, count) for (col, rule), count in ranked[:n]]

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.total_rows,
            "valid_rows": len(self.clean),
            "quarantined_rows": self.bad_rows,
            "bad_share": round(self.bad_share, 6),
            "failures": [{"column": c, "rule": r, "rows": n} for c, r, n in self.top_rules(50)],
            "warnings": self.warnings,
        }


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------------------------------------------- parsing
def _parse(raw: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, pd.Series]:
    """The column in its declared type, and a mask of values that were present but did not parse."""
    present = raw.notna()
    if spec.dtype in ("string", "category"):
        typed = raw.astype("str").where(present, other=np.nan)
        return typed, pd.Series(False, index=raw.index)
    if spec.dtype in ("float", "int"):
        if pd.api.types.is_bool_dtype(raw):
            raw = raw.astype("float64")
        typed = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = present & typed.isna()
        if spec.dtype == "int":
            finite = typed.notna() & np.isfinite(typed)
            fractional = finite & (typed != np.round(typed))
            bad |= fractional
            typed = typed.mask(fractional)
        return typed, bad
    if spec.dtype == "bool":
        if pd.api.types.is_bool_dtype(raw):
            return raw.astype("boolean"), pd.Series(False, index=raw.index)
        lowered = raw.astype("str").str.strip().str.lower()
        typed = pd.Series(pd.NA, index=raw.index, dtype="boolean")
        typed[lowered.isin(_TRUE) & present] = True
        typed[lowered.isin(_FALSE) & present] = False
        return typed, present & typed.isna()
    # date / datetime
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if pd.api.types.is_datetime64_any_dtype(raw):
            typed = pd.to_datetime(raw, errors="coerce", utc=True)
        else:
            typed = pd.to_datetime(
                raw.astype("str").where(present), errors="coerce", utc=True, format="ISO8601"
            )
    typed = typed.dt.tz_localize(None).astype("datetime64[ns]")
    if spec.dtype == "date":
        typed = typed.dt.normalize()
    return typed, present & typed.isna()


# ---------------------------------------------------------------------------------------------------- rules
def _is_finite(s: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(s.to_numpy(dtype="float64", na_value=np.nan)), index=s.index) | s.isna()


def _full_match(pattern: str) -> Any:
    def check(s: pd.Series) -> pd.Series:
        return s.astype("str").str.fullmatch(pattern)

    return check


def _pandera_schema(schema: DatasetSchema) -> Any:
    import pandera.pandas as pa

    columns = {}
    for spec in schema.columns:
        checks = []
        if spec.is_numeric:
            checks.append(pa.Check(_is_finite, name="finite"))
        if spec.min is not None:
            low = pd.Timestamp(str(spec.min)) if spec.is_temporal else spec.min
            checks.append(pa.Check.ge(low))
        if spec.max is not None:
            high = pd.Timestamp(str(spec.max)) if spec.is_temporal else spec.max
            checks.append(pa.Check.le(high))
        if spec.allowed is not None and not spec.allow_unseen:
            allowed = (
                [str(a) for a in spec.allowed] if spec.dtype in ("string", "category") else list(spec.allowed)
            )
            checks.append(pa.Check.isin(allowed))
        if spec.pattern is not None:
            checks.append(pa.Check(_full_match(spec.pattern), name=f"pattern({spec.pattern})"))
        columns[spec.name] = pa.Column(
            nullable=spec.nullable, unique=spec.unique, report_duplicates="all", checks=checks, coerce=False
        )
    frame_checks = []
    if schema.series:
        frame_checks.append(pa.Check(_dates_in_order(schema), name=ORDER_RULE))
    return pa.DataFrameSchema(
        columns,
        checks=frame_checks,
        unique=list(schema.key) or None,
        report_duplicates="all",
        strict=False,
        ordered=False,
    )


def _dates_in_order(schema: DatasetSchema) -> Any:
    date, series = schema.date_column, list(schema.series)

    def check(df: pd.DataFrame) -> pd.Series:
        # File order is row order: a date earlier than any date already seen in its series is out of order.
        keys = [df[c] for c in series]
        prev_max = df[date].groupby(keys, dropna=False).cummax().groupby(keys, dropna=False).shift()
        return ~(df[date] < prev_max)

    return check


def _beyond_data_range(typed: pd.DataFrame, schema: DatasetSchema) -> pd.Index:
    """Rows dated far after the bulk of the data (BEYOND_QUANTILE, BEYOND_MIN_DAYS above)."""
    column = schema.date_column
    if not column or column not in typed.columns:
        return pd.Index([])
    dates = typed[column].dropna()
    if len(dates) < 2:
        return pd.Index([])
    first, bulk_end = dates.min(), dates.quantile(BEYOND_QUANTILE)
    tolerance = max(pd.Timedelta(days=BEYOND_MIN_DAYS), (bulk_end - first) / 2)
    return dates.index[dates > bulk_end + tolerance]


def _rule_name(check: Any, column: Any) -> str:
    text = str(check)
    if text == "multiple_fields_uniqueness":
        return "duplicate_key"
    if text == "field_uniqueness":
        return "unique"
    return text


# ---------------------------------------------------------------------------------------------------- entry
def validate_frame(raw: pd.DataFrame, schema: DatasetSchema, source: str) -> ValidationReport:
    """Split raw rows into typed valid rows and quarantined rows; raise DataValidationError on structural
    faults."""
    import pandera.pandas as pa

    total = len(raw)
    if total == 0:
        raise DataValidationError(f"{source}: no data rows")
    raw = raw.reset_index(drop=True)
    declared = schema.column_names
    present = [c for c in raw.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
    missing = [c for c in declared if c not in raw.columns]
    if missing:
        found = ", ".join(present[:8]) + (", ..." if len(present) > 8 else "")
        raise DataValidationError(
            f"{source}: column {missing[0]!r}: rule 'required': missing from the data (found: {found})"
        )
    report_warnings: list[str] = []
    extra = [c for c in present if c not in declared]
    if extra:
        report_warnings.append(f"ignored {len(extra)} undeclared column(s): {', '.join(map(str, extra[:8]))}")

    typed = pd.DataFrame(index=raw.index)
    reasons: dict[int, list[str]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], Any] = {}

    def fail(rows: pd.Index, column: str, rule: str, values: pd.Series | None = None) -> None:
        for i in rows:
            value = values.loc[i] if values is not None else None
            reasons.setdefault(int(i), []).append(
                f"{column}: {rule}" + (f" ({_show(value)})" if values is not None else "")
            )
        if len(rows):
            counts[(column, rule)] += len(rows)
            if values is not None:
                examples.setdefault((column, rule), values.loc[rows[0]])

    parse_bad: dict[str, pd.Series] = {}
    for spec in schema.columns:
        col_raw = raw[spec.name]
        values, bad = _parse(col_raw, spec)
        typed[spec.name] = values
        parse_bad[spec.name] = bad
        rule = f"dtype({spec.dtype})"
        if not spec.nullable and col_raw.isna().all():
            raise DataValidationError(
                f"{source}: column {spec.name!r}: rule 'not_nullable': every value is empty"
            )
        if bad.all():
            example = col_raw[bad].iloc[0]
            raise DataValidationError(
                f"{source}: column {spec.name!r}: rule {rule!r}: no value parses as {spec.dtype} "
                f"(e.g. {_show(example)})"
            )
        if spec.nullable and spec.max_null_share is not None:
            share = float(col_raw.isna().mean())
            if share > spec.max_null_share:
                raise DataValidationError(
                    f"{source}: column {spec.name!r}: rule 'max_null_share({spec.max_null_share})': "
                    f"{share:.1%} of values are empty"
                )
        fail(raw.index[bad], spec.name, rule, col_raw)

    try:
        _pandera_schema(schema).validate(typed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        cases = cases[cases["index"].notna()]
        seen: set[tuple[int, str, str]] = set()
        grouped: dict[tuple[str, str], list[int]] = {}
        for column, check, index in zip(cases["column"], cases["check"], cases["index"], strict=True):
            col = str(column) if column is not None and column == column else "(row)"
            row = int(index)
            # A value that did not parse is already explained; don't add "not_nullable" for the NaN it became.
            if col in parse_bad and bool(parse_bad[col].iloc[row]):
                continue
            rule = _rule_name(check, column)
            if rule == "duplicate_key":
                col = ",".join(schema.key)
            elif rule == ORDER_RULE:  # a row-wise frame check is reported once per column: keep the date's
                col = schema.date_column
            if (row, col, rule) in seen:
                continue
            seen.add((row, col, rule))
            grouped.setdefault((col, rule), []).append(row)
        for (col, rule), rows in grouped.items():
            shown: pd.Series | None = raw[col.split(",")[0]] if col.split(",")[0] in raw.columns else None
            if rule == "duplicate_key":
                shown = raw[list(schema.key)].astype("str").agg("|".join, axis=1)
            fail(pd.Index(rows), col, rule, shown)

    beyond = _beyond_data_range(typed, schema)
    if len(beyond):
        fail(beyond, schema.date_column, BEYOND_RULE, raw[schema.date_column])

    for spec in schema.columns:
        if spec.allowed is not None and spec.allow_unseen:
            known = (
                {str(a) for a in spec.allowed} if spec.dtype in ("string", "category") else set(spec.allowed)
            )
            unseen = sorted({str(v) for v in typed[spec.name].dropna().unique() if v not in known})
            if unseen:
                report_warnings.append(
                    f"column {spec.name!r}: {len(unseen)} value(s) not in 'allowed' kept (allow_unseen): "
                    + ", ".join(unseen[:5])
                )

    bad_index = pd.Index(sorted(reasons))
    quarantine = raw.loc[bad_index].copy()
    quarantine[REASON_COLUMN] = ["; ".join(reasons[i]) for i in bad_index]
    clean = _finalise(typed.drop(index=bad_index), schema)
    return ValidationReport(
        source=source,
        total_rows=total,
        clean=clean,
        quarantine=quarantine.reset_index(drop=True),
        rule_counts=dict(counts),
        examples=examples,
        warnings=report_warnings,
    )


def _finalise(df: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """Declared column order, final dtypes (ints back to integers), canonical row order."""
    out = df[schema.column_names].copy()
    for spec in schema.columns:
        if spec.dtype == "int":
            out[spec.name] = out[spec.name].astype("Int64" if out[spec.name].isna().any() else "int64")
        elif spec.dtype in ("string", "category"):
            out[spec.name] = out[spec.name].astype("str").where(out[spec.name].notna(), other=np.nan)
    return out.sort_values(schema.sort_columns, kind="mergesort").reset_index(drop=True)


def enforce_limit(report: ValidationReport, max_bad_row_share: float) -> None:
    """Raise DataValidationError (one line: file, column, rule) when too many rows were quarantined."""
    if len(report.clean) == 0:
        col, rule, _ = report.top_rules(1)[0] if report.rule_counts else ("(all)", "?", 0)
        raise DataValidationError(
            f"{report.source}: column {col!r}: rule {rule!r}: "
            f"no valid rows left ({report.total_rows} quarantined)"
        )
    if report.bad_share <= max_bad_row_share:
        return
    col, rule, n = report.top_rules(1)[0]
    example = report.examples.get((col, rule))
    eg = f", e.g. {_show(example)}" if example is not None else ""
    raise DataValidationError(
        f"{report.source}: column {col!r}: rule {rule!r} failed on {n} row(s){eg}; "
        f"{report.bad_rows} of {report.total_rows} rows invalid ({report.bad_share:.1%}), "
        f"above max_bad_row_share {max_bad_row_share:.1%}"
    )
