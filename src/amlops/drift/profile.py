"""The reference profile: a small, mergeable sketch of the training data that monitoring compares against.

Per numeric feature: histogram on (near-)quantile edges, moments, min/max and null / non-finite counts.
Per categorical feature: category counts, with the tail beyond `max_categories` folded into an "other" bucket.
Built in one pass, from a DataFrame or from chunked pyarrow batches, so memory is bounded by the profile size.

Histogram semantics (used by the monitor too): bin i is [edges[i], edges[i+1]); the last edge is just above
the maximum, so every reference value falls in a bin. A feature with at most `bins` distinct values is
`discrete`: its edges are those values (each bin holds exactly one value), which makes the metrics exact for
such columns.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from amlops.data.io import dumps_json
from amlops.data.io import finite_or_none as _f
from amlops.data.io import nan_if_none as _nan
from amlops.drift.binning import Binner

if TYPE_CHECKING:  # pandas is imported where a DataFrame or text numbers come in, not for Arrow batches
    import pandas as pd

SCHEMA_VERSION = 1
DEFAULT_BINS = 500
DEFAULT_MAX_CATEGORIES = 1000
# The first chunk of a column is sketched at FINE_FACTOR x bins quantiles; the final edges are a subset of
# those, so the final counts stay exact sums of fine counts.
FINE_FACTOR = 16
# Values of later chunks that fall outside the first chunk's range are kept raw up to this many, then folded
# into extension bins (keeps memory bounded when the data is ordered, e.g. a trend over time).
OUTLIER_CAP = 200_000
# A first chunk of more than SAMPLE_ABOVE values is not sorted: its fine edges are the quantiles of a
# fixed-seed sample of SAMPLE_ROWS values (plus the exact min and max), and every value is then counted exactly
# against them in one binning pass. The final edges are still cut where the exact cumulative counts reach each
# 1/bins share, so a coarse bin's mass is off by at most one fine bin either way, as with a sort;
# tests/drift/test_profile_fast.py holds this build to the sorted one. Why not always: numpy's SIMD sort
# (x86-simd-sort, AVX2/AVX-512) sorts 1M floats in ~6 ms here, less than any counting pass (~15-20 ms), so up to
# a few million rows sorting the first chunk is both exact and faster (bench/whole_bench.py measures both).
SAMPLE_ROWS = 1 << 16
SAMPLE_ABOVE = 4_000_000

NUMERIC_TYPES = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


class ProfileError(ValueError):
    """A profile that cannot be built or read (missing column, wrong schema version, bad JSON)."""


# --------------------------------------------------------------------------------------------------- features
@dataclass
class NumericProfile:
    name: str
    edges: np.ndarray  # float64, strictly increasing, len = len(counts) + 1 (empty when no finite value)
    counts: np.ndarray  # int64
    count: int = 0  # finite values
    null_count: int = 0  # nulls and NaN
    nonfinite_count: int = 0  # +-inf
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean (Chan's parallel update merges it exactly)
    min: float = math.nan
    max: float = math.nan
    discrete: bool = False
    dtype: str = "float64"

    @property
    def rows(self) -> int:
        return self.count + self.null_count + self.nonfinite_count

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count > 0 else math.nan

    @property
    def null_rate(self) -> float:
        return self.null_count / self.rows if self.rows else 0.0

    def quantile(self, q: float) -> float:
        """Approximate quantile from the histogram (linear inside a bin)."""
        if self.count == 0:
            return math.nan
        cum = np.concatenate([[0], np.cumsum(self.counts)]) / self.count
        return float(np.interp(q, cum, self.edges))

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "count": self.count,
            "null_count": self.null_count,
            "nonfinite_count": self.nonfinite_count,
            "mean": _f(self.mean),
            "std": _f(self.std),
            "m2": _f(self.m2),
            "min": _f(self.min),
            "max": _f(self.max),
            "discrete": self.discrete,
            "edges": [float(e) for e in self.edges],
            "counts": [int(c) for c in self.counts],
        }

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> NumericProfile:
        edges = np.asarray(data["edges"], dtype=np.float64)
        counts = np.asarray(data["counts"], dtype=np.int64)
        if len(edges) and len(edges) != len(counts) + 1:
            raise ProfileError(f"numeric feature {name!r}: {len(edges)} edges for {len(counts)} counts")
        return cls(
            name=name,
            edges=edges,
            counts=counts,
            count=int(data["count"]),
            null_count=int(data.get("null_count", 0)),
            nonfinite_count=int(data.get("nonfinite_count", 0)),
            mean=_nan(data.get("mean")),
            m2=_nan(data.get("m2")),
            min=_nan(data.get("min")),
            max=_nan(data.get("max")),
            discrete=bool(data.get("discrete", False)),
            dtype=str(data.get("dtype", "float64")),
        )


@dataclass
class CategoricalProfile:
    name: str
    categories: dict[str, int]  # category -> count, most frequent first
    other_count: int = 0  # values of categories beyond max_categories
    other_distinct: int = 0
    null_count: int = 0
    dtype: str = "string"

    @property
    def count(self) -> int:
        return sum(self.categories.values()) + self.other_count

    @property
    def rows(self) -> int:
        return self.count + self.null_count

    @property
    def null_rate(self) -> float:
        return self.null_count / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "count": self.count,
            "null_count": self.null_count,
            "other_count": self.other_count,
            "other_distinct": self.other_distinct,
            "categories": dict(self.categories),
        }

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> CategoricalProfile:
        return cls(
            name=name,
            categories={str(k): int(v) for k, v in data["categories"].items()},
            other_count=int(data.get("other_count", 0)),
            other_distinct=int(data.get("other_distinct", 0)),
            null_count=int(data.get("null_count", 0)),
            dtype=str(data.get("dtype", "string")),
        )


# --------------------------------------------------------------------------------------------------- shape
def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A profile's feature section: an object of feature -> object (absent: none)."""
    section = data.get(key, {})
    if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
        raise ProfileError(
            f"not a valid reference profile: {key!r} must be an object of feature -> object, "
            f"got a JSON {_json_kind(section)}"
        )
    return section


