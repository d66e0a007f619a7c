"""score: batch-score Parquet/CSV files with an MLflow model; one Parquet file of predictions per input file.

One code path, three ways in:

- the AML `parallel` component (components/score.yml, run_function): `init()` runs once per worker with the
  program arguments in sys.argv; `run(mini_batch)` scores a list of input files and returns one summary line
  per file (the driver appends them to `append_row_to`);
- `python -m amlops.steps.score --data PATH --model DIR --predictions DIR --model-version N` (one process;
  `--output` is accepted there too);
- `score_path(...)` / `score_files(...)` from Python.

Every output row is the input row (all its columns) plus `prediction`, `model_version` and `scored_at` (UTC):
each prediction traces to its input row (the id column) and to the model version that made it.

Input is checked against the model's signature (required columns, types) for *every* file before anything
is written: Parquet files by their footer (no data read), CSV files by parsing the signature's columns. A
violation fails with one line naming the file, the column and the reason, and the output folder stays empty.

The sklearn flavor's pickled estimator is loaded directly (what mlflow.sklearn.load_model unpickles, without
importing MLflow in every worker) and fed the signature's columns converted from Arrow once; other flavors go
through mlflow.pyfunc.
"""

# No `from __future__ import annotations` here: a parallel driver may load this file as a module that is not
# in sys.modules, and dataclasses cannot resolve the string annotations of such a module (AttributeError).
import argparse
import gc
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from amlops.data.io import CSV_SUFFIXES, NA_VALUES, PARQUET_SUFFIXES
from amlops.steps._threads import openmp_controller, openmp_threads_for

MLMODEL_FILE = "MLmodel"
DEFAULT_ID_COLUMN = "row_id"
DEFAULT_PREDICTION_COLUMN = "prediction"
VERSION_COLUMN = "model_version"
SCORED_AT_COLUMN = "scored_at"


