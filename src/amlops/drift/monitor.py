"""The streaming monitor: one pass over the current data, in chunks, against a reference profile.

Per chunk and feature the values are binned on the reference edges and counted per window (one `np.bincount`
over window x bin), so memory is bounded by windows x features x bins, not by rows. Windows come from a
timestamp column (daily, weekly: ISO weeks starting Monday, in UTC) or from row counts. At the end every
window, and the whole current data ("overall"), is scored with the metrics registered in `amlops.drift.metrics`,
and the result is a `MonitorResult` (amlops.drift.result; result.json, documented in docs/monitor.md).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from amlops.config import AUTO_WINDOW, DEFAULT_CHUNK_ROWS, DEFAULT_MIN_WINDOW_ROWS, window_kind
from amlops.data.io import data_format, is_data_file
from amlops.data.io import finite_or_none as _num
from amlops.drift import metrics as M
from amlops.drift.binning import Binner
from amlops.drift.partial import ExactSums
from amlops.drift.profile import (
    NumericProfile,
    ReferenceProfile,
    arrow_numpy,
    category_strings,
    chunks_numpy,
)
from amlops.drift.result import SCHEMA, SCHEMA_VERSION, MonitorResult

if (
    TYPE_CHECKING
):  # pandas is imported where labels are read: a monitor without labels never needs it (~0.4 s)
    import pandas as pd

RESULT_SCHEMA_VERSION = SCHEMA_VERSION
# For the report: numeric distributions are summarised on this many bins of equal reference mass.
DISPLAY_BINS = 40
DISPLAY_CATEGORIES = 15
_UNDATED = "undated"
_DAY_NS = 86_400 * 10**9


class MonitorError(ValueError):
    """Input the monitor cannot use (missing column, unreadable file, bad window spec): one clear line."""


@dataclass
class MonitorOptions:
    window: str = "all"  # all | daily | weekly | <N> (rows per window)
    timestamp_column: str | None = None
    id_column: str | None = None
    prediction_column: str | None = None
    label_column: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    numeric_metric: str = M.DEFAULT_DECIDING["numeric"]
    categorical_metric: str = M.DEFAULT_DECIDING["categorical"]
    min_window_rows: int = DEFAULT_MIN_WINDOW_ROWS
    chunk_rows: int = (
        DEFAULT_CHUNK_ROWS  # rows per streamed chunk: small enough to stay in cache, large to amortise
    )
    features: list[str] | None = None  # default: every feature of the profile
    threads: int = 0  # features scored in parallel per chunk (numpy releases the GIL); 0: one per core, max 4

    def window_kind(self) -> tuple[str, int]:
        try:
            return window_kind(self.window)
        except ValueError as exc:
            raise MonitorError(str(exc)) from None


# ------------------------------------------------------------------------------------------ reading
def list_data_files(location: str) -> tuple[Any, list[str], str]:
    """(filesystem, files, format) for a file or a folder of Parquet / CSV files, local or abfs://. The
    filesystem is None for a local location: the files are found with the standard library, without importing
    fsspec (and the asyncio it loads, ~0.3 s a step), and Arrow reads them with its own local filesystem."""
    from amlops import storage

    if storage.is_url(location):
        try:
            fs, path = storage.filesystem(location)
        except ValueError as exc:
            raise MonitorError(str(exc)) from None
        if not fs.exists(path):
            raise MonitorError(f"{location}: not found")
        found = sorted(f for f in fs.find(path) if is_data_file(f)) if fs.isdir(path) else None
    else:
        fs, path = None, str(Path(location.removeprefix("file://")).resolve())
        if not os.path.exists(path):
            raise MonitorError(f"{location}: not found")
        found = _local_data_files(path) if os.path.isdir(path) else None
    if found is not None and not found:
        raise MonitorError(f"{location}: no .parquet or .csv files in the folder")
    files = found if found is not None else [path]
    kinds = {data_format(Path(f).name) or "parquet" for f in files}  # a single file of any name: Parquet
    if len(kinds) > 1:
        raise MonitorError(f"{location}: mixes Parquet and CSV files; use one format per folder")
    return fs, files, kinds.pop()


def _local_data_files(folder: str) -> list[str]:
    """The data files under a local folder, at any depth, sorted by path (as fsspec's `find` lists them)."""
    found: list[str] = []
    for root, _dirs, names in os.walk(folder):
        found.extend(os.path.join(root, n) for n in names if is_data_file(n))
    return sorted(found)


# pyarrow.parquet's batch reader decodes ~0.3-0.45 s per million rows slower than the dataset scanner here (1M x 25,
# interleaved), while skipping pyarrow.dataset saves a fixed ~0.4 s of pandas import: the lean reader pays off only
# on files below about a million rows.
LEAN_READ_MAX_ROWS = 500_000


class LocalParquetFormat:
    """The `format` of a LocalParquetFile (callers tell Parquet from CSV by the format's type name)."""


class LocalParquetFile:
    """One local Parquet file read with pyarrow.parquet, in the part of pyarrow.dataset's interface the monitor
    uses (`schema`, `scanner(...).to_batches()`, `to_table`, `count_rows`, `format`, `files`). Why: importing
    pyarrow.dataset imports pandas as well (pyarrow._dataset_parquet), ~0.4 s of a step that never needs
    pandas; pyarrow.parquet does not. Reading speed is the same (both decode a row group's columns on threads,
    without pre-buffering on local disk)."""

    format = LocalParquetFormat()

    def __init__(self, path: str, dictionary_columns: Iterable[str] = ()) -> None:
        import pyarrow.parquet as pq

        self.files = [path]
        metadata = pq.read_metadata(path)
        # Only the columns the file has: pyarrow raises a bare KeyError for a dictionary column it lacks, while a
        # profile's categorical feature missing from the data is reported as a missing column (as pyarrow.dataset
        # reads a folder).
        names = set(metadata.schema.to_arrow_schema().names)
        wanted = [c for c in dictionary_columns if c in names]
        self._file = pq.ParquetFile(path, metadata=metadata, read_dictionary=wanted or None)
        self.schema: pa.Schema = self._file.schema_arrow

    def count_rows(self) -> int:
        return int(self._file.metadata.num_rows)

    def to_table(self, columns: list[str] | None = None) -> pa.Table:
        self._check(columns)
        return self._file.read(columns=columns, use_threads=True)

    def scanner(self, columns: list[str] | None = None, batch_size: int = 131_072, **_: Any) -> Any:
        """Read-ahead options are pyarrow.dataset's: this reads one row group at a time anyway."""
        self._check(columns)
        file = self._file

        class _Scanner:
            def to_batches(self) -> Iterator[pa.RecordBatch]:
                # Row group by row group, as the dataset scanner cuts its batches: the same chunks, so float
                # sums per chunk (and a map-reduce run reading the files one by one) come out the same.
                for group in range(file.num_row_groups):
                    yield from file.iter_batches(
                        batch_size=batch_size, row_groups=[group], columns=columns, use_threads=True
                    )

        return _Scanner()

    def _check(self, columns: list[str] | None) -> None:
        missing = [c for c in columns or () if c not in self.schema.names]
        if missing:  # the dataset scanner's error for an unknown column
            raise pa.ArrowInvalid(f"No match for FieldRef.Name({missing[0]}) in {self.files[0]}")


def open_dataset(location: str, dictionary_columns: Iterable[str] = ()) -> Any:
    """A pyarrow dataset over a file or folder (a LocalParquetFile for a single local Parquet file); categorical
    Parquet columns are read dictionary-encoded."""
    fs, files, kind = list_data_files(location)
    local = fs is None
    if local and kind == "parquet" and len(files) == 1:
        try:
            lean = LocalParquetFile(files[0], dictionary_columns)
        except (pa.ArrowInvalid, OSError) as exc:
            raise MonitorError(f"{location}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None
        if lean.count_rows() <= LEAN_READ_MAX_ROWS:
            return lean
    import pyarrow.dataset as pds

    if kind == "csv":
        import pyarrow.csv as pacsv

        # "By default, string columns are not checked for null values" (pyarrow.csv.ConvertOptions,
        # https://arrow.apache.org/docs/python/generated/pyarrow.csv.ConvertOptions.html): an empty cell of a text
        # column, which is how pandas writes a null, would count as an unseen category "" where the same data in
        # Parquet counts a null (and a file whose cells are all empty, typed null alone, read nulls in the map
        # step but "" among the folder's other files). Text columns take the number columns' null spellings.
        fmt: Any = pds.CsvFileFormat(convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    else:
        # Pre-buffering coalesces reads of a whole row group: worth it on blob storage, but on local disk it
        # only holds several row groups in memory at once (2.3 GB instead of 0.9 GB peak on 100M rows).
        fmt = pds.ParquetFileFormat(
            read_options=pds.ParquetReadOptions(dictionary_columns=set(dictionary_columns)),
            default_fragment_scan_options=pds.ParquetFragmentScanOptions(pre_buffer=not local),
        )
    filesystem = None if local else fs
    try:
        dataset = pds.dataset(files, format=fmt, filesystem=filesystem)
        return every_files_columns(dataset) if len(files) > 1 else dataset
    except (pa.ArrowInvalid, OSError) as exc:
        raise MonitorError(f"{location}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None


def every_files_columns(dataset: Any) -> Any:
    """pyarrow takes a dataset's schema from its first file: a column that file lacks (the prediction, a
    feature) would be missing for every file, and the result would depend on which file sorts first. The union
    of the files' columns instead (a file without one reads it as nulls), as the map step sees each file's own.
    A column whose type differs between files is read in the type both widen to (int64 and float64: float64, as
    pandas writes an integer column with nulls), else in the first file's type, the others cast to it."""
    import pyarrow.dataset as pds

    fragments = list(dataset.get_fragments())
    schemas = physical_schemas(fragments)
    unified = column_types(schemas)
    if unified.equals(dataset.schema):
        return dataset
    # Built from the fragments already read (their schemas are cached): `replace_schema` refuses to change a
    # column's type.
    return pds.FileSystemDataset(
        fragments, schema=unified, format=dataset.format, filesystem=dataset.filesystem
    )


# Reading a file's schema is a round trip or two on blob storage (its footer, or a CSV's first block), so a folder
# of many files opens on threads (pyarrow reads without the GIL). 200 files on Azurite behind a 10 ms round trip:
# 10.2 s one after another, 2.2 s on 16 threads (Parquet and CSV alike).
SCHEMA_READERS = 16


def physical_schemas(fragments: list[Any]) -> list[pa.Schema]:
    """Each fragment's own schema, in the fragments' order."""
    if len(fragments) < 2:
        return [f.physical_schema for f in fragments]
    with ThreadPoolExecutor(min(len(fragments), SCHEMA_READERS), thread_name_prefix="amlops-schema") as pool:
        return list(pool.map(lambda f: f.physical_schema, fragments))


def column_types(schemas: list[pa.Schema]) -> pa.Schema:
    """Every column of the schemas in order of first appearance, each in the type its files' types widen to
    (pyarrow's permissive promotion), or in the first file's type when they do not (string and double, say)."""
    by_name: dict[str, list[pa.Field]] = {}
    for schema in schemas:
        for f in schema:
            by_name.setdefault(f.name, []).append(f)
    return pa.schema([_widened(group) for group in by_name.values()], metadata=schemas[0].metadata)


def _widened(fields: list[pa.Field]) -> pa.Field:
    if all(f.type == fields[0].type for f in fields):
        return fields[0]
    try:
        # "Permissive: types are promoted to the greater common denominator" (pyarrow.unify_schemas,
        # https://arrow.apache.org/docs/python/generated/pyarrow.unify_schemas.html).
        unified = pa.unify_schemas([pa.schema([f]) for f in _absorbed(fields)], promote_options="permissive")
        return unified.field(0)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return fields[0]


def _absorbed(fields: list[pa.Field]) -> list[pa.Field]:
    """Without the fields whose values the others' type holds exactly, where pyarrow's promotion has no common
    type and the first file's type would win: a date beside timestamps (its midnight; pandas writes a datetime
    column whose times are all midnight to CSV as bare dates, which Arrow infers as date32, and the CSV reader
    cannot parse '2024-01-07 10:00:00' as a date32), and a boolean beside numbers (0 or 1; an int64 cast to the
    first file's bool reads 4 as true, 1)."""
    types = [f.type for f in fields]
    if any(pa.types.is_timestamp(t) for t in types) and all(
        pa.types.is_timestamp(t) or pa.types.is_date(t) for t in types
    ):
        return [f for f in fields if pa.types.is_timestamp(f.type)]
    numbers = [f for f in fields if _is_number(f.type)]
    if numbers and all(_is_number(t) or pa.types.is_boolean(t) for t in types):
        return numbers
    return fields


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def iter_batches(dataset: Any, columns: list[str], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Stream the columns in chunks; read-ahead is kept to one batch so memory stays flat on huge inputs."""
    scanner = dataset.scanner(
        columns=columns, batch_size=chunk_rows, batch_readahead=0, fragment_readahead=1, use_threads=True
    )
    try:
        for batch in scanner.to_batches():
            if batch.num_rows:
                yield batch
    except pa.ArrowInvalid as exc:
        why = type_disagreement(dataset)
        raise MonitorError(
            f"cannot read the current data: {str(exc).splitlines()[0]}{f' ({why})' if why else ''}"
        ) from None


def files_of(dataset: Any) -> list[Any]:
    """The fragments (files) of a dataset of several files; none for one file (its schema is the dataset's)."""
    fragments = list(dataset.get_fragments()) if hasattr(dataset, "get_fragments") else []
    return fragments if len(fragments) > 1 else []


def type_disagreement(dataset: Any) -> str:
    """Which file has a column in a type the dataset's cannot hold (the first file's, see every_files_columns):
    pyarrow's cast error names neither. Empty when the files agree or it is one file. A column that widens can
    still fail (an int64 id above 2**53 read as float64, a uint64 above 2**63 as int64): named when no column
    disagrees outright, after its cast is tried file by file (this runs only once a read has failed)."""
    schema = dataset.schema
    widening: list[tuple[Any, pa.Field, pa.Field]] = []
    for fragment in files_of(dataset):
        for column in fragment.physical_schema:
            read_as = schema.field(column.name) if column.name in schema.names else None
            if read_as is None or read_as.type == column.type:
                continue
            if _widened([column, read_as]).type == read_as.type:
                widening.append((fragment, column, read_as))
                continue
            return (
                f"column {column.name!r} is {column.type} in {Path(fragment.path).name} but "
                f"{read_as.type} in the first file that has it: write it with one type in every file"
            )
    for fragment, column, read_as in widening:
        if not _casts(fragment, column.name, read_as.type):
            return (
                f"column {column.name!r} is {column.type} in {Path(fragment.path).name}, read as {read_as.type} "
                "(the type its files' types widen to), and a value does not fit: write it with one type in "
                "every file"
            )
    return ""


def _casts(fragment: Any, column: str, to: pa.DataType) -> bool:
    """Whether a file's column, read in its own type, casts to `to` (safely: as the dataset scan casts)."""
    try:
        fragment.to_table(columns=[column]).column(column).cast(to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def load_labels(location: str, id_column: str, label_column: str) -> pd.Series:
    """Late labels: a Parquet/CSV file (or folder) with the id and the label, as a Series indexed by id."""
    import pandas as pd

    ds = open_dataset(location)
    missing = [c for c in (id_column, label_column) if c not in ds.schema.names]
    if missing:
        raise MonitorError(
            f"{location}: labels need column(s) {', '.join(missing)} (has: {', '.join(ds.schema.names)})"
        )
    _labels_in_each_file(ds, id_column, label_column)
    try:
        table = ds.to_table(columns=[id_column, label_column])
    # A folder whose files disagree on a column's type: said as iter_batches says it for the current data.
    except pa.ArrowInvalid as exc:
        why = type_disagreement(ds)
        raise MonitorError(
            f"{location}: cannot read the labels: {str(exc).splitlines()[0]}{f' ({why})' if why else ''}"
        ) from None
    frame = table.to_pandas()
    raw = frame[label_column]
    labels = pd.to_numeric(raw, errors="coerce")
    ids = frame[id_column]
    _refuse_missing_ids(location, ids, id_column)
    _refuse_conflicting_duplicates(location, ids, labels, id_column)
    series = pd.Series(labels.to_numpy(dtype=np.float64), index=pd.Index(ids), name=label_column)
    unique = series[~series.index.duplicated(keep="first")]
    unparsed = labels.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    # A label that is not a finite number cannot be measured against: it is dropped here, so the join does not
    # count its row as labelled while the error figures leave it out (the result says how many, never silence).
    usable = np.isfinite(unique.to_numpy())
    # Counted over the kept rows: a repeated id is reported once, as a dropped duplicate.
    dropped_unparsed = int(unparsed[~ids.duplicated(keep="first")].sum())
    kept = unique[usable]
    # What loading did, for the result (Monitor.result reports it next to what the join matched).
    kept.attrs["load"] = {
        "source_rows": len(frame),
        "duplicate_rows_dropped": len(series) - len(unique),
        "unparsed": dropped_unparsed,
        "not_finite": int((~usable).sum()) - dropped_unparsed,
    }
    return kept


def _labels_in_each_file(dataset: Any, id_column: str, label_column: str) -> None:
    """A folder of labels is read with the union of its files' columns (every_files_columns): a file without the
    id would join nothing (its rows' null ids were then counted as repeated rows, "same id, same label"), one
    without the label would label nothing. Refused naming the file, as Monitor.check_each_file refuses a file of
    the current data without the id."""
    for fragment in files_of(dataset):
        names = fragment.physical_schema.names
        missing = [c for c in (id_column, label_column) if c not in names]
        if missing and fragment.count_rows():  # a file without rows labels nothing either way
            raise MonitorError(
                f"{fragment.path}: labels need column(s) {', '.join(missing)}, not in this file"
            )


def _refuse_missing_ids(location: str, ids: pd.Series, id_column: str) -> None:
    """A label without an id joins no row, or every row whose id is null too (pandas matches a NaN index to NaN),
    and the duplicate check below cannot see null ids (groupby leaves them out): they were dropped as "repeated
    row(s) (same id, same label)" whatever their labels. An empty id cell of a CSV is such a null (read as text
    columns are, open_dataset)."""
    missing = int(ids.isna().sum())
    if missing:
        raise MonitorError(
            f"{location}: {missing} row(s) have no {id_column!r}; a label without an id cannot be joined: "
            "drop those rows or fill their id"
        )


def _refuse_conflicting_duplicates(location: str, ids: pd.Series, labels: pd.Series, id_column: str) -> None:
    """An id labelled twice with different values cannot be joined: whichever one were kept, the error of the
    other row's prediction would be measured against the wrong truth (and drive a retrain). Identical repeats are
    harmless and dropped (reported in the result)."""
    import pandas as pd

    repeated = ids.duplicated(keep=False)
    if not repeated.any():
        return
    values = pd.DataFrame({"id": ids[repeated], "y": labels[repeated].fillna(np.inf)})
    distinct = values.groupby("id", sort=False)["y"].nunique()
    conflicting = distinct[distinct > 1]
    if len(conflicting):
        examples = ", ".join(repr(i) for i in conflicting.index[:3].tolist())
        raise MonitorError(
            f"{location}: {len(conflicting)} {id_column!r} value(s) appear more than once with different labels "
            f"(e.g. {examples}); the monitor cannot tell which label is right: keep one row per id"
        )


def resolve_window(window: str, timestamp_column: str | None, current: str) -> str:
    """`auto`: weekly when the data has the timestamp column, else one window over everything."""
    if window.strip().lower() != AUTO_WINDOW:
        return window
    names = open_dataset(current).schema.names
    return "weekly" if timestamp_column and timestamp_column in names else "all"


def parse_thresholds(text: str | None) -> dict[str, float]:
    """`--thresholds`: a JSON object or metric=value pairs (the steps' flag, the components' text input)."""
    if not text:
        return {}
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text)
        else:  # metric=value,metric=value
            data = dict(item.split("=", 1) for item in text.split(",") if item.strip())
        return {str(k).strip(): float(v) for k, v in data.items()}
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--thresholds: expected JSON or metric=value pairs ({exc})") from None


# ------------------------------------------------------------------------------------------ windows
class Windows:
    """Window keys in order of appearance and, per chunk, each row's window (as a global index)."""

    def __init__(self, kind: str, size: int, column: str | None) -> None:
        self.kind = kind
        self.size = size
        self.column = column
        self.keys: list[Any] = []
        self.index: dict[Any, int] = {}
        self.rows_seen = 0

    def _ids(self, keys: list[Any]) -> np.ndarray:
        out = np.empty(len(keys), dtype=np.intp)
        for i, k in enumerate(keys):
            j = self.index.get(k)
            if j is None:
                j = self.index[k] = len(self.keys)
                self.keys.append(k)
            out[i] = j
        return out

    def assign(self, batch: pa.RecordBatch) -> tuple[np.ndarray | None, np.ndarray]:
        """(local window per row or None when the chunk is one window, global index of each local window)."""
        n = batch.num_rows
        start = self.rows_seen
        self.rows_seen += n
        if self.kind == "all":
            return None, self._ids(["all"])
        if self.kind == "rows":
            first, last = start // self.size, (start + n - 1) // self.size
            glob = self._ids(list(range(first, last + 1)))
            if first == last:
                return None, glob
            return (np.arange(start, start + n, dtype=np.intp) // self.size) - first, glob
        assert self.column is not None
        days, valid = _days(batch.column(self.column), self.column)
        keys = (
            days if self.kind == "daily" else (days + 3) // 7
        )  # 1970-01-01 was a Thursday: weeks from Monday
        kv = keys[valid] if valid is not None else keys
        if kv.size == 0:
            return None, self._ids([_UNDATED])
        kmin = int(kv.min())
        span = int(kv.max()) - kmin + 1
        present = np.bincount(kv - kmin, minlength=span) > 0
        lookup = np.cumsum(present) - 1
        local = (
            lookup[keys - kmin]
            if valid is None
            else np.where(valid, lookup[np.where(valid, keys, kmin) - kmin], -1)
        )
        labels: list[Any] = (np.flatnonzero(present) + kmin).tolist()
        if valid is not None and not valid.all():
            local = np.where(local < 0, len(labels), local)
            labels.append(_UNDATED)
        if len(labels) == 1:
            return None, self._ids(labels)
        return local.astype(np.intp), self._ids(labels)

    def describe(self, key: Any) -> dict[str, Any]:
        if self.kind == "all":
            return {"window": "all", "start": None, "end": None}
        if key == _UNDATED:
            return {"window": _UNDATED, "start": None, "end": None}
        if self.kind == "rows":
            lo = key * self.size
            return {"window": f"rows {lo}-{lo + self.size - 1}", "start": lo, "end": lo + self.size - 1}
        epoch = dt.date(1970, 1, 1)
        if self.kind == "daily":
            day = epoch + dt.timedelta(days=int(key))
            return {
                "window": day.isoformat(),
                "start": day.isoformat(),
                "end": _days_after(day, 1),
            }
        monday = epoch + dt.timedelta(days=7 * int(key) - 3)
        year, week, _ = monday.isocalendar()
        return {
            "window": f"{year}-W{week:02d}",
            "start": monday.isoformat(),
            "end": _days_after(monday, 7),
        }

    def order(self) -> list[int]:
        """Global indices in chronological order (undated last)."""

        def sort_key(i: int) -> tuple[int, float]:
            k = self.keys[i]
            return (1, 0.0) if k == _UNDATED or k == "all" else (0, float(k))

        return sorted(range(len(self.keys)), key=sort_key)


def _days_after(day: dt.date, days: int) -> str | None:
    """The day a window ends on, or None past datetime.date's last day: a sentinel timestamp (9999-12-31, which
    timestamp[us] holds) is a window of its own, not an OverflowError traceback when the result is written."""
    try:
        return (day + dt.timedelta(days=days)).isoformat()
    except OverflowError:
        return None


def _days(column: pa.Array | pa.ChunkedArray, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Days since 1970-01-01 (UTC) per row, and a validity mask (None when every row has a timestamp)."""
    typ = column.type
    if pa.types.is_null(typ):
        # Arrow infers a CSV column whose cells are all empty as null: every row undated, as the file reads among
        # others that have dates (every_files_columns gives it their type), so the map step counts it the same.
        return np.zeros(len(column), dtype=np.int64), np.zeros(len(column), dtype=bool)
    if pa.types.is_dictionary(typ):
        column = column.cast(typ.value_type)
        typ = column.type
    try:
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            column = pc.cast(column, pa.timestamp("ns"))
            typ = column.type
        if pa.types.is_timestamp(typ):
            per_day = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": _DAY_NS}[typ.unit]
            raw = pc.cast(column, pa.int64())
        elif pa.types.is_date32(typ):
            per_day, raw = 1, pc.cast(pc.cast(column, pa.int32()), pa.int64())
        elif pa.types.is_date64(typ):
            per_day, raw = 86_400_000, pc.cast(column, pa.int64())
        else:
            raise MonitorError(f"timestamp column {name!r} has type {typ}: expected a date or timestamp")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise MonitorError(
            f"timestamp column {name!r}: cannot read as dates ({str(exc).splitlines()[0]})"
        ) from None
    valid = None
    if raw.null_count:
        valid = np.asarray(chunks_numpy(pc.is_valid(raw)), dtype=bool)
    values = chunks_numpy(raw, fill=0)
    return np.floor_divide(values.astype(np.int64), per_day), valid


# ------------------------------------------------------------------------------------------ accumulators
class _Grow:
    """Per-window arrays that grow when new windows appear: counts (ints), count scalars and exact float totals
    (amlops.drift.partial.ExactSums: a chunk's float total is added exactly, so totals merge in any order)."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.counts = np.zeros((0, width), dtype=np.int64)
        self.scalars: dict[str, np.ndarray] = {}
        self.exact: dict[str, ExactSums] = {}

    def ensure(self, n_windows: int, names: Iterable[str], exact: Iterable[str] = ()) -> None:
        for name in exact:
            self.exact.setdefault(name, ExactSums()).ensure(n_windows)
        have = self.counts.shape[0]
        if n_windows <= have and all(name in self.scalars for name in names):
            return
        cap = max(n_windows, 2 * have, 4)
        if cap > have:
            self.counts = np.vstack([self.counts, np.zeros((cap - have, self.width), dtype=np.int64)])
        for name in names:
            old = self.scalars.get(name, np.zeros(0))
            self.scalars[name] = np.concatenate([old, np.zeros(cap - len(old))])


# Per window: counts (integers, exact in float64 far beyond any row count) and float totals kept exact.
NUM_COUNTS = ("nulls", "errors")
NUM_EXACT = ("s1", "s2", "under", "over")


class _NumericFeature:
    def __init__(self, name: str, profile: NumericProfile) -> None:
        self.name = name
        self.ref = M.NumericReference.from_profile(profile)
        self.binner = Binner(profile.edges, profile.counts, discrete=profile.discrete)
        self.n_bins = len(profile.counts)
        self.lo = float(profile.edges[0]) if len(profile.edges) else math.nan
        self.hi = float(profile.edges[-1]) if len(profile.edges) else math.nan
        self.acc = _Grow(self.n_bins + 2)

    def update(self, column: pa.Array | pa.ChunkedArray, local: np.ndarray | None, glob: np.ndarray) -> None:
        from amlops.drift.profile import numeric_values

        acc = self.acc
        acc.ensure(int(glob.max()) + 1, NUM_COUNTS, NUM_EXACT)
        s, ex = acc.scalars, acc.exact
        x, errors = numeric_values(column)
        total = float(x.sum()) if x.size else 0.0
        finite_total = math.isfinite(total)
        if not finite_total:  # NaN (null), inf or a type error somewhere: split them off
            finite = np.isfinite(x)
            nan = np.isnan(x)
            bad = ~finite & ~nan  # +-inf: not a usable number
            if errors is not None:
                nan &= ~errors
                bad |= errors
            if local is None:
                s["nulls"][glob[0]] += int(nan.sum())
                s["errors"][glob[0]] += int(bad.sum())
            else:
                s["nulls"][glob] += np.bincount(local[nan], minlength=len(glob))
                s["errors"][glob] += np.bincount(local[bad], minlength=len(glob))
                local = local[finite]
            x = x[finite]
        if self.n_bins == 0 or x.size == 0:
            return
        bins = self.binner(x)
        width = self.n_bins + 2
        if local is None:
            g = int(glob[0])
            counts = np.bincount(bins, minlength=width)
            acc.counts[g] += counts
            ex["s1"].add(g, total if finite_total else float(x.sum()), x)
            ex["s2"].add(g, float(np.einsum("i,i->", x, x)), x * x)
            if counts[0]:
                d = self.lo - x[bins == 0]
                ex["under"].add(g, float(d.sum()), d)
            if counts[-1]:
                d = x[bins == width - 1] - self.hi
                ex["over"].add(g, float(d.sum()), d)
            return
        nw = len(glob)
        combined = local * width
        combined += bins
        acc.counts[glob] += np.bincount(combined, minlength=nw * width).reshape(nw, width)
        ex["s1"].add_many(glob, np.bincount(local, weights=x, minlength=nw))
        ex["s2"].add_many(glob, np.bincount(local, weights=x * x, minlength=nw))
        under = bins == 0
        if under.any():
            ex["under"].add_many(glob, np.bincount(local[under], weights=self.lo - x[under], minlength=nw))
        over = bins == width - 1
        if over.any():
            ex["over"].add_many(glob, np.bincount(local[over], weights=x[over] - self.hi, minlength=nw))

    def add_missing_rows(self, glob: np.ndarray, local: np.ndarray | None, n: int) -> None:
        """The column is absent in this chunk: every row is a null."""
        self.acc.ensure(int(glob.max()) + 1, NUM_COUNTS, NUM_EXACT)
        if local is None:
            self.acc.scalars["nulls"][glob[0]] += n
        else:
            self.acc.scalars["nulls"][glob] += np.bincount(local, minlength=len(glob))


class _CategoricalFeature:
    def __init__(self, name: str, profile: Any) -> None:
        self.name = name
        self.ref = M.CategoricalReference.from_profile(profile)
        self.k = len(self.ref.index)
        self.acc = _Grow(self.k + 2)  # categories, other/unseen, null
        # A 0/1 flag compared as categories (amlops.drift.kinds) is spelt "0"/"1" when the reference stored numbers
        # and "false"/"true" when it stored booleans: a current file storing it the other way is the same flag, not
        # every row an unseen category (a false alarm; in a folder mixing both, the map step read each file's own).
        dtype = str(getattr(profile, "dtype", ""))
        self._respell: dict[str, str] = {}
        self._other_kind: Callable[[pa.DataType], bool] = lambda t: (
            pa.types.is_integer(t) or pa.types.is_floating(t)
        )
        if dtype == "bool":
            self._respell = {"0": "false", "1": "true"}
        elif dtype.startswith(("int", "uint", "float")):
            self._respell, self._other_kind = {"false": "0", "true": "1"}, pa.types.is_boolean

    def update(self, column: pa.Array | pa.ChunkedArray, local: np.ndarray | None, glob: np.ndarray) -> None:
        acc = self.acc
        acc.ensure(int(glob.max()) + 1, ("errors",))
        if pa.types.is_nested(column.type) or pa.types.is_binary(column.type):
            codes = np.full(len(column), self.k + 1, dtype=np.intp)
            err = np.asarray(chunks_numpy(pc.is_valid(column)), dtype=bool)
            if local is None:
                acc.scalars["errors"][glob[0]] += int(err.sum())
            else:
                acc.scalars["errors"][glob] += np.bincount(local[err], minlength=len(glob))
        else:
            codes = self._codes(column)
        width = self.k + 2
        if local is None:
            acc.counts[glob[0]] += np.bincount(codes, minlength=width)
        else:
            nw = len(glob)
            acc.counts[glob] += np.bincount(local * width + codes, minlength=nw * width).reshape(nw, width)

    def _codes(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        parts = []
        for arr in chunks:
            if not pa.types.is_dictionary(arr.type):
                arr = pc.dictionary_encode(arr)
            dictionary = category_strings(arr.dictionary).to_pylist()
            if self._respell and self._other_kind(arr.dictionary.type):
                dictionary = [self._respell.get(v, v) if v is not None else None for v in dictionary]
            # dictionary position -> reference position; unseen -> "other" (k); null -> k + 1
            mapping = np.array(
                [self.ref.index.get(v, self.k) if v is not None else self.k + 1 for v in dictionary]
                + [self.k + 1],
                dtype=np.intp,
            )
            parts.append(mapping[arrow_numpy(arr.indices, fill=len(dictionary))])  # null -> the null slot
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def add_missing_rows(self, glob: np.ndarray, local: np.ndarray | None, n: int) -> None:
        self.acc.ensure(int(glob.max()) + 1, ("errors",))
        if local is None:
            self.acc.counts[glob[0], self.k + 1] += n
        else:
            self.acc.counts[glob, self.k + 1] += np.bincount(local, minlength=len(glob))


PERF_COUNTS = ("n", "n_ape")
PERF_EXACT = ("abs", "sq", "ape", "abs_y")


class _Performance:
    def __init__(self) -> None:
        self.acc = _Grow(0)

    def update(self, y: np.ndarray, yhat: np.ndarray, local: np.ndarray | None, glob: np.ndarray) -> None:
        self.acc.ensure(int(glob.max()) + 1, PERF_COUNTS, PERF_EXACT)
        s, ex = self.acc.scalars, self.acc.exact
        ok = np.isfinite(y) & np.isfinite(yhat)
        e = np.abs(y - yhat)
        nz = ok & (y != 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ape = np.where(nz, e / np.abs(y), 0.0)
        e = np.where(ok, e, 0.0)
        abs_y = np.abs(np.where(ok, y, 0.0))
        if local is None:
            g = int(glob[0])
            s["n"][g] += ok.sum()
            s["n_ape"][g] += nz.sum()
            ex["abs"].add(g, float(e.sum()), e)
            ex["sq"].add(g, float(np.einsum("i,i->", e, e)), e * e)
            ex["ape"].add(g, float(ape.sum()), ape)
            ex["abs_y"].add(g, float(abs_y.sum()), abs_y)
            return
        nw = len(glob)
        s["n"][glob] += np.bincount(local, weights=ok.astype(np.float64), minlength=nw)
        s["n_ape"][glob] += np.bincount(local, weights=nz.astype(np.float64), minlength=nw)
        ex["abs"].add_many(glob, np.bincount(local, weights=e, minlength=nw))
        ex["sq"].add_many(glob, np.bincount(local, weights=e * e, minlength=nw))
        ex["ape"].add_many(glob, np.bincount(local, weights=ape, minlength=nw))
        ex["abs_y"].add_many(glob, np.bincount(local, weights=abs_y, minlength=nw))

    def sums(self, rows: np.ndarray | slice | int) -> M.RegressionSums:
        s, ex = self.acc.scalars, self.acc.exact
        if not s:
            return M.RegressionSums()
        return M.RegressionSums(
            n=int(np.sum(s["n"][rows])),
            abs_err=ex["abs"].total(rows),
            sq_err=ex["sq"].total(rows),
            ape=ex["ape"].total(rows),
            n_ape=int(np.sum(s["n_ape"][rows])),
            abs_y=ex["abs_y"].total(rows),
        )


# ------------------------------------------------------------------------------------------ the monitor
class Monitor:
    """Feed record batches with `update`; `result()` scores every window and returns the result dict."""

    def __init__(
        self,
        profile: ReferenceProfile,
        options: MonitorOptions | None = None,
        labels: pd.Series | None = None,
    ) -> None:
        self.profile = profile
        self.options = options or MonitorOptions()
        o = self.options
        try:
            self.thresholds = M.Thresholds(o.thresholds)
        except ValueError as exc:
            raise MonitorError(str(exc)) from None
        try:
            M.check_deciding("numeric", o.numeric_metric)
            M.check_deciding("categorical", o.categorical_metric)
        except ValueError as exc:
            raise MonitorError(str(exc)) from None
        kind, size = o.window_kind()
        if kind in ("daily", "weekly") and not o.timestamp_column:
            raise MonitorError(f"window {o.window!r} needs a timestamp column (--timestamp-column)")
        self.windows = Windows(kind, size, o.timestamp_column)
        wanted = o.features if o.features is not None else profile.features
        unknown = [f for f in wanted if f not in profile.numeric and f not in profile.categorical]
        if unknown:
            raise MonitorError(f"feature(s) not in the reference profile: {', '.join(unknown)}")
        self.numeric = {f: _NumericFeature(f, profile.numeric[f]) for f in wanted if f in profile.numeric}
        self.categorical = {
            f: _CategoricalFeature(f, profile.categorical[f]) for f in wanted if f in profile.categorical
        }
        self.prediction: _NumericFeature | None = None
        self.prediction_reference: str | None = None
        if o.prediction_column:
            for role in ("prediction", "target"):
                out = profile.outputs.get(role)
                if out is not None and out.count > 0:
                    self.prediction = _NumericFeature(o.prediction_column, out)
                    self.prediction_reference = role
                    break
        self.labels = labels
        # What loading the labels did (load_labels); kept apart from the Series so a merged monitor reports it.
        self._label_load: dict[str, Any] | None = (
            dict(labels.attrs.get("load", {})) if labels is not None else None
        )
        # Per label: how many rows of the current data it was joined to (the join report in the result).
        self._label_hits = np.zeros(len(labels) if labels is not None else 0, dtype=np.int64)
        self._rows_joined = 0
        self.performance = _Performance()
        self.rows = np.zeros(0, dtype=np.int64)
        self.missing_columns: set[str] = set()
        self._checked = False
        self._pool: ThreadPoolExecutor | None = None
        self._has_prediction = False
        self._has_label = False
        self.extras: list[WindowExtra] = []  # label-free estimates riding on the same pass (run_monitor)

    # -- streaming ---------------------------------------------------------------------------------------
    def columns_needed(self, available: Iterable[str]) -> list[str]:
        """The columns to read from a source with these columns; raises on what is required but absent."""
        names = set(available)
        why = self.missing_requirement(names)
        if why:
            raise MonitorError(why)
        o = self.options
        cols = [*self.numeric, *self.categorical]
        self.missing_columns = {c for c in cols if c not in names}
        extra = []
        if self.windows.kind in ("daily", "weekly"):
            extra.append(o.timestamp_column)
        if o.prediction_column and o.prediction_column in names:
            extra.append(o.prediction_column)
            self._has_prediction = True
        if o.label_column and o.label_column in names and o.label_column != o.prediction_column:
            extra.append(o.label_column)
            self._has_label = True
        if self.labels is not None:
            extra.append(o.id_column)
        self._checked = True
        return list(dict.fromkeys([c for c in cols if c in names] + [c for c in extra if c]))

    def missing_requirement(self, names: Collection[str], where: str = "the current data") -> str | None:
        """Why data with these columns cannot be monitored (a column every row needs is absent), or None. A
        feature or the prediction absent from some rows is not one: those rows count as nulls."""
        o = self.options
        cols = [*self.numeric, *self.categorical]
        if cols and not any(c in names for c in cols):
            return f"{where} has none of the profile's features ({', '.join(cols[:5])}...); is it the right file?"
        if self.windows.kind in ("daily", "weekly") and o.timestamp_column not in names:
            return f"timestamp column {o.timestamp_column!r} not in {where}"
        if self.labels is not None and (not o.id_column or o.id_column not in names):
            return f"labels are joined on the id column {o.id_column!r}, not in {where}"
        return None

    def check_each_file(self, dataset: Any) -> None:
        """A folder is read with the union of its files' columns (every_files_columns): a file lacking a column
        every row needs (the timestamp, the id the labels join on, all the features) would pass as nulls, its rows
        undated or unlabelled. Refused instead, naming the file, as the map step refuses it (skip_file)."""
        for fragment in files_of(dataset):
            self.skip_file(fragment.path, fragment.physical_schema.names, fragment.count_rows)

    def skip_file(self, path: str, names: Collection[str], count_rows: Callable[[], int]) -> bool:
        """True for a file that lacks a column every row needs but has no rows (an empty frame written for a day
        without data: nothing to leave undated); a file with rows that lacks one is refused, naming it."""
        why = self.missing_requirement(set(names), "this file")
        if why is None:
            return False
        if count_rows():
            raise MonitorError(f"{path}: {why}")
        return True

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        if not self._checked:
            self.columns_needed(batch.schema.names)
        n = batch.num_rows
        if n == 0:
            return
        local, glob = self.windows.assign(batch)
        need = int(glob.max()) + 1
        if len(self.rows) < need:
            self.rows = np.concatenate(
                [self.rows, np.zeros(max(need, 2 * len(self.rows)) - len(self.rows), np.int64)]
            )
        if local is None:
            self.rows[glob[0]] += n
        else:
            self.rows[glob] += np.bincount(local, minlength=len(glob))
        features: list[_NumericFeature | _CategoricalFeature] = [
            *self.numeric.values(),
            *self.categorical.values(),
        ]
        if self.prediction is not None and self._has_prediction:
            features.append(self.prediction)

        def one(feature: _NumericFeature | _CategoricalFeature) -> None:
            if feature.name in self.missing_columns:
                feature.add_missing_rows(glob, local, n)
            else:
                feature.update(batch.column(feature.name), local, glob)

        # Each feature owns its accumulators (and each thread its scratch buffers), so they can run side by
        # side.
        pool = self._executor()
        if pool is None:
            for feature in features:
                one(feature)
        else:
            for _ in pool.map(one, features):
                pass
        o = self.options
        if self._has_prediction and o.prediction_column:
            pred_col = batch.column(o.prediction_column)
            y = self._labels_for(batch)
            if y is not None:
                from amlops.drift.profile import numeric_values

                self.performance.update(y, numeric_values(pred_col)[0], local, glob)
        _update_extras(self, batch, local, glob)

    def _executor(self) -> ThreadPoolExecutor | None:
        threads = self.options.threads or min(os.cpu_count() or 1, 4)
        if threads <= 1:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="amlops-monitor")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _labels_for(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray | None:
        from amlops.drift.profile import numeric_values

        o = self.options
        if self.labels is not None and o.id_column:
            ids = batch.column(o.id_column).to_pandas()
            index = self.labels.index
            if index.dtype.kind != ids.dtype.kind and (
                index.dtype.kind in "OUSiu" and ids.dtype.kind in "OUSiu"
            ):
                # 123 in the data and "123" in a CSV of labels are the same id.
                index, ids = index.astype(str), ids.astype(str)
            pos = index.get_indexer(ids)
            matched = pos[pos >= 0]
            self._label_hits += np.bincount(matched, minlength=len(self._label_hits))
            self._rows_joined += len(ids)
            values = self.labels.to_numpy()
            return np.where(pos >= 0, values[np.maximum(pos, 0)], np.nan)
        if self._has_label and o.label_column:
            return numeric_values(batch.column(o.label_column))[0]
        return None

    # -- scoring -------------------------------------------------------------------------------------------
    def result(self) -> MonitorResult:
        o = self.options
        order = self.windows.order()
        windows = [self._score(i, self.windows.describe(self.windows.keys[i])) for i in order]
        all_rows = np.arange(len(self.windows.keys))
        overall = self._score(all_rows, {"window": "overall", "start": None, "end": None}, distributions=True)
        evaluated = windows if self.windows.kind != "all" else [overall]
        evaluated = [w for w in evaluated if w["status"] == "ok"]
        drifted_windows = [w for w in evaluated if w["drift_detected"]]
        drifted_features: list[str] = []
        for w in drifted_windows:
            drifted_features += [f for f in w["drifted_features"] if f not in drifted_features]
        findings = []
        # Data quality is reported for every window, judged or not: a column that is all nulls is a fact on
        # 20 rows too, and it is most worth knowing exactly when there are too few rows to judge drift.
        for w in windows if self.windows.kind != "all" else [overall]:
            for f in w["data_quality_findings"]:
                findings.append({"window": w["window"], **f})
        status = "insufficient_data" if not evaluated else "drift" if drifted_windows else "no_drift"
        performance = overall.get("performance")
        verdict = {
            "status": status,
            "drift_detected": bool(drifted_windows),
            "drifted_features": drifted_features,
            "first_drifted_window": drifted_windows[0]["window"] if drifted_windows else None,
            "drifted_window_count": len(drifted_windows),
            "window_count": len(windows),
            "evaluated_window_count": len(evaluated),
            "prediction_drift": bool(
                any(w.get("prediction_drift", {}) and w["prediction_drift"]["drifted"] for w in evaluated)
            ),
            "data_quality_findings": findings,
            "performance": performance,
        }
        verdict["summary"] = _summary(verdict, windows, o)
        if self.windows.kind != "all":
            _overall_follows_verdict(overall, verdict)
        result = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "settings": {
                "window": o.window,
                "timestamp_column": o.timestamp_column,
                "id_column": o.id_column,
                "prediction_column": o.prediction_column,
                "label_column": o.label_column,
                "numeric_metric": o.numeric_metric,
                "categorical_metric": o.categorical_metric,
                "min_window_rows": o.min_window_rows,
                "thresholds": self.thresholds.effective(),
            },
            "reference": {
                "row_count": self.profile.row_count,
                "created_at": self.profile.created_at,
                "numeric_features": list(self.numeric),
                "categorical_features": list(self.categorical),
                "prediction_reference": self.prediction_reference,
                "metadata": self.profile.metadata,
            },
            "current": {"row_count": int(self.rows.sum()), "missing_columns": sorted(self.missing_columns)},
            "verdict": verdict,
            "overall": overall,
            "windows": windows if self.windows.kind != "all" else [],
        }
        if self._label_load is not None:
            result["labels"], result["warnings"] = self._label_report()
        return MonitorResult.model_validate(result)

    def _label_report(self) -> tuple[dict[str, Any], list[str]]:
        """What the late-label join did (duplicates dropped, values that did not parse, ids that matched
        nothing), and a warning line for each thing that deserves one: never silence."""
        assert self._label_load is not None
        load = dict(self._label_load)
        hits = self._label_hits
        report = {
            **load,
            "labels": len(hits),
            "matched_ids": int(np.count_nonzero(hits)),
            "unmatched_ids": int(np.count_nonzero(hits == 0)),
            "rows_joined": int(hits.sum()),
            "rows_without_label": int(self._rows_joined - hits.sum()),
            "ids_on_several_rows": int(np.count_nonzero(hits > 1)),
        }
        warnings = []
        if load.get("duplicate_rows_dropped"):
            warnings.append(
                f"labels: {load['duplicate_rows_dropped']} repeated row(s) (same id, same label) were dropped"
            )
        if load.get("unparsed"):
            warnings.append(f"labels: {load['unparsed']} label value(s) are not numbers and were ignored")
        if load.get("not_finite"):
            warnings.append(
                f"labels: {load['not_finite']} label value(s) are empty or not finite and were ignored"
            )
        if not self._has_prediction:
            warnings.append("labels were given but the current data has no prediction column: not joined")
        elif report["matched_ids"] == 0:
            warnings.append(
                f"labels: none of the {len(hits)} label id(s) matches an id of the current data: no performance"
            )
        elif report["unmatched_ids"]:
            warnings.append(
                f"labels: {report['unmatched_ids']} of {len(hits)} label id(s) match no current row"
            )
        if report["ids_on_several_rows"]:
            warnings.append(
                f"labels: {report['ids_on_several_rows']} id(s) occur on several rows of the current data; "
                "each of those rows was scored against the same label"
            )
        return report, warnings

    def _score(self, rows: Any, info: dict[str, Any], distributions: bool = False) -> dict[str, Any]:
        o = self.options
        n_rows = int(np.sum(self.rows[rows])) if len(self.rows) else 0
        status = "ok" if n_rows >= max(o.min_window_rows, 1) else "insufficient_rows"
        features: dict[str, Any] = {}
        findings: list[dict[str, Any]] = []
        for name, num in self.numeric.items():
            features[name] = self._score_numeric(num, rows, n_rows, o.numeric_metric, distributions)
        for name, cat in self.categorical.items():
            features[name] = self._score_categorical(cat, rows, n_rows, distributions)
        for name, feat in features.items():
            if name in self.missing_columns:
                feat["missing_column"] = True
            if status != "ok":
                feat["drifted"] = False
            for metric, entry in feat["data_quality"].items():
                if entry["exceeded"]:
                    findings.append(
                        {
                            "feature": name,
                            "metric": metric,
                            "value": entry["value"],
                            "threshold": entry["threshold"],
                            "reference": entry["reference"],
                        }
                    )
        ranked = sorted(features, key=lambda f: _rank_key(features[f]), reverse=True)
        drifted = [f for f in ranked if features[f]["drifted"]]
        out: dict[str, Any] = {
            **info,
            "row_count": n_rows,
            "status": status,
            "drift_detected": bool(drifted),
            "drifted_features": drifted,
            "features": {f: features[f] for f in ranked},
            "data_quality_findings": findings,
            "prediction_drift": None,
            "performance": None,
        }
        if self.prediction is not None and self._has_prediction:
            pred = self._score_numeric(self.prediction, rows, n_rows, o.numeric_metric, distributions)
            pred["reference_role"] = self.prediction_reference
            if status != "ok":
                pred["drifted"] = False
            out["prediction_drift"] = pred
        if self.performance.acc.scalars:
            perf: dict[str, Any] = dict(self.performance.sums(rows).result())
            baseline = (
                self.profile.metadata.get("performance") if isinstance(self.profile.metadata, dict) else None
            )
            if isinstance(baseline, dict):
                perf["reference"] = {k: baseline.get(k) for k in M.PERFORMANCE_METRICS if k in baseline}
            out["performance"] = perf
        _score_extras(self, rows, out)
        return out

    def _score_numeric(
        self, num: _NumericFeature, rows: Any, n_rows: int, deciding: str, distributions: bool
    ) -> dict[str, Any]:
        acc = num.acc
        acc.ensure(len(self.windows.keys), NUM_COUNTS, NUM_EXACT)
        counts = acc.counts[rows]
        s, ex = acc.scalars, acc.exact
        if counts.ndim == 2:
            counts = counts.sum(axis=0)
        under, over = ex["under"].total(rows), ex["over"].total(rows)
        nulls, errors = int(np.sum(s["nulls"][rows])), int(np.sum(s["errors"][rows]))
        valid = int(counts.sum())
        metrics = M.numeric_drift(num.ref, counts, under, over, self.thresholds)
        p = num.ref.profile
        s1, s2 = ex["s1"].total(rows), ex["s2"].total(rows)
        mean = s1 / valid if valid else None
        var = max(s2 / valid - (s1 / valid) ** 2, 0.0) if valid else None
        oob = int(counts[0] + counts[-1]) if len(counts) >= 2 else 0
        quality = M.data_quality(n_rows, nulls, errors, oob, valid, p.null_rate, self.thresholds)
        out: dict[str, Any] = {
            "type": "numeric",
            "deciding_metric": deciding,
            "drifted": bool(metrics[deciding]["exceeded"]),
            "metrics": metrics,
            "data_quality": quality,
            "summary": {
                "count": valid,
                "null_count": nulls,
                "type_error_count": errors,
                "below_range": int(counts[0]) if len(counts) else 0,
                "above_range": int(counts[-1]) if len(counts) else 0,
                "mean": _num(mean),
                "std": _num(math.sqrt(var) if var is not None else None),
                "reference_mean": _num(p.mean),
                "reference_std": _num(p.std),
                "reference_min": _num(p.min),
                "reference_max": _num(p.max),
            },
        }
        if distributions and len(p.counts):
            out["distribution"] = _numeric_distribution(num.ref, counts, over, under)
        return out

    def _score_categorical(
        self, cat: _CategoricalFeature, rows: Any, n_rows: int, distributions: bool
    ) -> dict[str, Any]:
        acc = cat.acc
        acc.ensure(len(self.windows.keys), ("errors",))
        counts = acc.counts[rows]
        if counts.ndim == 2:
            counts = counts.sum(axis=0)
        errors = int(np.sum(acc.scalars["errors"][rows]))
        nulls = int(counts[-1]) - errors
        dist = counts[:-1].astype(np.float64)
        valid = int(dist.sum())
        metrics = M.categorical_drift(cat.ref, dist, self.thresholds)
        deciding = self.options.categorical_metric
        p = cat.ref.profile
        unseen = int(counts[cat.k])
        quality = M.data_quality(n_rows, nulls, errors, unseen, valid, p.null_rate, self.thresholds)
        out: dict[str, Any] = {
            "type": "categorical",
            "deciding_metric": deciding,
            "drifted": bool(metrics[deciding]["exceeded"]),
            "metrics": metrics,
            "data_quality": quality,
            "summary": {
                "count": valid,
                "null_count": nulls,
                "type_error_count": errors,
                "unseen_count": unseen,
                "categories": len(p.categories),
                "reference_other_count": p.other_count,
            },
        }
        if distributions:
            out["distribution"] = _categorical_distribution(cat.ref, dist)
        return out


# ------------------------------------------------------------------------------------------ entry point
def run_monitor(
    current: str | Iterable[pa.RecordBatch | pa.Table],
    profile: ReferenceProfile,
    options: MonitorOptions | None = None,
    labels: pd.Series | None = None,
    progress: Callable[[int], None] | None = None,
    extras: Iterable[WindowExtra] = (),
) -> MonitorResult:
    """Monitor a file/folder/URL (or an iterable of batches) against the profile. `extras` add label-free
    estimates per window (`estimate_extra`, `multivariate_extra`)."""
    mon = Monitor(profile, options, labels)
    mon.extras.extend(extras)
    o = mon.options
    if isinstance(current, str | Path):
        ds = open_dataset(str(current), dictionary_columns=mon.categorical)
        columns = mon.columns_needed(ds.schema.names)
        mon.check_each_file(ds)
        columns += [c for c in _extra_columns(mon, ds.schema.names) if c not in columns]
        batches: Iterable[pa.RecordBatch | pa.Table] = iter_batches(ds, columns, o.chunk_rows)
    else:
        batches = current
    try:
        for batch in batches:
            mon.update(batch)
            if progress is not None:
                progress(batch.num_rows)
    finally:
        mon.close()
    if mon.rows.sum() == 0:
        raise MonitorError("the current data has no rows")
    return mon.result()


# ------------------------------------------------------------------------------------------ helpers
def _rank_key(feature: dict[str, Any]) -> tuple[int, float]:
    """Sort features by drift: drifted first, then by the deciding metric relative to its threshold."""
    entry = feature["metrics"][feature["deciding_metric"]]
    v, t = entry["value"], entry["threshold"]
    if v is None:
        return (int(feature["drifted"]), -1.0)
    if M.drift_metric(feature["deciding_metric"]).p_value:
        return (int(feature["drifted"]), (t / v) if v > 0 else math.inf)
    return (int(feature["drifted"]), v / t if t > 0 else v)


def _numeric_distribution(
    ref: M.NumericReference, counts: np.ndarray, over_sum: float, under_sum: float
) -> dict[str, Any]:
    """Reference vs current shares on DISPLAY_BINS equal-width bins over the bulk of both distributions.

    Re-binned from the fine histograms (uniform inside a fine bin); values beyond the reference range are
    given apart, as shares and their mean, since the profile keeps no finer picture of them.
    """
    p = ref.profile
    c = p.counts.astype(np.float64)
    cum_ref = ref.cdf
    n_cur = float(counts.sum())
    inner = counts[1:-1].astype(np.float64)
    cum_cur = np.concatenate([[0.0], np.cumsum(inner)]) / max(inner.sum(), 1.0)
    # Display range: the central 99.8% of the reference, widened to the current's bulk inside the range.
    lo = float(np.interp(0.001, cum_ref, p.edges))
    hi = float(np.interp(0.999, cum_ref, p.edges))
    if inner.sum() > 0:
        lo = min(lo, float(np.interp(0.001, cum_cur, p.edges)))
        hi = max(hi, float(np.interp(0.999, cum_cur, p.edges)))
    if p.discrete or not hi > lo:
        lo, hi = float(p.edges[0]), float(p.edges[-1])
    if p.discrete and len(c) <= DISPLAY_BINS:
        edges = p.edges.copy()
        ref_share = c / c.sum()
        cur_share = inner / n_cur if n_cur else inner * 0
    else:
        edges = np.linspace(lo, hi, DISPLAY_BINS + 1)
        ref_share = np.diff(np.interp(edges, p.edges, cum_ref))
        cur_share = np.diff(np.interp(edges, p.edges, cum_cur)) * (inner.sum() / n_cur if n_cur else 0.0)
    below = float(counts[0] / n_cur) if n_cur else 0.0
    above = float(counts[-1] / n_cur) if n_cur else 0.0
    return {
        "edges": [float(e) for e in edges],
        "reference": [round(float(v), 6) for v in ref_share],
        "current": [round(float(v), 6) for v in cur_share],
        "current_below": below,
        "current_above": above,
        "current_below_mean": float(p.edges[0] - under_sum / counts[0]) if counts[0] else None,
        "current_above_mean": float(p.edges[-1] + over_sum / counts[-1]) if counts[-1] else None,
        "reference_min": _num(p.min),
        "reference_max": _num(p.max),
        "discrete": p.discrete,
    }


def _categorical_distribution(ref: M.CategoricalReference, counts: np.ndarray) -> dict[str, Any]:
    r = ref.ref_counts / ref.ref_counts.sum() if ref.ref_counts.sum() else ref.ref_counts
    c = counts / counts.sum() if counts.sum() else counts
    names = [*ref.index, "(other)"]
    top = np.argsort(-np.maximum(r, c), kind="stable")[:DISPLAY_CATEGORIES]
    rest = np.setdiff1d(np.arange(len(names)), top)
    out_names = [names[i] for i in top]
    ref_vals = [float(r[i]) for i in top]
    cur_vals = [float(c[i]) for i in top]
    if rest.size:
        out_names.append(f"({rest.size} more)")
        ref_vals.append(float(r[rest].sum()))
        cur_vals.append(float(c[rest].sum()))
    return {
        "categories": out_names,
        "reference": [round(v, 6) for v in ref_vals],
        "current": [round(v, 6) for v in cur_vals],
    }


def _overall_follows_verdict(overall: dict[str, Any], verdict: dict[str, Any]) -> None:
    """With windows, the verdict rests on the judged windows; the overall window keeps the pooled values (for
    the distributions) but its drift flags say what the verdict says, so result.json never holds
    `overall.drift_detected: true` beside `verdict.drift_detected: false`."""
    drifted = verdict["drifted_features"]
    overall["drift_detected"] = verdict["drift_detected"]
    overall["drifted_features"] = list(drifted)
    for name, feature in overall["features"].items():
        feature["drifted"] = name in drifted
    if overall.get("prediction_drift"):
        overall["prediction_drift"]["drifted"] = verdict["prediction_drift"]


def _summary(verdict: dict[str, Any], windows: list[dict[str, Any]], o: MonitorOptions) -> str:
    if verdict["status"] == "insufficient_data":
        largest = max((w["row_count"] for w in windows), default=0)
        total = sum(w["row_count"] for w in windows)
        return (
            f"Not judged: every {o.window} window is below the minimum ({largest:,} < {o.min_window_rows:,} "
            f"rows in the largest). Use a longer window (--window all judges all {total:,} rows at once) or "
            f"lower the minimum (--min-window-rows {max(largest, 1)}; monitor.min_window_rows in amlops.yaml)."
        )
    if verdict["drift_detected"]:
        feats = verdict["drifted_features"]
        first = verdict["first_drifted_window"]
        if first in (None, "overall"):
            return f"Drift detected in {len(feats)} feature(s): {', '.join(feats)}."
        since = {f: next(w["window"] for w in windows if f in w["drifted_features"]) for f in feats}
        named = ", ".join(f"{f} (from {since[f]})" for f in feats)
        return f"Drift detected in {len(feats)} feature(s): {named}."
    return "No drift detected."


# ------------------------------------------------------------------------------------------ per-window extras
class WindowExtra:
    """Something computed per window beside the drift metrics, in the same streamed pass: `update` gets each
    chunk with its rows' windows, `score` adds its key to a window's result dict."""

    key = ""
    columns: tuple[str, ...] = ()  # extra columns to read when present (beyond the profile's features)
    needs_prediction = False

    def update(self, mon: Monitor, batch: pa.RecordBatch | pa.Table, local: Any, glob: np.ndarray) -> None:
        raise NotImplementedError

    def score(self, mon: Monitor, rows: Any) -> dict[str, Any] | None:
        raise NotImplementedError

    # A map step's partial carries each extra's per-window state (amlops.drift.partial): what tells two extras
    # apart (partials of different ones must not merge) and the state, an amlops.drift.estimate.BottomK.
    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def samples(self) -> Any:
        raise NotImplementedError

    # The columns whose content picks a row into the samples: the union over a monitor's extras is hashed once per
    # chunk (amlops.drift.estimate.ChunkHashes), the same function in one pass and in every map step.
    def hash_columns(self, mon: Monitor) -> tuple[list[str], list[str]]:
        raise NotImplementedError


def _chunk_hashes(mon: Monitor) -> Any:
    """The monitor's shared ChunkHashes, made at the first chunk from every extra's hash columns."""
    from amlops.drift.estimate import ChunkHashes

    for extra in mon.extras:
        shared = getattr(extra, "_hashes", None)
        if shared is not None:
            return shared
    numeric: list[str] = []
    categorical: list[str] = []
    for extra in mon.extras:
        n, c = extra.hash_columns(mon)
        numeric += n
        categorical += c
    shared = ChunkHashes(numeric, categorical)
    for extra in mon.extras:
        extra._hashes = shared  # type: ignore[attr-defined]
    return shared


def _extra_columns(mon: Monitor, available: Iterable[str]) -> list[str]:
    names = set(available)
    return [c for extra in mon.extras for c in extra.columns if c in names]


def _update_extras(mon: Monitor, batch: pa.RecordBatch | pa.Table, local: Any, glob: np.ndarray) -> None:
    for extra in mon.extras:
        if extra.needs_prediction and not mon._has_prediction:
            continue
        extra.update(mon, batch, local, glob)


def _score_extras(mon: Monitor, rows: Any, out: dict[str, Any]) -> None:
    for extra in mon.extras:
        value = extra.score(mon, rows)
        if value is not None:
            out[extra.key] = value


class _EstimateExtra(WindowExtra):
    key = "estimated_performance"
    needs_prediction = True

    def __init__(self, estimator: Any) -> None:
        from amlops.drift.estimate import EstimateSample

        self.estimator = estimator
        self.sampled = EstimateSample(estimator)
        self.columns = tuple(estimator.features)

    def update(self, mon: Monitor, batch: pa.RecordBatch | pa.Table, local: Any, glob: np.ndarray) -> None:
        from amlops.drift.profile import numeric_values

        column = mon.options.prediction_column
        assert column is not None
        prediction = numeric_values(batch.column(column))[0]
        self.sampled.update(batch, prediction, local, glob, _chunk_hashes(mon).of(batch))

    def hash_columns(self, mon: Monitor) -> tuple[list[str], list[str]]:
        numeric = [
            *self.estimator.numeric,
            *([mon.options.prediction_column] if mon.options.prediction_column else []),
        ]
        return numeric, list(self.estimator.categorical)

    def score(self, mon: Monitor, rows: Any) -> dict[str, Any] | None:
        if not mon._has_prediction:
            return None
        return self.sampled.window(rows)

    def identity(self) -> dict[str, Any]:
        return self.sampled.identity()

    def samples(self) -> Any:
        self.sampled.flush()
        return self.sampled.sample


def estimate_extra(estimator: Any) -> WindowExtra:
    """Per-window MAE/RMSE estimated without labels by a fitted `amlops.drift.estimate.ErrorEstimator`."""
    return _EstimateExtra(estimator)


class _MultivariateExtra(WindowExtra):
    key = "multivariate"

    def __init__(self, pca: Any) -> None:
        from amlops.drift.multivariate import MultivariateSample

        self.pca = pca
        self.sampled = MultivariateSample(pca)
        self.columns = tuple(pca.numeric)

    def update(self, mon: Monitor, batch: pa.RecordBatch | pa.Table, local: Any, glob: np.ndarray) -> None:
        self.sampled.update(batch, local, glob, _chunk_hashes(mon).of(batch))

    def hash_columns(self, mon: Monitor) -> tuple[list[str], list[str]]:
        return list(self.pca.numeric), []

    def score(self, mon: Monitor, rows: Any) -> dict[str, Any] | None:
        out: dict[str, Any] = self.sampled.window(rows)
        if out["count"] < max(mon.options.min_window_rows, 1):
            out["exceeded"] = False  # a window too small to judge is not judged on this either
        return out

    def identity(self) -> dict[str, Any]:
        return self.sampled.identity()

    def samples(self) -> Any:
        return self.sampled.sample


def multivariate_extra(pca: Any) -> WindowExtra:
    """Per-window PCA reconstruction error (`amlops.drift.multivariate.PCADrift`): joint-distribution drift."""
    return _MultivariateExtra(pca)