def _feature(build: Any, section: str, name: str, data: dict[str, Any]) -> Any:
    """One feature's profile, its shape errors naming the feature (not a bare KeyError: 'edges')."""
    try:
        return build(name, data)
    except KeyError as exc:
        raise ProfileError(
            f"not a valid reference profile: {section} feature {name!r} has no field {exc}"
        ) from None
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ProfileError):
            raise
        raise ProfileError(f"not a valid reference profile: {section} feature {name!r}: {exc}") from None


# --------------------------------------------------------------------------------------------------- profile
@dataclass
class ReferenceProfile:
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    row_count: int
    bins: int = DEFAULT_BINS
    max_categories: int = DEFAULT_MAX_CATEGORIES
    # Model outputs / target profiled for prediction drift: {"prediction": NumericProfile, "target": ...}.
    outputs: dict[str, NumericProfile] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "amlops.reference_profile",
            "schema_version": SCHEMA_VERSION,
            "created_at": self.created_at,
            "row_count": self.row_count,
            "bins": self.bins,
            "max_categories": self.max_categories,
            "metadata": self.metadata,
            "numeric": {n: p.to_dict() for n, p in self.numeric.items()},
            "categorical": {n: p.to_dict() for n, p in self.categorical.items()},
            "outputs": {n: p.to_dict() | {"column": p.name} for n, p in self.outputs.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceProfile:
        if not isinstance(data, dict):
            raise ProfileError(
                f"not an amlops reference profile (a JSON {_json_kind(data)}, not an object with schema "
                "'amlops.reference_profile')"
            )
        version = data.get("schema_version")
        if data.get("schema") != "amlops.reference_profile" or not isinstance(version, int):
            raise ProfileError("not an amlops reference profile (missing schema / schema_version)")
        if version > SCHEMA_VERSION:
            raise ProfileError(
                f"profile schema_version {version} is newer than this amlops ({SCHEMA_VERSION})"
            )
        numeric, categorical, outputs = (_section(data, key) for key in ("numeric", "categorical", "outputs"))
        return cls(
            numeric={n: _feature(NumericProfile.from_dict, "numeric", n, d) for n, d in numeric.items()},
            categorical={
                n: _feature(CategoricalProfile.from_dict, "categorical", n, d) for n, d in categorical.items()
            },
            outputs={
                n: _feature(NumericProfile.from_dict, "outputs", str(d.get("column", n)), d)
                for n, d in outputs.items()
            },
            row_count=int(data["row_count"]),
            bins=int(data.get("bins", DEFAULT_BINS)),
            max_categories=int(data.get("max_categories", DEFAULT_MAX_CATEGORIES)),
            created_at=str(data.get("created_at", "")),
            metadata=dict(data.get("metadata", {})),
        )

    def to_json(self, path: str | Path) -> Path | str:
        """Write the profile as JSON to a local path or an fsspec URL (abfs://...)."""
        text = dumps_json(self.to_dict(), separators=(",", ":"))
        location = str(path)
        if "://" in location and not location.startswith("file://"):
            from amlops.storage import filesystem

            fs, inner = filesystem(location)
            with fs.open(inner, "w") as fh:
                fh.write(text)
            return location
        target = Path(location.removeprefix("file://"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        return target

    @classmethod
    def from_json(cls, path: str | Path) -> ReferenceProfile:
        location = str(path)
        try:
            if "://" in location and not location.startswith("file://"):
                from amlops.storage import filesystem

                fs, inner = filesystem(location)
                with fs.open(inner, "r") as fh:
                    text = fh.read()
            else:
                text = Path(location.removeprefix("file://")).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ProfileError(f"{location}: reference profile not found") from None
        except UnicodeDecodeError:
            raise ProfileError(f"{location}: not valid JSON (not UTF-8 text)") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProfileError(f"{location}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        try:
            return cls.from_dict(data)
        except KeyError as exc:
            raise ProfileError(f"{location}: not a valid reference profile: field {exc} is missing") from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"{location}: {exc}") from None

    def merge(self, other: ReferenceProfile) -> ReferenceProfile:
        """The profile of both datasets. Counts, moments, min/max, nulls and categories merge exactly; numeric
        histograms merge exactly when the edges match (or both are discrete), else they are re-binned."""
        if set(self.numeric) != set(other.numeric) or set(self.categorical) != set(other.categorical):
            raise ProfileError("cannot merge profiles of different feature sets")
        return ReferenceProfile(
            numeric={n: _merge_numeric(p, other.numeric[n], self.bins) for n, p in self.numeric.items()},
            categorical={
                n: _merge_categorical(p, other.categorical[n], self.max_categories)
                for n, p in self.categorical.items()
            },
            outputs={
                n: _merge_numeric(p, other.outputs[n], self.bins)
                for n, p in self.outputs.items()
                if n in other.outputs
            },
            row_count=self.row_count + other.row_count,
            bins=self.bins,
            max_categories=self.max_categories,
            metadata={**other.metadata, **self.metadata},
        )


# --------------------------------------------------------------------------------------------------- building
def build_profile(
    df: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    target: str | None = None,
    prediction: str | None = None,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    metadata: dict[str, Any] | None = None,
) -> ReferenceProfile:
    """Profile a DataFrame (e.g. the training data). `target` / `prediction` name the label and model-output
    columns to profile for prediction drift (optional)."""
    builder = ProfileBuilder(
        numeric, categorical, target=target, prediction=prediction, bins=bins, max_categories=max_categories
    )
    builder.update(df)
    return builder.finalize(metadata=metadata)


def build_profile_from_batches(
    batches: Iterable[pa.RecordBatch | pa.Table | pd.DataFrame],
    numeric: list[str],
    categorical: list[str],
    **kwargs: Any,
) -> ReferenceProfile:
    """Profile data streamed in chunks (e.g. `pyarrow.dataset.Dataset.to_batches()`), one pass."""
    metadata = kwargs.pop("metadata", None)
    builder = ProfileBuilder(numeric, categorical, **kwargs)
    for batch in batches:
        builder.update(batch)
    return builder.finalize(metadata=metadata)


def numeric_values(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """(float64 values, NaN for nulls; mask of values that are not numbers at all, or None if there are none).

    String columns (a CSV where a number column holds text) are parsed; what does not parse is a type error:
    NaN in the values and True in the mask, so callers can tell it from a null.
    """
    typ = column.type
    if pa.types.is_dictionary(typ):
        column = (
            column.cast(typ.value_type) if isinstance(column, pa.ChunkedArray) else column.dictionary_decode()
        )
        typ = column.type
    if pa.types.is_floating(typ):
        return _to_float(column), None
    # safe=False: the nearest double, as numpy's astype. A distribution needs no more, while Arrow's safe cast
    # refused an int64 beyond 2**53 (a hashed key, a nanosecond time) with "Integer value … not in range", for
    # the whole monitor run and naming no column.
    if pa.types.is_integer(typ) or pa.types.is_decimal(typ) or pa.types.is_boolean(typ):
        return _to_float(pc.cast(column, pa.float64(), safe=False)), None
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        import pandas as pd

        raw = column.to_pandas()
        values = np.asarray(pd.to_numeric(raw, errors="coerce"), dtype=np.float64)
        text = raw.astype("string").str.strip()
        bad = np.asarray((raw.notna() & text.ne("") & np.isnan(values)).fillna(False), dtype=bool)
        return values, bad if bad.any() else None
    if pa.types.is_temporal(typ):
        return _to_float(pc.cast(pc.cast(column, pa.int64()), pa.float64(), safe=False)), None
    # Anything else (lists, structs, binary) cannot be a number: every non-null value is a type error.
    valid = np.asarray(chunks_numpy(pc.is_valid(column)), dtype=bool)
    return np.full(len(column), np.nan), valid if valid.any() else None


def chunks_numpy(column: pa.Array | pa.ChunkedArray, fill: float | None = None) -> np.ndarray:
    """arrow_numpy of an array or of every chunk of a chunked one, concatenated."""
    if isinstance(column, pa.Array):
        return arrow_numpy(column, fill)
    if column.num_chunks == 1:
        return arrow_numpy(column.chunk(0), fill)
    return np.concatenate([arrow_numpy(c, fill) for c in column.chunks]) if column.num_chunks else np.empty(0)


def _to_float(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            column = column.chunk(0)
        else:
            return np.concatenate([_to_float(c) for c in column.chunks]) if column.num_chunks else np.empty(0)
    if pa.types.is_floating(column.type) and column.type != pa.float64():
        column = pc.cast(column, pa.float64())  # exact, as numpy's astype of the float32/float16 values
    arr = arrow_numpy(column, fill=np.nan)
    return arr if arr.dtype == np.float64 else arr.astype(np.float64)


_NUMPY_OF: dict[pa.DataType, np.dtype[Any]] = {
    pa.float64(): np.dtype(np.float64),
    pa.float32(): np.dtype(np.float32),
    **{getattr(pa, f"{s}int{b}")(): np.dtype(f"{s}int{b}") for s in ("", "u") for b in (8, 16, 32, 64)},
}


def arrow_numpy(arr: pa.Array, fill: float | None = None) -> np.ndarray:
    """`arr.to_numpy(zero_copy_only=False)` without importing pandas: pyarrow's to_numpy, and any Python scalar
    handed to pyarrow (`pc.fill_null(arr, 0)`), import it (~0.4 s of a step that never needs it). A fixed-width
    numeric array is viewed in place (read-only, as to_numpy's zero-copy result); its nulls, if any, become
    `fill` (NaN: what to_numpy gives for floats; an int fill for dictionary indices). A boolean array without
    nulls goes through uint8. Anything else, or nulls without a fill: pyarrow's own conversion."""
    dtype = _NUMPY_OF.get(arr.type)
    if dtype is not None and (arr.null_count == 0 or fill is not None):
        if len(arr) == 0:
            return np.empty(0, dtype=dtype)
        data = np.frombuffer(
            arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize
        )
        if arr.null_count == 0 or fill is None:  # (no fill: no nulls, by the test above)
            return data
        return np.asarray(np.where(arrow_numpy(pc.is_valid(arr)), data, fill))
    if pa.types.is_boolean(arr.type) and arr.null_count == 0:
        return arrow_numpy(pc.cast(arr, pa.uint8())).view(np.bool_)
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def category_strings(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Categories are compared as strings (an int store id and its text form are the same category)."""
    typ = column.type
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return column
    return pc.cast(column, pa.string())


class _NumericSketch:
    """One column's running state while the profile is built."""

    def __init__(self, name: str, bins: int, sample_above: int | None = None) -> None:
        self.name = name
        self.bins = bins
        self.sample_above = max(SAMPLE_ABOVE if sample_above is None else sample_above, SAMPLE_ROWS)
        self._binner: Binner | None = None  # over fine_edges; rebuilt when they change
        self._binner_edges: np.ndarray | None = None
        self.dtype = "float64"
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.null_count = 0
        self.nonfinite_count = 0
        # discrete mode: exact value counts; continuous mode: fine edges + counts + outliers
        self.atoms: dict[float, int] | None = None
        self.fine_edges: np.ndarray | None = None
        self.fine_counts: np.ndarray | None = None
        self.low: list[np.ndarray] = []
        self.high: list[np.ndarray] = []
        self.n_outliers = 0

    def update(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.dtype = str(column.type)
        values, errors = numeric_values(column)
        # One pass answers the common case: a finite sum means no NaN and no inf (either would poison it).
        with np.errstate(
            invalid="ignore", over="ignore"
        ):  # inf - inf, or an overflow: the slow path sorts it
            total = float(values.sum()) if values.size else 0.0
        if math.isfinite(total) and errors is None:
            v = values
        else:
            type_errors = int(errors.sum()) if errors is not None else 0
            finite = np.isfinite(values)
            nan = np.isnan(values)
            self.null_count += int(nan.sum()) - type_errors
            self.nonfinite_count += int((~finite & ~nan).sum()) + type_errors
            v = values[finite] if not finite.all() else values
            total = float(v.sum()) if v.size else 0.0
        if v.size == 0:
            return
        self._update_moments(v, total)
        if self.fine_edges is None and self._counted_as_atoms(v):
            return
        if self.fine_edges is None:
            if self.atoms is None and v.size > self.sample_above:
                self._start_fine_sampled(v)
                return
            s = np.sort(v)
            distinct = s[np.concatenate([[True], s[1:] != s[:-1]])]
            if self.atoms is not None or len(distinct) <= self.bins:
                counts = np.diff(np.searchsorted(s, distinct, "left"), append=len(s))
                self._add_atoms(distinct, counts)
                return
            self._start_fine(s)
            return
        self._add_fine(v)

    def _add_atoms(self, distinct: np.ndarray, counts: np.ndarray) -> None:
        atoms = self.atoms if self.atoms is not None else {}
        for value, c in zip(distinct.tolist(), counts.tolist(), strict=True):
            atoms[value] = atoms.get(value, 0) + c
        self.atoms = atoms
        if len(atoms) > self.bins:
            self._atoms_to_fine()

    def _counted_as_atoms(self, v: np.ndarray) -> bool:
        """Count a large chunk of a (so far) discrete column without sorting it: the candidate atoms (the
        known ones, or a sample's distinct values, plus any value a first binning pass finds outside them)
        are counted exactly by one binning pass. False (nothing counted) when there are more than `bins`
        distinct values: the column is continuous."""
        if v.size <= self.sample_above:
            return False
        if self.atoms is not None:
            candidates = np.array(sorted(self.atoms), dtype=np.float64)
        else:
            candidates = np.unique(v[self._sample_index(v.size)])
        for _ in range(2):  # the sample's atoms, then those plus the values the sample missed
            if len(candidates) > self.bins:
                return False
            edges = np.append(candidates, np.nextafter(candidates[-1], np.inf))
            idx = Binner(edges, discrete=True)(v)  # searchsorted(edges, v, "right")
            missed = edges[np.clip(idx - 1, 0, len(candidates) - 1)] != v
            if not missed.any():
                counts = np.bincount(idx, minlength=len(edges))[1:]
                keep = counts > 0
                self._add_atoms(candidates[keep], counts[keep])
                return True
            candidates = np.union1d(candidates, np.unique(v[missed]))
        return False

    def _sample_index(self, n: int) -> np.ndarray:
        # A fixed seed keeps the profile reproducible; a random (not strided) sample cannot alias with a
        # period in the data.
        return np.random.default_rng(0x5EED).integers(0, n, SAMPLE_ROWS)

    def _start_fine_sampled(self, v: np.ndarray) -> None:
        """Fine edges at quantiles of a sample, bracketed by the chunk's exact min and max; exact counts."""
        s = np.sort(v[self._sample_index(v.size)])
        n_fine = self.bins * FINE_FACTOR
        idx = np.unique(np.floor(np.linspace(0, len(s) - 1, n_fine + 1)).astype(np.int64))
        lo, hi = float(v.min()), float(v.max())
        edges = np.unique(np.concatenate([[lo], s[idx], [hi]]))
        self.fine_edges = np.append(edges, np.nextafter(hi, np.inf))
        self.fine_counts = np.zeros(len(self.fine_edges) - 1, dtype=np.int64)
        self._add_fine(v)

    def _update_moments(self, v: np.ndarray, total: float) -> None:
        n_b = v.size
        mean_b = total / n_b
        if not math.isfinite(mean_b):  # the sum overflowed (values near the float limit): divide first
            mean_b = float(np.mean(v / n_b)) * n_b
        d = v - mean_b
        m2_b = float(np.einsum("i,i->", d, d))
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))

    def _start_fine(self, s: np.ndarray) -> None:
        """Fine edges at quantiles of the first (sorted) chunk; counts by searching the sorted data."""
        n_fine = self.bins * FINE_FACTOR
        idx = np.unique(np.floor(np.linspace(0, len(s) - 1, n_fine + 1)).astype(np.int64))
        edges = np.unique(s[idx])
        edges = np.append(edges, np.nextafter(s[-1], np.inf)) if edges[-1] == s[-1] else edges
        self.fine_edges = edges
        self.fine_counts = np.diff(np.searchsorted(s, edges, "left")).astype(np.int64)

    def _atoms_to_fine(self) -> None:
        assert self.atoms is not None
        values = np.array(sorted(self.atoms), dtype=np.float64)
        counts = np.array([self.atoms[v] for v in values.tolist()], dtype=np.int64)
        self.fine_edges = np.append(values, np.nextafter(values[-1], np.inf))
        self.fine_counts = counts
        self.atoms = None

    def _add_fine(self, v: np.ndarray) -> None:
        assert self.fine_edges is not None and self.fine_counts is not None
        # Binner == np.searchsorted(fine_edges, v, "right"), exactly, at a fraction of the cost: bin 0 is below
        # the first fine edge, nb + 1 at or above the last.
        if self._binner is None or self._binner_edges is not self.fine_edges:
            self._binner_edges = self.fine_edges
            self._binner = Binner(self.fine_edges, self.fine_counts if self.fine_counts.any() else None)
        b = self._binner(v)
        nb = len(self.fine_counts)
        hist = np.bincount(b, minlength=nb + 2)
        self.fine_counts += hist[1 : nb + 1]
        if hist[0] or hist[nb + 1]:
            low = v[b == 0]
            high = v[b == nb + 1]
            if low.size:
                self.low.append(low)
            if high.size:
                self.high.append(high)
            self.n_outliers += low.size + high.size
            if self.n_outliers > OUTLIER_CAP:
                self._fold_outliers()

    def _fold_outliers(self) -> None:
        """Turn the kept out-of-range values into extension bins at their own quantiles."""
        assert self.fine_edges is not None and self.fine_counts is not None
        per_side = max(self.bins, 16)
        if self.low:
            low = np.sort(np.concatenate(self.low))
            ext = np.unique(low[np.floor(np.linspace(0, len(low) - 1, per_side + 1)).astype(np.int64)])
            edges = np.append(ext, self.fine_edges[0])
            counts = np.histogram(low, edges)[0]  # last bin of np.histogram is closed: only values < lo here
            self.fine_edges = np.concatenate([ext, self.fine_edges])
            self.fine_counts = np.concatenate([counts, self.fine_counts]).astype(np.int64)
        if self.high:
            high = np.sort(np.concatenate(self.high))
            ext = np.unique(high[np.floor(np.linspace(0, len(high) - 1, per_side + 1)).astype(np.int64)])
            top = np.nextafter(high[-1], np.inf)
            edges = np.unique(
                np.concatenate([[self.fine_edges[-1]], ext[1:-1] if len(ext) > 2 else [], [top]])
            )
            counts = np.diff(np.searchsorted(high, edges, "left"))
            self.fine_edges = np.concatenate([self.fine_edges, edges[1:]])
            self.fine_counts = np.concatenate([self.fine_counts, counts]).astype(np.int64)
        self.low, self.high, self.n_outliers = [], [], 0

    def finalize(self) -> NumericProfile:
        discrete = False
        if self.n == 0:
            edges, counts = np.empty(0), np.empty(0, dtype=np.int64)
        elif self.atoms is not None:
            values = np.array(sorted(self.atoms), dtype=np.float64)
            counts = np.array([self.atoms[v] for v in values.tolist()], dtype=np.int64)
            edges = np.append(values, np.nextafter(values[-1], np.inf))
            discrete = True
        else:
            self._fold_outliers()
            assert self.fine_edges is not None and self.fine_counts is not None
            edges, counts = coarsen(self.fine_edges, self.fine_counts, self.bins)
        return NumericProfile(
            name=self.name,
            edges=edges,
            counts=counts,
            count=self.n,
            null_count=self.null_count,
            nonfinite_count=self.nonfinite_count,
            mean=self.mean if self.n else math.nan,
            m2=self.m2 if self.n else math.nan,
            min=self.min if self.n else math.nan,
            max=self.max if self.n else math.nan,
            discrete=discrete,
            dtype=self.dtype,
        )


def coarsen(edges: np.ndarray, counts: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `bins` bins of about equal mass whose edges are a subset of `edges` (so counts stay exact)."""
    nonzero = counts > 0
    if len(counts) <= bins and nonzero.all():
        return edges.copy(), counts.astype(np.int64)
    cum = np.cumsum(counts)
    total = int(cum[-1])
    # Cut after the fine bin where the cumulative count first reaches each k/bins share of the total.
    cuts = np.searchsorted(cum, np.arange(1, bins) * total / bins, "left") + 1
    first = int(np.argmax(nonzero))  # drop leading/trailing empty bins: edges start at min, end above max
    last = len(counts) - int(np.argmax(nonzero[::-1]))
    keep = np.unique(np.concatenate([[first], cuts[(cuts > first) & (cuts < last)], [last]]))
    new_counts = np.add.reduceat(counts, keep[:-1]).astype(np.int64)
    return edges[keep].copy(), new_counts


class _CategoricalSketch:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = "string"
        self.counts: dict[str, int] = {}
        self.null_count = 0

    def update(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.dtype = str(column.type.value_type if pa.types.is_dictionary(column.type) else column.type)
        self.null_count += column.null_count
        vc = pc.value_counts(category_strings(column))
        if isinstance(vc, pa.ChunkedArray):
            vc = vc.combine_chunks()
        values = vc.field("values").to_pylist()
        counts = vc.field("counts").to_pylist()
        for v, c in zip(values, counts, strict=True):
            if v is not None:
                self.counts[v] = self.counts.get(v, 0) + c

    def finalize(self, max_categories: int) -> CategoricalProfile:
        return _capped(self.name, self.counts, 0, 0, self.null_count, max_categories, self.dtype)


def _capped(
    name: str, counts: dict[str, int], other: int, other_distinct: int, nulls: int, cap: int, dtype: str
) -> CategoricalProfile:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept, tail = ordered[:cap], ordered[cap:]
    return CategoricalProfile(
        name=name,
        categories=dict(kept),
        other_count=other + sum(c for _, c in tail),
        other_distinct=other_distinct + len(tail),
        null_count=nulls,
        dtype=dtype,
    )


class ProfileBuilder:
    """Feed chunks with `update`, then `finalize()`; memory stays bounded by the profile size."""

    def __init__(
        self,
        numeric: list[str],
        categorical: list[str],
        *,
        target: str | None = None,
        prediction: str | None = None,
        bins: int = DEFAULT_BINS,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        sample_above: int | None = None,
        threads: int | None = None,
    ) -> None:
        """`sample_above`: a first chunk with more values is sampled, not sorted (see SAMPLE_ABOVE; None: that).
        `threads`: columns profiled at once (default: the cores, at most 4)."""
        if bins < 2:
            raise ProfileError("bins must be at least 2")
        overlap = set(numeric) & set(categorical)
        if overlap:
            raise ProfileError(f"columns both numeric and categorical: {sorted(overlap)}")
        self.bins = bins
        self.max_categories = max_categories
        self.numeric = {n: _NumericSketch(n, bins, sample_above) for n in numeric}
        self.categorical = {n: _CategoricalSketch(n) for n in categorical}
        self.outputs = {
            role: _NumericSketch(col, bins, sample_above)
            for role, col in (("target", target), ("prediction", prediction))
            if col is not None
        }
        self.rows = 0
        self.threads = threads or min(os.cpu_count() or 1, 4)
        self._pool: ThreadPoolExecutor | None = None

    def update(self, batch: pa.RecordBatch | pa.Table | pd.DataFrame) -> None:
        if not isinstance(batch, (pa.RecordBatch, pa.Table)):  # a pandas DataFrame
            batch = _arrow_from_pandas(batch, self._columns())
        names = set(batch.schema.names)
        missing = [c for c in self._columns() if c not in names]
        if missing:
            raise ProfileError(f"column(s) not in the data: {', '.join(missing)}")
        self.rows += batch.num_rows
        sketches: list[_NumericSketch | _CategoricalSketch] = [
            *self.numeric.values(),
            *self.categorical.values(),
            *self.outputs.values(),
        ]
        pool = self._executor()
        if pool is None:
            for sketch in sketches:
                sketch.update(batch.column(sketch.name))
            return
        # Each sketch owns its state (and each thread its binning scratch), and numpy and Arrow release the
        # GIL in the heavy loops, so columns are profiled side by side, as the monitor scores them.
        for _ in pool.map(lambda sk: sk.update(batch.column(sk.name)), sketches):
            pass

    def _executor(self) -> ThreadPoolExecutor | None:
        if self.threads <= 1:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="amlops-profile")
        return self._pool

    def _columns(self) -> list[str]:
        return [*self.numeric, *self.categorical, *(s.name for s in self.outputs.values())]

    def finalize(self, metadata: dict[str, Any] | None = None) -> ReferenceProfile:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        return ReferenceProfile(
            numeric={n: s.finalize() for n, s in self.numeric.items()},
            categorical={n: s.finalize(self.max_categories) for n, s in self.categorical.items()},
            outputs={role: s.finalize() for role, s in self.outputs.items()},
            row_count=self.rows,
            bins=self.bins,
            max_categories=self.max_categories,
            metadata=dict(metadata or {}),
        )


def _arrow_from_pandas(df: pd.DataFrame, columns: list[str]) -> pa.Table:
    import pandas as pd

    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ProfileError(f"column(s) not in the data: {', '.join(missing)}")
    arrays = []
    for c in dict.fromkeys(columns):
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype("string")
        try:
            arrays.append(pa.array(s, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed object column: compare as text
            arrays.append(pa.array(s.astype("string"), from_pandas=True))
    return pa.Table.from_arrays(arrays, names=list(dict.fromkeys(columns)))


# --------------------------------------------------------------------------------------------------- merging
def _merge_numeric(a: NumericProfile, b: NumericProfile, bins: int) -> NumericProfile:
    if b.count == 0:
        return _copy_numeric(a, b)
    if a.count == 0:
        return _copy_numeric(b, a)
    n = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * b.count / n
    m2 = a.m2 + b.m2 + delta * delta * a.count * b.count / n
    discrete = a.discrete and b.discrete
    if len(a.edges) == len(b.edges) and np.array_equal(a.edges, b.edges):
        edges, counts = a.edges.copy(), a.counts + b.counts
    elif discrete:
        atoms: dict[float, int] = {}
        for p in (a, b):
            for v, c in zip(p.edges[:-1].tolist(), p.counts.tolist(), strict=True):
                atoms[v] = atoms.get(v, 0) + c
        values = np.array(sorted(atoms), dtype=np.float64)
        edges = np.append(values, np.nextafter(values[-1], np.inf))
        counts = np.array([atoms[v] for v in values.tolist()], dtype=np.int64)
        if len(counts) > bins:
            discrete = False
            edges, counts = coarsen(edges, counts, bins)
    else:
        union = np.union1d(a.edges, b.edges)
        counts_f = _rebin(a, union) + _rebin(b, union)
        # Re-binning splits counts fractionally; round so that the total is kept exactly.
        counts_i = _round_keep_total(counts_f, n)
        edges, counts = coarsen(union, counts_i, bins)
    return NumericProfile(
        name=a.name,
        edges=edges,
        counts=np.asarray(counts, dtype=np.int64),
        count=n,
        null_count=a.null_count + b.null_count,
        nonfinite_count=a.nonfinite_count + b.nonfinite_count,
        mean=mean,
        m2=m2,
        min=min(a.min, b.min),
        max=max(a.max, b.max),
        discrete=discrete,
        dtype=a.dtype,
    )


def _copy_numeric(p: NumericProfile, empty: NumericProfile) -> NumericProfile:
    return NumericProfile(
        name=p.name,
        edges=p.edges.copy(),
        counts=p.counts.copy(),
        count=p.count,
        null_count=p.null_count + empty.null_count,
        nonfinite_count=p.nonfinite_count + empty.nonfinite_count,
        mean=p.mean,
        m2=p.m2,
        min=p.min,
        max=p.max,
        discrete=p.discrete,
        dtype=p.dtype,
    )


def _rebin(p: NumericProfile, edges: np.ndarray) -> np.ndarray:
    """Spread p's counts over finer `edges` (which contain p's edges), uniformly inside each of p's bins."""
    cum = np.concatenate([[0.0], np.cumsum(p.counts, dtype=np.float64)])
    at = np.interp(edges, p.edges, cum)  # piecewise-linear CDF; 0 below p's range, total above
    return np.diff(at)


def _round_keep_total(values: np.ndarray, total: int) -> np.ndarray:
    floor = np.floor(values).astype(np.int64)
    short = int(total - floor.sum())
    if short > 0:
        order = np.argsort(-(values - floor), kind="stable")[:short]
        floor[order] += 1
    return floor


def _merge_categorical(a: CategoricalProfile, b: CategoricalProfile, cap: int) -> CategoricalProfile:
    counts = dict(a.categories)
    for k, v in b.categories.items():
        counts[k] = counts.get(k, 0) + v
    return _capped(
        a.name,
        counts,
        a.other_count + b.other_count,
        a.other_distinct + b.other_distinct,
        a.null_count + b.null_count,
        cap,
        a.dtype,
    )


# --------------------------------------------------------------------------------------------------- helpers
def infer_feature_types(schema: pa.Schema, exclude: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(numeric, categorical) column names from an Arrow schema: numbers are numeric; text, dictionary and
    booleans are categorical; timestamps and the excluded columns (ids, labels, predictions) are skipped."""
    skip = set(exclude)
    numeric: list[str] = []
    categorical: list[str] = []
    for f in schema:
        if f.name in skip or f.name.startswith("__"):
            continue
        t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            numeric.append(f.name)
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_boolean(t):
            categorical.append(f.name)
    return numeric, categorical