def _file_mode() -> int:
    """The mode an ordinary new file gets under this process's umask (0644 under the usual 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


# Read once at import, before any worker thread exists (umask() sets as it reads).
FILE_MODE = _file_mode()
# MLflow column types the scorer feeds, as an error message names them.
_TYPE_WORDS = {
    "double": "a number (double)",
    "float": "a number (float)",
    "long": "an integer (long)",
    "integer": "an integer (int32)",
    "boolean": "a boolean",
    "string": "text (string)",
    "datetime": "a date or timestamp",
    "binary": "bytes",
}
_NULL_FREE_TYPES = {"long", "integer", "boolean"}  # numpy has no missing value for these
SMALL_FILE_ROWS = 50_000
ROWS_PER_SLICE = 25_000  # below this, a slice's per-call overhead outweighs a second thread


class ScoreInputError(ValueError):
    """Input (or a model) the scorer cannot use; one line naming the file, the column and why."""


# ------------------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class Column:
    name: str
    type: str  # MLflow column type: double, float, long, integer, boolean, string, datetime, binary
    required: bool = True


@dataclass
class Model:
    """A loaded model and what the scorer needs to know about its input."""

    predictor: Any  # anything with .predict(DataFrame)
    columns: tuple[Column, ...]
    folder: Path
    flavor: str  # "sklearn" or "python_function"
    metadata: dict[str, Any]

    def _amlops(self, key: str) -> str | None:
        value = (self.metadata.get("amlops") or {}).get(key)
        return str(value) if value else None

    @property
    def id_column(self) -> str | None:
        return self._amlops("id_column")

    @property
    def prediction_column(self) -> str | None:
        return self._amlops("prediction_column")


def _model_root(path: Path) -> Path:
    """The folder holding MLmodel: the path itself or its only subfolder (a downloaded `models:/` input)."""
    if (path / MLMODEL_FILE).is_file():
        return path
    inner = [p for p in path.iterdir() if (p / MLMODEL_FILE).is_file()] if path.is_dir() else []
    if len(inner) == 1:
        return inner[0]
    raise ScoreInputError(f"{path}: not an MLflow model folder (no {MLMODEL_FILE} file)")


def _signature_columns(mlmodel: dict[str, Any], where: Path) -> tuple[Column, ...]:
    raw = (mlmodel.get("signature") or {}).get("inputs")
    if not raw:
        raise ScoreInputError(
            f"{where}: the model has no input signature; log it with one (mlflow.models.infer_signature) "
            "so that input can be checked before predictions are written"
        )
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise ScoreInputError(f"{where}: the model's signature is not valid JSON ({exc.msg})") from None
    columns = []
    for spec in specs:
        name, typ = spec.get("name"), spec.get("type")
        if not name or typ not in _TYPE_WORDS:
            raise ScoreInputError(
                f"{where}: signature input {spec!r} is not a named column of type {', '.join(_TYPE_WORDS)} "
                "(tensor and object signatures are not supported for batch scoring)"
            )
        columns.append(Column(str(name), str(typ), bool(spec.get("required", True))))
    return tuple(columns)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: unpickling a model imports scikit-learn (and SciPy) and builds its
    trees, hundreds of thousands of new objects that the collector would scan again and again as they are
    created, for nothing (nothing cyclic is freed). Measured: a worker's start-up 10 % shorter."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_model(path: str | Path) -> Model:
    """Load an MLflow model folder: the sklearn flavor's pickled estimator when there is one, else pyfunc."""
    import yaml

    folder = _model_root(Path(path))
    try:
        mlmodel = yaml.safe_load((folder / MLMODEL_FILE).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ScoreInputError(f"{folder / MLMODEL_FILE}: cannot read the model description ({exc})") from None
    columns = _signature_columns(mlmodel, folder)
    flavors = mlmodel.get("flavors") or {}
    sk = flavors.get("sklearn") or {}
    metadata = dict(mlmodel.get("metadata") or {})
    if sk.get("pickled_model") and sk.get("serialization_format", "cloudpickle") in ("cloudpickle", "pickle"):
        import cloudpickle

        with (folder / str(sk["pickled_model"])).open("rb") as fh, gc_paused():
            predictor = cloudpickle.load(fh)
        return Model(predictor, columns, folder, "sklearn", metadata)
    if "python_function" not in flavors:
        raise ScoreInputError(f"{folder}: the model has neither a sklearn nor a python_function flavor")
    import mlflow.pyfunc

    return Model(mlflow.pyfunc.load_model(str(folder)), columns, folder, "python_function", metadata)


# ------------------------------------------------------------------------------------------------ options
@dataclass(frozen=True)
class Options:
    """What the scorer adds to each row, which column identifies a row, and how many threads predict."""

    model_version: str
    id_column: str | None = DEFAULT_ID_COLUMN
    prediction_column: str = DEFAULT_PREDICTION_COLUMN
    threads: int = 0  # threads to predict with (0: one per core)

    @property
    def added_columns(self) -> tuple[str, ...]:
        return (self.prediction_column, VERSION_COLUMN, SCORED_AT_COLUMN)


def resolve_options(
    model: Model,
    model_version: str,
    id_column: str | None = None,
    prediction_column: str | None = None,
    threads: int = 0,
) -> Options:
    """Options from the arguments, else the model's metadata (train records its id and prediction columns).
    An empty id column means: no row id check."""
    if not str(model_version or "").strip():
        raise ScoreInputError(
            "a model version is required: every prediction records the version that made it"
        )
    return Options(
        model_version=str(model_version).strip(),
        id_column=(model.id_column or DEFAULT_ID_COLUMN) if id_column is None else (id_column or None),
        prediction_column=prediction_column or model.prediction_column or DEFAULT_PREDICTION_COLUMN,
        threads=max(0, int(threads)),
    )


# ------------------------------------------------------------------------------------------------ input files
def is_data_file(path: Path) -> bool:
    name = path.name.lower()
    return not name.startswith((".", "_")) and name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES)


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES)


def data_files(path: str | Path) -> list[Path]:
    """The files a path stands for: itself, or every CSV/Parquet file under a folder (sorted; names starting
    with `.` or `_` are skipped, as Spark and pyarrow do)."""
    p = Path(path)
    if not p.exists():
        raise ScoreInputError(f"{p}: not found")
    if p.is_file():
        if not is_data_file(p):
            raise ScoreInputError(f"{p}: not a .csv, .csv.gz or .parquet file")
        return [p]
    files = sorted(f for f in p.rglob("*") if f.is_file() and is_data_file(f))
    if not files:
        raise ScoreInputError(f"{p}: folder has no .csv, .csv.gz or .parquet files")
    return files


