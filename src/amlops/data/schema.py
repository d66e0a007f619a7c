"""The declared schema of a dataset (`data/schema/*.yaml`) and its loader.

A schema file says what a valid row looks like, and which columns the model uses:

    name: demand
    date_column: date              # parsed as a date; drives the holdout split and the monitor's windows
    id_column: row_id              # stable unique id of a row (joins late labels to predictions)
    key: [date, store_id, product_id]   # no two rows may share these values
    series: [store_id, product_id]      # optional: within a series, dates must not go backwards (file order)
    target: units_sold
    features:
      numeric: [price, promotion, temperature, holiday]
      categorical: [store_id, store_type, product_id, product_category]
    columns:
      price: {dtype: float, min: 0.01, max: 10000}
      store_type: {dtype: category, allowed: [urban, suburban, rural]}
      temperature: {dtype: float, nullable: true, max_null_share: 0.2}
      holiday: {dtype: int, allowed: [0, 1], monitor_as: categorical}
      ...

Column keys: `dtype` (string | category | float | int | bool | date | datetime), `nullable` (default false),
`max_null_share` (column-level limit when nullable), `min` / `max` (inclusive; numbers, or ISO dates for date
columns), `allowed` (list of values), `allow_unseen` (true: values outside `allowed` are kept and reported,
for categories that legitimately appear over time), `pattern` (regular expression a string must match in
full), `unique` (no repeated values), `monitor_as` (`numeric` | `categorical`: how the drift monitor compares
the column; by default a number column with at most 5 distinct values in the training data is compared as
categories, see amlops.drift.kinds), `description`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from amlops.errors import AmlopsError

DType = Literal["string", "category", "float", "int", "bool", "date", "datetime"]
DTYPES: tuple[str, ...] = ("string", "category", "float", "int", "bool", "date", "datetime")
NUMERIC_DTYPES = ("float", "int")
TEMPORAL_DTYPES = ("date", "datetime")
_COLUMN_KEYS = {
    "dtype",
    "nullable",
    "max_null_share",
    "min",
    "max",
    "allowed",
    "allow_unseen",
    "pattern",
    "unique",
    "monitor_as",
    "description",
}
_TOP_KEYS = {
    "name",
    "description",
    "version",
    "date_column",
    "id_column",
    "key",
    "series",
    "target",
    "features",
    "columns",
}


class SchemaFileError(AmlopsError, ValueError):
    """A schema file that cannot be used; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: DType
    nullable: bool = False
    max_null_share: float | None = None
    min: float | str | None = None
    max: float | str | None = None
    allowed: tuple[Any, ...] | None = None
    allow_unseen: bool = False
    pattern: str | None = None
    unique: bool = False
    monitor_as: str | None = (
        None  # "numeric" | "categorical": the drift monitor's comparison (None: automatic)
    )
    description: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.dtype in NUMERIC_DTYPES

    @property
    def is_temporal(self) -> bool:
        return self.dtype in TEMPORAL_DTYPES


