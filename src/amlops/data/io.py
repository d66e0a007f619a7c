"""Read raw data files (CSV or Parquet, one file or a folder of them) with one clear error per failure.

CSV is read with every column as text so the validator, not the CSV parser, decides what a bad value is (and
can quarantine one bad row instead of failing the file). Parquet keeps its own types.

Also the one home of the data-file suffixes (and which files a folder scan takes) and of strict JSON (NaN as
null) for every JSON file the steps write.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported where a file is read: the CLI reads the suffixes below at startup
    import pandas as pd

# The one list of data-file suffixes: prep, scoring, the monitor and the CLI all find files with these.
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
DATA_SUFFIXES = PARQUET_SUFFIXES + CSV_SUFFIXES
NA_VALUES = ["", "NaN", "nan", "NULL", "null", "None", "N/A", "n/a", "#N/A"]
SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
_OTHER_DELIMITERS = (";", "\t", "|")


class DataFileError(ValueError):
    """A data file that cannot be read; the message is one line naming the file and the reason."""


def data_format(name: str) -> str | None:
    """ "csv" or "parquet" by the file name's suffix, None for anything else."""
    lower = name.lower()
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def is_data_file(name: str) -> bool:
    """A CSV/Parquet file a folder scan picks up; hidden and `_`-prefixed files (Spark's `_SUCCESS`, partial
    uploads) are not data."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return not base.startswith((".", "_")) and data_format(base) is not None


def _kind(path: Path) -> str:
    kind = data_format(path.name)
    if kind is not None:
        return kind
    raise DataFileError(
        f"{path}: unsupported file type {''.join(path.suffixes) or '(none)'!r} "
        "(use .csv, .csv.gz or .parquet)"
    )


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        df = pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=NA_VALUES,
            skipinitialspace=False,
            encoding="utf-8",
        )
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{path}: file is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "parse error"
        raise DataFileError(f"{path}: not valid CSV: {detail}") from None
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not UTF-8 text (a binary file, or another encoding?)") from None
    if df.shape[1] == 1:
        header = str(df.columns[0])
        for delim in _OTHER_DELIMITERS:
            if delim in header:
                shown = "\\t" if delim == "\t" else delim
                raise DataFileError(
                    f"{path}: wrong delimiter: the header {header[:60]!r} looks {shown!r}-separated; "
                    "amlops reads comma-separated CSV"
                )
    dupes = [c for c in df.columns if "." in str(c) and str(c).rsplit(".", 1)[0] in df.columns]
    if dupes:
        raise DataFileError(
            f"{path}: column {str(dupes[0]).rsplit('.', 1)[0]!r} appears more than once in the header"
        )
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: file is empty (0 bytes)")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFileError(f"{path}: not a valid Parquet file ({first})") from None
    return table.to_pandas()


def read_file(path: str | Path) -> pd.DataFrame:
    """One CSV/Parquet file as a DataFrame, with `_source_file` and `_source_row` (1-based line) added."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{p}: file not found")
    if p.is_dir():
        raise DataFileError(f"{p}: is a folder (use read_table for folders)")
    kind = _kind(p)
    if kind == "csv" and p.stat().st_size == 0:
        raise DataFileError(f"{p}: file is empty (0 bytes)")
    df = _read_csv(p) if kind == "csv" else _read_parquet(p)
    if df.shape[1] == 0:
        raise DataFileError(f"{p}: no columns")
    if len(df) == 0:
        raise DataFileError(f"{p}: no data rows (only a header)")
    df = df.reset_index(drop=True)
    df[SOURCE_FILE] = p.name
    # The line a person finds the row on: CSV line numbers count the header (line 1); Parquet rows count from
    # 1.
    df[SOURCE_ROW] = range(2, len(df) + 2) if kind == "csv" else range(1, len(df) + 1)
    return df


def data_files(path: str | Path) -> list[Path]:
    """The data files a path stands for: the file itself, or every CSV/Parquet file under a folder, sorted."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{p}: not found")
    if p.is_file():
        return [p]
    files = sorted(f for f in p.rglob("*") if f.is_file() and is_data_file(f.name))
    if not files:
        raise DataFileError(f"{p}: folder has no .csv or .parquet files")
    return files


def read_table(path: str | Path) -> pd.DataFrame:
    """A file, or a folder of files concatenated in name order; every file must have the same columns."""
    files = data_files(path)
    frames = [read_file(f) for f in files]
    if len(frames) == 1:
        return frames[0]
    first = set(frames[0].columns)
    for f, frame in zip(files[1:], frames[1:], strict=True):
        if set(frame.columns) != first:
            missing = sorted(first - set(frame.columns)) or sorted(set(frame.columns) - first)
            raise DataFileError(f"{f}: columns differ from {files[0].name} (e.g. {missing[0]!r})")
    # Mixed CSV/Parquet folders would mix text and typed columns: make everything text, the validator re-
    # types.
    if len({_kind(f) for f in files}) > 1:
        frames = [
            fr.astype({c: "str" for c in fr.columns if c not in (SOURCE_FILE, SOURCE_ROW)}) for fr in frames
        ]
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or Parquet by the file's suffix (creating the folder)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    kind = _kind(p)
    if kind == "csv":
        df.to_csv(p, index=False, lineterminator="\n", date_format="%Y-%m-%d")
    else:
        df.to_parquet(p, index=False)
    return p


# ------------------------------------------------------------------------------------------ strict JSON
# JSON has no NaN or infinity (json.dumps writes them unless allow_nan=False, and strict readers reject them):
# every file amlops writes stores an undefined number as null and reads null back as NaN where it computes.
def finite_or_none(x: float | None) -> float | None:
    """A finite number as a float, anything else (None, NaN, +-inf) as None."""
    return None if x is None or not math.isfinite(x) else float(x)


def nan_if_none(x: Any) -> float:
    """The reverse on reading: null is NaN."""
    return math.nan if x is None else float(x)


def finite_json(value: Any) -> Any:
    """`value` with every non-finite float, at any depth of dicts and lists, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of `value` (non-finite numbers written as null)."""
    return json.dumps(finite_json(value), allow_nan=False, **kwargs)