def output_name(path: Path, root: Path | None) -> Path:
    """Where a file's predictions go inside the output folder: its path relative to the input folder, with the
    suffix `.parquet` (a.csv -> a.parquet, 2024/w01.parquet -> 2024/w01.parquet)."""
    rel = Path(path.name)
    if root is not None:
        try:
            rel = path.resolve().relative_to(root.resolve())
        except ValueError:
            rel = Path(path.name)
    name = rel.name
    for suffix in (*CSV_SUFFIXES, *PARQUET_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return rel.with_name(name + ".parquet")


def _arrow_type(mlflow_type: str) -> pa.DataType:
    return {
        "double": pa.float64(),
        "float": pa.float32(),
        "long": pa.int64(),
        "integer": pa.int32(),
        "boolean": pa.bool_(),
        "string": pa.large_string(),
        "datetime": pa.timestamp("ns"),
        "binary": pa.large_binary(),
    }[mlflow_type]


def _type_ok(arrow_type: pa.DataType, expected: str) -> bool:
    """Whether a column of this Arrow type converts to the signature's type without losing meaning (integers
    widen to doubles, as MLflow's own schema enforcement allows; text never becomes a number)."""
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_null(t):  # no values at all: missing everywhere
        return expected not in _NULL_FREE_TYPES
    checks = {
        "double": lambda: pa.types.is_floating(t) or pa.types.is_integer(t),
        "float": lambda: pa.types.is_floating(t) or pa.types.is_integer(t),
        "long": lambda: pa.types.is_integer(t),
        "integer": lambda: pa.types.is_integer(t) and t.bit_width <= 32 and not pa.types.is_uint32(t),
        "boolean": lambda: pa.types.is_boolean(t),
        "string": lambda: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t),
        "datetime": lambda: pa.types.is_timestamp(t) or pa.types.is_date(t),
        "binary": lambda: pa.types.is_binary(t) or pa.types.is_large_binary(t),
    }
    return bool(checks[expected]())


def _missing_values_error(where: Path | str, col: Column, count: int) -> ScoreInputError:
    return ScoreInputError(
        f"{where}: column {col.name!r} has {count} missing value(s), but the model expects "
        f"{_TYPE_WORDS[col.type]}, which cannot be missing"
    )


