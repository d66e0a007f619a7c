"""The monitor step's lean paths give what the general ones give.

A step on a stored profile imports neither pandas, fsspec nor MLflow (seconds of CPU per run, issue 20): a
single local Parquet file is read with pyarrow.parquet (LocalParquetFile) instead of pyarrow.dataset, and Arrow
arrays become numpy arrays without pyarrow's to_numpy (arrow_numpy). Each is checked against the path it
replaces, on the cases that differ (nulls, slices, chunks, float32, dictionary indices, booleans, empties).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from amlops.drift.monitor import LocalParquetFile, MonitorError, MonitorOptions, open_dataset, run_monitor
from amlops.drift.profile import ReferenceProfile, arrow_numpy, chunks_numpy

from .conftest import make_frame

ARRAYS = {
    "float64": pa.array([1.5, -2.0, 3.25, 0.0]),
    "float64-nulls": pa.array([1.5, None, 3.25, None]),
    "float32-nulls": pa.array([1.5, None, 2.5], type=pa.float32()),
    "int64-nulls": pa.array([1, None, 3], type=pa.int64()),
    "uint8": pa.array([0, 255, 7], type=pa.uint8()),
    "int16-slice": pa.array([9, 1, 2, 3, 4], type=pa.int16()).slice(1, 3),
    "float-slice-nulls": pa.array([9.0, None, 2.0, None, 4.0]).slice(1, 3),
    "bool": pa.array([True, False, True]),
    "bool-slice": pa.array([False, True, False, True]).slice(1, 2),
    "empty": pa.array([], type=pa.float64()),
    "string": pa.array(["a", None, "c"]),
}


@pytest.mark.parametrize("name", list(ARRAYS))
def test_arrow_numpy_equals_to_numpy(name: str) -> None:
    arr = ARRAYS[name]
    expected = arr.to_numpy(zero_copy_only=False)
    got = arrow_numpy(arr, fill=np.nan) if pa.types.is_floating(arr.type) else arrow_numpy(arr)
    if name.endswith("nulls") and not pa.types.is_floating(arr.type):
        got = arrow_numpy(arr, fill=np.nan).astype(np.float64)  # to_numpy gives floats with NaN for int nulls
    assert got.dtype == expected.dtype or name.startswith("int64-nulls")
    assert len(got) == len(expected)
    assert all(
        (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == b
        for a, b in zip(got.tolist(), expected.tolist(), strict=True)
    ), (got, expected)


def test_dictionary_indices_take_the_fill_for_nulls() -> None:
    arr = pa.array(["a", None, "b", "a"]).dictionary_encode()
    assert arrow_numpy(arr.indices, fill=2).tolist() == [0, 2, 1, 0]
    chunked = pa.chunked_array([pa.array([1.0, None]), pa.array([3.0])])
    assert np.isnan(chunks_numpy(chunked, fill=np.nan)).tolist() == [False, True, False]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lean")
    ref = make_frame(5_000, seed=1)
    cur = make_frame(5_000, seed=2, drift_from_day=14)
    cur.loc[cur.index[::7], "x1"] = None  # nulls in a numeric feature
    cur.loc[cur.index[::11], "promo"] = None  # and in a categorical one
    ref.to_parquet(root / "ref.parquet")
    # Several row groups: batches cross them as they do on big files.
    pq.write_table(
        pa.Table.from_pandas(cur, preserve_index=False), root / "cur.parquet", row_group_size=1_200
    )
    # The same file beside an empty one: a folder, read by pyarrow.dataset, with the same row groups.
    (root / "folder").mkdir()
    table = pa.Table.from_pandas(cur, preserve_index=False)
    pq.write_table(table, root / "folder" / "part-0.parquet", row_group_size=1_200)
    pq.write_table(table.slice(0, 0), root / "folder" / "part-1.parquet")
    return {"ref": root / "ref.parquet", "cur": root / "cur.parquet", "folder": root / "folder"}


def _profile(path: Path) -> ReferenceProfile:
    from amlops.drift.profile import build_profile

    df = pq.read_table(path).to_pandas()
    return build_profile(df, ["x1", "price"], ["promo", "store"])


def test_a_single_local_file_reads_as_the_dataset_does(data: dict[str, Path]) -> None:
    single, folder = open_dataset(str(data["cur"])), open_dataset(str(data["folder"]))
    assert isinstance(single, LocalParquetFile) and not isinstance(folder, LocalParquetFile)
    assert single.schema == folder.schema and single.count_rows() == folder.count_rows()
    assert "parquet" in type(single.format).__name__.lower()  # how job_inputs tells Parquet from CSV
    assert single.to_table(columns=["x1", "promo"]).equals(folder.to_table(columns=["x1", "promo"]))
    profile = _profile(data["ref"])
    options = MonitorOptions(window="weekly", timestamp_column="date", chunk_rows=1_000)
    a = run_monitor(str(data["cur"]), profile, options).to_json_dict()
    b = run_monitor(str(data["folder"]), profile, options).to_json_dict()
    for r in (a, b):
        r.pop("created_at")
        r["current"].pop("source", None)
    assert a == b  # the same batches (row group by row group), so even the float sums agree to the bit
    assert a["overall"]["features"]["x1"]["summary"]["null_count"] > 0  # nulls went through the lean path
    assert a["overall"]["features"]["promo"]["summary"]["null_count"] > 0


def test_a_large_single_file_goes_through_the_dataset_scanner(
    data: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import amlops.drift.monitor as monitor_module

    monkeypatch.setattr(monitor_module, "LEAN_READ_MAX_ROWS", 10)  # the file holds more rows than that
    big = open_dataset(str(data["cur"]))
    assert not isinstance(big, LocalParquetFile)
    assert big.count_rows() > 10


def test_a_missing_column_or_bad_file_is_a_monitor_error(data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(pa.ArrowInvalid):
        open_dataset(str(data["cur"])).to_table(columns=["nope"])
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(MonitorError, match="cannot read as parquet"):
        open_dataset(str(bad))
    with pytest.raises(MonitorError, match="not found"):
        open_dataset(str(tmp_path / "missing.parquet"))


def test_a_stored_profile_step_imports_no_pandas_fsspec_or_mlflow(
    data: dict[str, Path], tmp_path: Path
) -> None:
    profile = _profile(data["ref"])
    profile.to_json(tmp_path / "profile.json")
    script = textwrap.dedent(
        f"""
        import json, os, sys
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        from amlops.steps import monitor as step
        code = step.main(["--current", {str(data["cur"])!r}, "--reference-profile",
                          {str(tmp_path / "profile.json")!r}, "--window", "weekly", "--timestamp-column", "date",
                          "--output", {str(tmp_path / "out")!r}])
        print(json.dumps({{"code": code, "loaded": [m for m in ("pandas", "fsspec", "mlflow", "sklearn")
                                                     if m in sys.modules]}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"code": 0, "loaded": []}
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "result.json").is_file()


def test_a_single_file_without_a_categorical_feature_reports_it_missing(
    data: dict[str, Path], tmp_path: Path
) -> None:
    """The lean reader opens categorical features dictionary-encoded: one the file lacks is a missing column in
    the result, as in a folder read by pyarrow.dataset, not a KeyError from pyarrow.parquet."""
    table = pq.read_table(data["cur"]).drop_columns(["store"])
    pq.write_table(table, tmp_path / "cur.parquet", row_group_size=1_200)
    (tmp_path / "folder").mkdir()
    pq.write_table(table, tmp_path / "folder" / "part-0.parquet", row_group_size=1_200)
    pq.write_table(table.slice(0, 0), tmp_path / "folder" / "part-1.parquet")
    assert isinstance(open_dataset(str(tmp_path / "cur.parquet"), ["store", "promo"]), LocalParquetFile)
    profile = _profile(data["ref"])
    options = MonitorOptions(window="weekly", timestamp_column="date", chunk_rows=1_000)
    a = run_monitor(str(tmp_path / "cur.parquet"), profile, options).to_json_dict()
    b = run_monitor(str(tmp_path / "folder"), profile, options).to_json_dict()
    for r in (a, b):
        r.pop("created_at")
        r["current"].pop("source", None)
    assert a["current"]["missing_columns"] == ["store"]
    assert a == b