@dataclass(frozen=True)
class DatasetSchema:
    name: str
    columns: tuple[ColumnSpec, ...]
    date_column: str
    target: str
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    key: tuple[str, ...] = ()
    id_column: str | None = None
    series: tuple[str, ...] = ()
    description: str = ""
    source: str = field(default="", compare=False)

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def feature_columns(self) -> list[str]:
        """The model's input columns, in a fixed order: the date, then numeric, then categorical features."""
        return [self.date_column, *self.numeric_features, *self.categorical_features]

    @property
    def monitor_as(self) -> dict[str, str]:
        """The comparison kinds the schema declares for the drift monitor ({column: numeric | categorical})."""
        return {c.name: c.monitor_as for c in self.columns if c.monitor_as is not None}

    @property
    def sort_columns(self) -> list[str]:
        """The canonical row order of a snapshot: the key (date first), then the id."""
        cols = list(self.key) or [self.date_column]
        if self.id_column and self.id_column not in cols:
            cols.append(self.id_column)
        return cols

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source", None)
        for column in data["columns"]:
            # Undeclared: left out, so a schema's digest is what it was before the key existed.
            if column.get("monitor_as") is None:
                column.pop("monitor_as", None)
        return data

    @property
    def digest(self) -> str:
        """sha256 of the schema's canonical JSON: the same rules give the same digest."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def pd_timestamp(value: float | str) -> Any:
    """A schema bound as a point in time. The standard library reads the ISO forms schemas hold; pandas (0.4 s of
    import in every command that loads a schema) only reads what it cannot, as it always did."""
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        import pandas as pd

        return pd.Timestamp(str(value))


def _fail(source: str, where: str, message: str) -> SchemaFileError:
    return SchemaFileError(f"{source}: {where}: {message}")


def _str_list(value: Any, source: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(source, where, "expected a list of column names")
    return tuple(value)


def _parse_column(name: str, raw: Any, source: str) -> ColumnSpec:
    where = f"columns.{name}"
    if isinstance(raw, str):
        raw = {"dtype": raw}
    if not isinstance(raw, dict):
        raise _fail(source, where, "expected a mapping such as {dtype: float, min: 0}")
    unknown = sorted(set(raw) - _COLUMN_KEYS)
    if unknown:
        raise _fail(
            source, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(sorted(_COLUMN_KEYS))})"
        )
    dtype = raw.get("dtype")
    if dtype not in DTYPES:
        raise _fail(source, f"{where}.dtype", f"must be one of {', '.join(DTYPES)}, got {dtype!r}")
    nullable = raw.get("nullable", False)
    if not isinstance(nullable, bool):
        raise _fail(source, f"{where}.nullable", "must be true or false")
    share = raw.get("max_null_share")
    if share is not None and (not isinstance(share, int | float) or not 0 <= share <= 1):
        raise _fail(source, f"{where}.max_null_share", "must be a number between 0 and 1")
    bounds: dict[str, float | str | None] = {}
    for bound in ("min", "max"):
        value = raw.get(bound)
        if value is None:
            bounds[bound] = None
        elif dtype in TEMPORAL_DTYPES:
            try:
                pd_timestamp(value)
            except (ValueError, TypeError):
                raise _fail(source, f"{where}.{bound}", f"not an ISO date: {value!r}") from None
            bounds[bound] = str(value)
        elif dtype in NUMERIC_DTYPES and isinstance(value, int | float) and not isinstance(value, bool):
            bounds[bound] = float(value)
        else:
            raise _fail(
                source, f"{where}.{bound}", f"only numeric and date columns take bounds, got {value!r}"
            )
    low, high = bounds["min"], bounds["max"]
    if (
        low is not None
        and high is not None
        and (pd_timestamp(low) > pd_timestamp(high) if dtype in TEMPORAL_DTYPES else float(low) > float(high))
    ):
        raise _fail(source, where, "min is greater than max")
    allowed = raw.get("allowed")
    if allowed is not None and (not isinstance(allowed, list) or not allowed):
        raise _fail(source, f"{where}.allowed", "must be a non-empty list of values")
    pattern = raw.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise _fail(source, f"{where}.pattern", f"not a valid regular expression: {exc}") from None
    monitor_as = _monitor_as(raw.get("monitor_as"), dtype, source, where)
    return ColumnSpec(
        name=name,
        dtype=dtype,
        nullable=nullable,
        max_null_share=float(share) if share is not None else None,
        min=bounds["min"],
        max=bounds["max"],
        allowed=tuple(allowed) if allowed is not None else None,
        allow_unseen=bool(raw.get("allow_unseen", False)),
        pattern=str(pattern) if pattern is not None else None,
        unique=bool(raw.get("unique", False)),
        monitor_as=monitor_as,
        description=str(raw.get("description", "")),
    )


MONITOR_KINDS = ("numeric", "categorical")


def _monitor_as(value: Any, dtype: str, source: str, where: str) -> str | None:
    """The declared drift comparison of a column: only a number can be compared as a number."""
    if value is None:
        return None
    if value not in MONITOR_KINDS:
        raise _fail(
            source, f"{where}.monitor_as", f"must be one of {', '.join(MONITOR_KINDS)}, got {value!r}"
        )
    if value == "numeric" and dtype not in NUMERIC_DTYPES:
        raise _fail(source, f"{where}.monitor_as", f"a {dtype} column cannot be compared as numeric")
    return str(value)


def parse_schema(data: Any, source: str = "schema") -> DatasetSchema:
    """Build a DatasetSchema from the parsed YAML mapping; raise SchemaFileError with one line on any
    problem."""
    if not isinstance(data, dict):
        raise SchemaFileError(
            f"{source}: expected a mapping with 'columns', 'date_column', 'target', 'features'"
        )
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise _fail(source, unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, dict) or not raw_columns:
        raise _fail(source, "columns", "expected a mapping of column name to its rules")
    columns = tuple(_parse_column(str(name), raw, source) for name, raw in raw_columns.items())
    names = {c.name for c in columns}

    def known(col: str, where: str) -> str:
        if col not in names:
            raise _fail(source, where, f"column {col!r} is not declared under 'columns'")
        return col

    for required in ("date_column", "target"):
        if not isinstance(data.get(required), str):
            raise _fail(source, required, "required (a column name)")
    date_column = known(data["date_column"], "date_column")
    if not {c.name: c for c in columns}[date_column].is_temporal:
        raise _fail(source, "date_column", f"column {date_column!r} must have dtype date or datetime")
    target = known(data["target"], "target")
    if not {c.name: c for c in columns}[target].is_numeric:
        raise _fail(source, "target", f"column {target!r} must be numeric (float or int) for a regressor")
    id_column = data.get("id_column")
    if id_column is not None:
        known(str(id_column), "id_column")
    key = tuple(known(c, "key") for c in _str_list(data.get("key"), source, "key"))
    series = tuple(known(c, "series") for c in _str_list(data.get("series"), source, "series"))
    features = data.get("features")
    if not isinstance(features, dict) or not (features.get("numeric") or features.get("categorical")):
        raise _fail(
            source, "features", "expected {numeric: [...], categorical: [...]} naming the model's inputs"
        )
    numeric = tuple(
        known(c, "features.numeric") for c in _str_list(features.get("numeric"), source, "features")
    )
    categorical = tuple(
        known(c, "features.categorical") for c in _str_list(features.get("categorical"), source, "features")
    )
    by_name = {c.name: c for c in columns}
    for col in numeric:
        if by_name[col].dtype not in (*NUMERIC_DTYPES, "bool"):
            raise _fail(
                source, "features.numeric", f"column {col!r} has dtype {by_name[col].dtype}, not numeric"
            )
    overlap = set(numeric) & set(categorical)
    if overlap:
        raise _fail(source, "features", f"column {sorted(overlap)[0]!r} is both numeric and categorical")
    if target in numeric or target in categorical:
        raise _fail(source, "features", f"the target {target!r} cannot also be a feature")
    if date_column in numeric or date_column in categorical:
        raise _fail(source, "features", "the date column is added automatically (calendar features)")
    return DatasetSchema(
        name=str(data.get("name") or Path(source).stem),
        description=str(data.get("description", "")),
        columns=columns,
        date_column=date_column,
        target=target,
        numeric_features=numeric,
        categorical_features=categorical,
        key=key,
        id_column=str(id_column) if id_column is not None else None,
        series=series,
        source=source,
    )


def load_schema(path: str | Path) -> DatasetSchema:
    """Read a schema YAML file; raise SchemaFileError with one line naming the file and the key."""
    p = Path(path)
    if not p.is_file():
        raise SchemaFileError(f"{p}: schema file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark is not None else ""
        raise SchemaFileError(f"{p}:{line} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise SchemaFileError(f"{p}: not a UTF-8 text file") from None
    return parse_schema(data, str(p))