def check_schema(
    where: Path | str,
    schema: pa.Schema,
    model: Model,
    options: Options,
    null_counts: dict[str, int] | None = None,
) -> None:
    """Raise ScoreInputError (file, column, reason) unless a file with this Arrow schema can be scored."""
    names = set(schema.names)
    # A file without the id column gets generated ids (with_ids): not an error.
    for col in model.columns:
        if col.name not in names:
            if col.required:
                raise ScoreInputError(
                    f"{where}: column {col.name!r} is missing: the model requires it ({col.type})"
                )
            continue
        arrow_type = schema.field(col.name).type
        if not _type_ok(arrow_type, col.type):
            raise ScoreInputError(
                f"{where}: column {col.name!r} has type {arrow_type}, but the model expects "
                f"{_TYPE_WORDS[col.type]}"
            )
        if col.type in _NULL_FREE_TYPES and (null_counts or {}).get(col.name, 0) > 0:
            raise _missing_values_error(where, col, (null_counts or {})[col.name])
    clash = [c for c in options.added_columns if c in names]
    if clash:
        raise ScoreInputError(
            f"{where}: column {clash[0]!r} already exists, but the scorer adds "
            f"{', '.join(options.added_columns)} (rename it, or choose another --prediction-column)"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _parquet_file(path: Path) -> pq.ParquetFile:
    if path.stat().st_size == 0:
        raise ScoreInputError(f"{path}: file is empty (0 bytes)")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ScoreInputError(f"{path}: not a valid Parquet file ({_first_line(exc)})") from None


def _parquet_null_counts(pf: pq.ParquetFile, columns: Iterable[str]) -> dict[str, int]:
    """Missing values per column from the footer's statistics (no data read). Columns without statistics count
    0 here; their missing values are caught when the data is converted."""
    meta = pf.metadata
    index = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    counts: dict[str, int] = {}
    for name in set(columns) & set(index):
        total = 0
        for rg in range(meta.num_row_groups):
            stats = meta.row_group(rg).column(index[name]).statistics
            if stats is not None and stats.has_null_count:
                total += stats.null_count
        counts[name] = total
    return counts


def _csv_convert_options(model: Model, options: Options) -> pacsv.ConvertOptions:
    """The signature's and the id's columns are read as text and cast per column below, so that a bad value is
    reported with its column; the other columns are typed by pyarrow's inference."""
    as_text = [c.name for c in model.columns] + ([options.id_column] if options.id_column else [])
    return pacsv.ConvertOptions(
        column_types=dict.fromkeys(as_text, pa.string()), null_values=NA_VALUES, strings_can_be_null=True
    )


def _csv_schema(schema: pa.Schema, model: Model) -> pa.Schema:
    """A CSV file's schema as if its text columns had the model's types: the cast checks the values."""
    expected = {c.name: c for c in model.columns}
    return pa.schema(
        [pa.field(f.name, _arrow_type(expected[f.name].type)) if f.name in expected else f for f in schema]
    )


def _cast_text(path: Path, values: pa.ChunkedArray, col: Column) -> pa.ChunkedArray:
    try:
        cast = pc.cast(values, _arrow_type(col.type))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ScoreInputError(
            f"{path}: column {col.name!r}: a value is not {_TYPE_WORDS[col.type]} ({_first_line(exc)})"
        ) from None
    if col.type in _NULL_FREE_TYPES and cast.null_count:
        raise _missing_values_error(path, col, cast.null_count)
    return cast


def _check_shape(path: Path, schema: pa.Schema, rows: int | None) -> None:
    """The messages training gives (amlops.data.io) for a CSV with another delimiter and a file with a header
    and no rows: before them, the first showed up as "column 'date' is missing" and the second as an empty
    predictions file."""
    from amlops.data.io import _OTHER_DELIMITERS

    if len(schema.names) == 1:
        header = str(schema.names[0])
        for delim in _OTHER_DELIMITERS:
            if delim in header:
                shown = "\\t" if delim == "\t" else delim
                raise ScoreInputError(
                    f"{path}: wrong delimiter: the header {header[:60]!r} looks {shown!r}-separated; "
                    "amlops reads comma-separated CSV"
                )
    if rows == 0:
        raise ScoreInputError(f"{path}: no data rows (only a header)")


def _csv_header(path: Path, model: Model, options: Options) -> pa.Schema:
    """Column names of a CSV file from its first block only (and whether that block has a row)."""
    if path.stat().st_size == 0:
        raise ScoreInputError(f"{path}: file is empty (0 bytes)")
    try:
        with pacsv.open_csv(path, convert_options=_csv_convert_options(model, options)) as reader:
            schema = reader.schema
            try:
                rows: int | None = reader.read_next_batch().num_rows or None
            except StopIteration:
                rows = 0
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise ScoreInputError(f"{path}: not valid CSV ({_first_line(exc)})") from None
    _check_shape(path, schema, rows)
    return schema


def _read_csv(path: Path, model: Model, options: Options) -> pa.Table:
    if path.stat().st_size == 0:
        raise ScoreInputError(f"{path}: file is empty (0 bytes)")
    try:
        table = pacsv.read_csv(path, convert_options=_csv_convert_options(model, options))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise ScoreInputError(f"{path}: not valid CSV ({_first_line(exc)})") from None
    _check_shape(path, table.schema, table.num_rows)
    check_schema(path, _csv_schema(table.schema, model), model, options)
    for col in model.columns:
        if col.name in table.column_names and col.type not in ("string", "binary"):
            index = table.column_names.index(col.name)
            table = table.set_column(index, col.name, _cast_text(path, table.column(col.name), col))
    return table


def check_file(path: Path, model: Model, options: Options, *, parse_csv: bool = True) -> None:
    """Check one input file against the model before anything is scored. Parquet: the footer only. CSV: every
    value of the model's columns is parsed (CSV has no types); `parse_csv=False` checks the header only."""
    if is_parquet(path):
        pf = _parquet_file(path)
        _check_shape(path, pf.schema_arrow, pf.metadata.num_rows)
        nulls = _parquet_null_counts(pf, [c.name for c in model.columns])
        check_schema(path, pf.schema_arrow, model, options, nulls)
    elif parse_csv:
        _read_csv(path, model, options)
    else:
        check_schema(path, _csv_schema(_csv_header(path, model, options), model), model, options)


def check_inputs(
    files: Sequence[Path], model: Model, options: Options, root: Path | None, *, parse_csv: bool = True
) -> None:
    """Check every file, and that no two files would write the same predictions file."""
    seen: dict[Path, Path] = {}
    for f in files:
        target = output_name(f, root)
        if target in seen:
            raise ScoreInputError(f"{f}: its predictions would overwrite those of {seen[target]} ({target})")
        seen[target] = f
        check_file(f, model, options, parse_csv=parse_csv)


def read_input(path: Path, model: Model, options: Options) -> tuple[pa.Table, pa.Schema]:
    """One input file as an Arrow table, checked against the model (again: a file may change after init), and
    the schema its columns are written back with.

    The model's text columns are read as dictionaries: Parquet stores them so, and decoding them into one
    string per row costs more than the rest of the read (a few distinct store or product names for a million
    rows). They are cast back to the file's own type when written."""
    if not is_parquet(path):
        table = _read_csv(path, model, options)
        return table, table.schema
    pf = _parquet_file(path)
    schema = pf.schema_arrow
    _check_shape(path, schema, pf.metadata.num_rows)
    check_schema(path, schema, model, options)
    text = [
        c.name
        for c in model.columns
        if c.type == "string"
        and c.name in schema.names
        and not pa.types.is_dictionary(schema.field(c.name).type)
    ]
    try:
        table = pq.ParquetFile(path, metadata=pf.metadata, read_dictionary=text).read()
    except (pa.ArrowException, OSError) as exc:
        raise ScoreInputError(f"{path}: cannot read the Parquet data ({_first_line(exc)})") from None
    return table, schema


# ------------------------------------------------------------------------------------------------ scoring
def _column_values(path: Path, table: pa.Table, col: Column) -> Any:
    """The numpy values the model gets for one signature column, in the form amlops.data.features.model_input
    gives them: float64 with NaN, datetime64[ns], object arrays of str with NaN for missing text."""
    n = table.num_rows
    if col.name not in table.column_names:  # an optional column this file does not have
        return np.full(n, np.nan, dtype="float64" if col.type in ("double", "float") else object)
    values = table.column(col.name)
    if pa.types.is_null(values.type):  # no values at all
        return np.full(n, np.nan, dtype="float64" if col.type in ("double", "float") else object)
    if col.type == "string":
        return _text_values(values)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if col.type in _NULL_FREE_TYPES and values.null_count:
        raise _missing_values_error(path, col, values.null_count)
    if col.type == "binary":
        out = values.to_numpy(zero_copy_only=False)
        if values.null_count:
            out[pc.is_null(values).to_numpy(zero_copy_only=False)] = np.nan
        return out
    try:
        if col.type == "datetime":
            if pa.types.is_timestamp(values.type) and values.type.tz is not None:
                values = values.cast(pa.timestamp(values.type.unit))  # the same instant, as naive UTC
            return values.cast(pa.timestamp("ns")).to_numpy()
        return values.cast(_arrow_type(col.type)).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:  # e.g. out of range, integers too large
        raise ScoreInputError(
            f"{path}: column {col.name!r}: cannot convert to {_TYPE_WORDS[col.type]} ({_first_line(exc)})"
        ) from None


def _text_values(values: pa.ChunkedArray) -> np.ndarray:
    """Text as an object array of str (NaN where missing), built from each chunk's dictionary: one Python
    string per distinct value, then a take, instead of one Python string per row."""
    parts = []
    for chunk in values.chunks:
        encoded = chunk if pa.types.is_dictionary(chunk.type) else pc.dictionary_encode(chunk)
        labels = np.empty(len(encoded.dictionary) + 1, dtype=object)
        labels[:-1] = encoded.dictionary.to_numpy(zero_copy_only=False)
        labels[-1] = np.nan  # where the index is missing
        codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
        parts.append(labels.take(codes))
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def model_frame(path: Path, table: pa.Table, model: Model) -> pd.DataFrame:
    """The model's input: the signature's columns in its order, converted from Arrow once."""
    data = {}
    for col in model.columns:
        values = _column_values(path, table, col)
        # dtype=object on purpose: pandas 3 would infer its `str` dtype from an object array of text.
        data[col.name] = pd.Series(values, dtype=object if values.dtype == object else None, copy=False)
    return pd.DataFrame(data, copy=False)


def _threads_for(rows: int) -> Any:
    """One OpenMP thread for a small file (below SMALL_FILE_ROWS) unless OMP_NUM_THREADS says otherwise: a tree
    ensemble's parallel regions (one per tree) cost more than they save there, much more on a busy machine
    (amlops.steps._threads). Predictions are the same either way."""
    return openmp_threads_for(rows, below=SMALL_FILE_ROWS)


def thread_budget(threads: int) -> int:
    """The threads a `--threads` value stands for: itself, or for 0 OMP_NUM_THREADS if set, else the cores this
    process may run on."""
    if threads > 0:
        return threads
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def slice_count(rows: int, threads: int) -> int:
    """Row slices to predict side by side: one per thread of the budget, at least ROWS_PER_SLICE rows each."""
    return max(1, min(thread_budget(threads), rows // ROWS_PER_SLICE))


def predict_sliced(predictor: Any, frame: pd.DataFrame, slices: int) -> np.ndarray:
    """`predictor.predict` on `slices` contiguous row slices side by side, each in its own thread with one OpenMP
    thread, concatenated in row order.

    Why not one call with an OpenMP thread per core: a tree ensemble opens a parallel region per tree, and every
    region ends at a barrier where the cores wait for the slowest; single-threaded slices never wait for each
    other, and the tree walks release the GIL. Measured on 1M rows in 100k-row files, 2 cores: 4.1 s against
    4.4 s, and steadier under load. Predictions are the same numbers (a scikit-learn predictor scores rows
    independently)."""
    controller = openmp_controller()

    def one(part: pd.DataFrame) -> np.ndarray:
        with controller.limit(limits=1, user_api="openmp"):  # per thread: OpenMP settings are thread-local
            return np.asarray(predictor.predict(part))

    if slices <= 1:
        return one(frame)
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, len(frame), slices + 1).astype(int)
    parts = [frame.iloc[a:b] for a, b in pairwise(bounds)]
    with ThreadPoolExecutor(slices, thread_name_prefix="amlops-predict") as pool:
        return np.concatenate(list(pool.map(one, parts)))


def predict(path: Path, table: pa.Table, model: Model, threads: int = 0) -> np.ndarray:
    """One prediction per row, as a 1-D array. scikit-learn models are predicted in row slices, one thread
    each (`threads`: the budget, 0 = one per core); other flavors in one call."""
    frame = model_frame(path, table, model)
    try:
        if model.flavor == "sklearn":
            raw = predict_sliced(model.predictor, frame, slice_count(table.num_rows, threads))
        else:
            with _threads_for(table.num_rows):
                raw = model.predictor.predict(frame)
    except (TypeError, ValueError, KeyError) as exc:
        raise ScoreInputError(f"{path}: the model cannot score this file: {_first_line(exc)}") from None
    pred = np.asarray(raw)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim != 1 or len(pred) != table.num_rows:
        raise ScoreInputError(
            f"{path}: the model returned shape {pred.shape} for {table.num_rows} rows; the scorer writes one "
            "prediction per row"
        )
    return pred


def with_predictions(
    table: pa.Table, schema: pa.Schema, pred: np.ndarray, options: Options, scored_at: datetime
) -> pa.Table:
    """The input columns with their file's types, plus prediction, model_version and scored_at (one time per
    file)."""
    n = table.num_rows
    out = table
    for i, field in enumerate(schema):
        if (
            out.schema.field(i).type != field.type
        ):  # read as a dictionary for the model: back to the file's type
            out = out.set_column(i, field.name, out.column(i).cast(field.type))
    out = out.replace_schema_metadata(None)  # the input's pandas metadata does not know the new columns
    out = out.append_column(options.prediction_column, pa.array(pred))
    out = out.append_column(VERSION_COLUMN, pa.repeat(pa.scalar(options.model_version, pa.string()), n))
    stamp = pa.scalar(scored_at.astimezone(UTC), pa.timestamp("us", tz="UTC"))
    return out.append_column(SCORED_AT_COLUMN, pa.repeat(stamp, n))


def _is_text(t: pa.DataType) -> bool:
    t = t.value_type if pa.types.is_dictionary(t) else t
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def write_atomic(table: pa.Table, target: Path, metadata: dict[str, str], plain: Iterable[str] = ()) -> None:
    """Write a hidden temporary file next to the target, then rename it: readers see the whole file or none
    (and names starting with `.` are skipped by pyarrow, Spark and this scorer).

    Dictionary encoding is skipped for floating-point columns and the `plain` ones (row ids): their values are
    nearly all distinct, and the writer would hash every value only to fall back to plain encoding. Min/max
    statistics are kept for numbers and timestamps (a reader filtering on a date skips whole files) and left out
    for text: comparing every string costs about a quarter of the write (1M rows: 50 ms of 210), and the range of
    ids or of store names in a file that holds all stores prunes nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    skip = set(plain)
    dictionary = [f.name for f in table.schema if f.name not in skip and not pa.types.is_floating(f.type)]
    statistics = [f.name for f in table.schema if not _is_text(f.type)]
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, use_dictionary=dictionary, write_statistics=statistics)
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; predictions are for people and other jobs to read
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class FileResult:
    source: Path
    output: Path
    rows: int
    model_version: str

    def summary(self) -> str:
        """The line the parallel driver appends to `append_row_to`."""
        version, output = self.model_version, self.output.name
        return f"{self.source.name} rows={self.rows} model_version={version} output={output}"


def score_file(path: Path, model: Model, options: Options, output_dir: Path, root: Path | None) -> FileResult:
    """Read, predict, write one file's predictions (the file must have been checked with check_inputs)."""
    table, schema = read_input(path, model, options)
    scored_at = datetime.now(UTC)
    pred = predict(path, table, model, options.threads)
    target = Path(output_dir) / output_name(path, root)
    metadata = {
        "amlops.model_version": options.model_version,
        "amlops.source_file": path.name,
        "amlops.scored_at": scored_at.isoformat(),
    }
    plain = [options.id_column] if options.id_column else []
    scored = with_predictions(table, schema, pred, options, scored_at)
    if options.id_column and options.id_column not in table.column_names:
        scored = with_ids(scored, options.id_column, output_name(path, root).with_suffix("").as_posix())
        metadata["amlops.generated_ids"] = options.id_column
        print(
            f"{path.name}: no {options.id_column!r} column: generated ids '<file>:<row>' into the predictions "
            "(join late labels on them)",
            flush=True,
        )
    write_atomic(scored, target, metadata, plain)
    return FileResult(path, target, table.num_rows, options.model_version)


def with_ids(table: pa.Table, id_column: str, source: str) -> pa.Table:
    """Prepend `<source>:<row>` ids (row numbers from 0 in file order). The same file scored again gets the same
    ids, so labels that arrive later join the predictions through the id the predictions carry."""
    ids = pa.array([f"{source}:{i}" for i in range(table.num_rows)], pa.string())
    return table.add_column(0, id_column, ids)


def score_files(
    files: Sequence[Path], model: Model, options: Options, output_dir: Path, root: Path | None = None
) -> list[FileResult]:
    """Check every file first, then score them one by one."""
    check_inputs(files, model, options, root)
    return [score_file(f, model, options, output_dir, root) for f in files]


def score_path(
    data: str | Path,
    model_path: str | Path,
    output_dir: str | Path,
    model_version: str,
    *,
    id_column: str | None = None,
    prediction_column: str | None = None,
    threads: int = 0,
) -> list[FileResult]:
    """Score a file or a folder of files into `output_dir` (one Parquet file per input file)."""
    model = load_model(model_path)
    limit_threads(threads)
    options = resolve_options(model, model_version, id_column, prediction_column, threads)
    root = Path(data)
    return score_files(data_files(root), model, options, Path(output_dir), root if root.is_dir() else None)


def limit_threads(threads: int) -> None:
    """Cap the native thread pools of this process (OpenMP in the model, BLAS, Arrow); 0 leaves the defaults.

    Why: parallel scoring runs `max_concurrency_per_instance` workers per node, and each one's OpenMP would
    otherwise start a thread per core; more threads than free cores makes every parallel region wait for a
    thread the OS has parked (measured on a busy 2-core machine: 1M rows predicted file by file took up to 3x
    longer with 2 OpenMP threads than with 1). Called after the model is loaded, so that the model's OpenMP
    runtime is among the pools capped.
    """
    if threads <= 0:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    pa.set_cpu_count(threads)


# ------------------------------------------------------------------------------------------------ entries
class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # An exception, not SystemExit: inside a parallel worker's init() an exit only says "SystemExit: 2".
        raise ScoreInputError(f"{self.prog}: {message}")


# The parallel driver runs the entry script inside its own process, so sys.argv in init() is the driver's command
# line: its reserved arguments (--output, --mini_batch_size, --error_threshold, --output_action, --logging_level,
# --run_invocation_timeout, --run_max_try, --append_row_file_name, --process_count_per_node, --input_fds_0 ...)
# with the component's program_arguments among them. Source: azureml-pipeline-steps
# azureml/pipeline/steps/_parallel_run_step_base.py (`_generate_main_file_args`, `reserved_args`); Microsoft
# Learn "CLI (v2) parallel job YAML schema" (reference-yaml-job-parallel: program_arguments and the driver's
# advanced arguments). The driver's --output is its own summary folder: the entry's names must differ from every
# reserved one, and the driver's arguments are ignored (parse_known_args, no abbreviations).
PARALLEL_DRIVER_RESERVED = frozenset(
    {
        "mini_batch_size",
        "error_threshold",
        "allowed_failed_count",
        "allowed_failed_percent",
        "output",
        "output_action",
        "logging_level",
        "process_count_per_node",
        "run_invocation_timeout",
        "run_max_try",
        "append_row_file_name",
    }
)


def _parser(prog: str, *, cli: bool = False) -> argparse.ArgumentParser:
    """The entry's arguments. `cli`: the `python -m` entry, which also accepts `--output` for the predictions
    folder; the parallel entry does not, since `--output` there is the driver's."""
    parser = _ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0], allow_abbrev=False)
    parser.add_argument("--data", required=True, help="input: a CSV/Parquet file or a folder of them")
    parser.add_argument("--model", required=True, help="input: an MLflow model folder")
    names = ["--predictions", "--output"] if cli else ["--predictions"]
    parser.add_argument(
        *names, dest="predictions", required=True, help="output folder: one Parquet file per input file"
    )
    parser.add_argument("--model-version", required=True, help="the model's registry version (on every row)")
    parser.add_argument("--id-column", default=None, help="row id column (default: the model's, else row_id)")
    parser.add_argument("--prediction-column", default=None, help="name of the prediction column")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads per process: predicting row slices side by side (scikit-learn models), OpenMP and Arrow "
        "(0: one per core, the default)",
    )
    return parser


def parallel_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The entry's own arguments out of the parallel driver's command line (the driver's are ignored)."""
    args, _driver_args = _parser("score.py").parse_known_args(list(argv))
    return args


@dataclass
class _Worker:
    model: Model
    options: Options
    output: Path
    root: Path | None


_worker: _Worker | None = None


def init() -> None:
    """Parallel entry: load the model once per worker and check every input file before any mini-batch."""
    global _worker
    try:
        args = parallel_arguments(sys.argv[1:])
        model = load_model(args.model)
        limit_threads(args.threads)
        options = resolve_options(
            model, args.model_version, args.id_column, args.prediction_column, args.threads
        )
        data = Path(args.data)
        root = data if data.is_dir() else None
        check_inputs(data_files(data), model, options, root)
    except ScoreInputError as exc:
        # The line to act on; the driver adds the exception with its traceback.
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise
    _worker = _Worker(model, options, Path(args.predictions), root)


def run(mini_batch: Any) -> list[str]:
    """Parallel entry: score the mini-batch's files; one summary line per file."""
    if _worker is None:
        raise RuntimeError("init() has not run in this worker")
    if hasattr(mini_batch, "columns"):
        raise ScoreInputError("the scorer reads files: declare the data input as uri_folder, not mltable")
    lines = []
    for item in mini_batch:
        path = Path(item)
        if not is_data_file(path):
            lines.append(f"{path.name} skipped: not a .csv or .parquet file")
            continue
        lines.append(score_file(path, _worker.model, _worker.options, _worker.output, _worker.root).summary())
    return lines


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser("python -m amlops.steps.score", cli=True).parse_args(argv)
    except ScoreInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        results = score_path(
            args.data,
            args.model,
            args.predictions,
            args.model_version,
            id_column=args.id_column,
            prediction_column=args.prediction_column,
            threads=args.threads,
        )
    except ScoreInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = sum(r.rows for r in results)
    print(f"scored {rows} rows in {len(results)} file(s) with model version {results[0].model_version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
