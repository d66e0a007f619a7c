"""The scoring step: traceable predictions equal to the model's own, and input checked before any output."""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scoring_helpers import bare_predictions, files_in, read_predictions

from amlops.steps import score
from amlops.steps.score import ScoreInputError

ENTRY_SCRIPT = Path(score.__file__)


def split_input(df: pd.DataFrame, folder: Path) -> Path:
    """The rows as a Parquet file and a CSV file (the two formats the scorer reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    half = len(df) // 2
    df.iloc[:half].to_parquet(folder / "a.parquet", index=False)
    df.iloc[half:].to_csv(folder / "b.csv", index=False)
    return folder


def test_predictions_trace_to_row_and_version_and_equal_model_predict(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path]
) -> None:
    data = split_input(demand, tmp_path / "in")
    before = datetime.now(UTC)
    results = score.score_path(data, model_dirs["v1"], tmp_path / "out", "3")
    after = datetime.now(UTC)

    assert [r.output.name for r in results] == ["a.parquet", "b.parquet"]
    assert sum(r.rows for r in results) == len(demand)
    scored = read_predictions(tmp_path / "out")
    # Every input column is kept, and the three traceability columns are added.
    assert list(scored.columns) == [*demand.columns, "prediction", "model_version", "scored_at"]
    assert scored["row_id"].tolist() == demand["row_id"].tolist()
    assert set(scored["model_version"]) == {"3"}
    assert str(scored["scored_at"].dt.tz) == "UTC"
    assert ((scored["scored_at"] >= before) & (scored["scored_at"] <= after)).all()
    # The same numbers as MLflow's sklearn loader on the same rows (exactly: same inputs, same model).
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), bare_predictions(model_dirs["v1"], demand))
    written = pq.read_schema(tmp_path / "out" / "a.parquet")
    assert written.metadata[b"amlops.model_version"] == b"3"
    assert written.metadata[b"amlops.source_file"] == b"a.parquet"
    # The input columns keep their types (text read as dictionaries for speed is written back as text).
    source = pq.read_schema(data / "a.parquet")
    assert [written.field(name).type for name in source.names] == [f.type for f in source]
    # Min/max statistics for dates (a reader filtering on a date skips whole files), none for text.
    group = pq.ParquetFile(tmp_path / "out" / "a.parquet").metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).statistics for i in range(group.num_columns)}
    assert stats["date"] is not None and stats["date"].has_min_max
    assert stats["row_id"] is None and stats["store_id"] is None


def test_different_models_give_different_predictions(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path]
) -> None:
    """Guards the promotion tests: they tell the versions apart by their predictions."""
    data = split_input(demand.head(200), tmp_path / "in")
    one = score.score_path(data, model_dirs["v1"], tmp_path / "v1", "1")
    two = score.score_path(data, model_dirs["v2"], tmp_path / "v2", "2")
    assert one and two
    p1 = read_predictions(tmp_path / "v1")["prediction"].to_numpy()
    p2 = read_predictions(tmp_path / "v2")["prediction"].to_numpy()
    assert not np.allclose(p1, p2)


def _drop_price(df: pd.DataFrame, folder: Path) -> Path:
    df.drop(columns=["price"]).to_parquet(folder / "b.parquet", index=False)
    return folder / "b.parquet"


def _price_as_text(df: pd.DataFrame, folder: Path) -> Path:
    df.assign(price=df["price"].astype(str)).to_parquet(folder / "b.parquet", index=False)
    return folder / "b.parquet"


def _bad_csv_value(df: pd.DataFrame, folder: Path) -> Path:
    bad = df.astype({"price": object})
    bad.loc[bad.index[5], "price"] = "twelve"
    bad.to_csv(folder / "b.csv", index=False)
    return folder / "b.csv"


def _date_as_number(df: pd.DataFrame, folder: Path) -> Path:
    df.assign(date=np.arange(len(df))).to_parquet(folder / "b.parquet", index=False)
    return folder / "b.parquet"


def _no_row_id(df: pd.DataFrame, folder: Path) -> Path:
    df.drop(columns=["row_id"]).to_parquet(folder / "b.parquet", index=False)
    return folder / "b.parquet"


def _prediction_exists(df: pd.DataFrame, folder: Path) -> Path:
    df.assign(prediction=1.0).to_parquet(folder / "b.parquet", index=False)
    return folder / "b.parquet"


VIOLATIONS = {
    "missing column": (_drop_price, ["'price' is missing", "requires"]),
    "text in a number column": (_price_as_text, ["'price'", "type", "expects a number"]),
    "bad CSV value": (_bad_csv_value, ["'price'", "twelve", "not a number"]),
    "number in a date column": (_date_as_number, ["'date'", "int64", "expects a date"]),
    "prediction column exists": (_prediction_exists, ["'prediction' already exists"]),
}


@pytest.mark.parametrize("case", list(VIOLATIONS), ids=list(VIOLATIONS))
def test_signature_violation_fails_with_one_line_and_writes_nothing(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path], case: str
) -> None:
    make, words = VIOLATIONS[case]
    data = tmp_path / "in"
    data.mkdir()
    demand.head(100).to_parquet(data / "a.parquet", index=False)  # a good file, first in order
    bad = make(demand.head(100), data)
    with pytest.raises(ScoreInputError) as info:
        score.score_path(data, model_dirs["v1"], tmp_path / "out", "1")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{bad}: ")
    for word in words:
        assert word in message
    assert files_in(tmp_path / "out") == []


def test_a_file_without_row_ids_gets_generated_ids_written_out(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path]
) -> None:
    """Ids are `<file>:<row>`, first column of the predictions, the same when the file is scored again."""
    data = tmp_path / "in"
    data.mkdir()
    _no_row_id(demand.head(100), data)
    for out in ("out1", "out2"):
        score.score_path(data, model_dirs["v1"], tmp_path / out, "1")
    first, again = (pq.read_table(tmp_path / o / "b.parquet") for o in ("out1", "out2"))
    assert first.column_names[0] == "row_id"
    assert first.column("row_id").to_pylist()[:2] == ["b:0", "b:1"] and first.num_rows == 100
    assert first.column("row_id").equals(again.column("row_id"))


def load_entry_script() -> ModuleType:
    """The entry script loaded as a parallel driver does: from its file, not registered in sys.modules."""
    spec = importlib.util.spec_from_file_location("score_entry", ENTRY_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parallel_entry_scores_mini_batches_after_checking_every_file(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "in"
    for i in range(3):
        (data / f"day{i}").mkdir(parents=True)
        demand.iloc[i * 100 : (i + 1) * 100].to_parquet(data / f"day{i}" / "rows.parquet", index=False)
    (data / "_SUCCESS").write_text("")
    args = ["--data", str(data), "--model", str(model_dirs["v1"]), "--predictions", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", ["score.py", *args, "--model-version", "5"])
    entry = load_entry_script()
    entry.init()
    files = sorted(str(p) for p in data.rglob("*") if p.is_file())
    lines = entry.run(files[:2]) + entry.run(files[2:])
    assert lines == [
        "_SUCCESS skipped: not a .csv or .parquet file",
        "rows.parquet rows=100 model_version=5 output=rows.parquet",
        "rows.parquet rows=100 model_version=5 output=rows.parquet",
        "rows.parquet rows=100 model_version=5 output=rows.parquet",
    ]
    # Sub-folders are kept: one output per input file, no overwrite between day0/rows and day1/rows.
    outputs = [p.relative_to(tmp_path / "out").as_posix() for p in files_in(tmp_path / "out")]
    assert outputs == ["day0/rows.parquet", "day1/rows.parquet", "day2/rows.parquet"]


def test_parallel_init_fails_before_any_mini_batch_on_a_bad_file(
    tmp_path: Path,
    demand: pd.DataFrame,
    model_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    demand.head(50).to_parquet(data / "a.parquet", index=False)
    demand.head(50).drop(columns=["store_type"]).to_parquet(data / "z.parquet", index=False)
    args = ["--data", str(data), "--model", str(model_dirs["v1"]), "--predictions", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", ["score.py", *args, "--model-version", "5"])
    entry = load_entry_script()
    with pytest.raises(ValueError, match=r"z\.parquet: column 'store_type' is missing"):
        entry.init()
    assert capsys.readouterr().err.startswith(f"error: {data / 'z.parquet'}: column 'store_type' is missing")
    assert files_in(tmp_path / "out") == []


def test_two_inputs_that_would_write_the_same_output_are_refused(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path]
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    demand.head(10).to_parquet(data / "week.parquet", index=False)
    demand.head(10).to_csv(data / "week.csv", index=False)
    with pytest.raises(ScoreInputError, match="would overwrite"):
        score.score_path(data, model_dirs["v1"], tmp_path / "out", "1")
    assert files_in(tmp_path / "out") == []


def test_module_entry_prints_one_error_line_and_exits_1(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    demand.head(10).drop(columns=["holiday"]).to_parquet(tmp_path / "x.parquet", index=False)
    args = [
        "--data",
        str(tmp_path / "x.parquet"),
        "--model",
        str(model_dirs["v1"]),
        "--output",
        str(tmp_path / "o"),
    ]
    code = score.main([*args, "--model-version", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        f"error: {tmp_path / 'x.parquet'}: column 'holiday' is missing: the model requires it (double)"
    ]


def test_a_model_without_signature_is_refused(tmp_path: Path, model_dirs: dict[str, Path]) -> None:
    import shutil

    import yaml

    model = tmp_path / "model"
    shutil.copytree(model_dirs["v1"], model)
    mlmodel = yaml.safe_load((model / "MLmodel").read_text())
    del mlmodel["signature"]
    (model / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(ScoreInputError, match="no input signature"):
        score.load_model(model)


def test_nulls_in_optional_text_and_numbers_are_scored_like_the_model_does(
    tmp_path: Path, demand: pd.DataFrame, model_dirs: dict[str, Path]
) -> None:
    """Missing temperatures (nullable in the schema) and categories reach the model as NaN, as in training."""
    rows = demand.head(40).copy()
    rows.loc[rows.index[:5], "temperature"] = np.nan
    rows.loc[rows.index[5:8], "product_category"] = None
    data = tmp_path / "in"
    data.mkdir()
    rows.to_parquet(data / "a.parquet", index=False)
    rows.to_csv(data / "b.csv", index=False)
    score.score_path(data, model_dirs["v1"], tmp_path / "out", "1")
    scored = read_predictions(tmp_path / "out")
    expected = bare_predictions(model_dirs["v1"], rows)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), np.concatenate([expected, expected]))


def test_row_slices_predicted_side_by_side_give_the_models_own_numbers(
    demand: pd.DataFrame, model_dirs: dict[str, Path]
) -> None:
    """The scorer predicts a big file in slices, one thread each: the same numbers, in row order."""
    import pyarrow as pa

    model = score.load_model(model_dirs["v1"])
    frame = score.model_frame(Path("demand"), pa.Table.from_pandas(demand, preserve_index=False), model)
    whole = model.predictor.predict(frame)
    for slices in (1, 2, 3, 7):
        np.testing.assert_array_equal(score.predict_sliced(model.predictor, frame, slices), whole)


def test_slices_follow_the_thread_budget_and_keep_a_minimum_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert score.slice_count(1_000_000, 0) == 4  # 0: OMP_NUM_THREADS, else the cores
    assert score.slice_count(1_000_000, 2) == 2  # --threads wins
    assert score.slice_count(1_000_000, 1) == 1  # the parallel component's default: one thread per worker
    assert score.slice_count(60_000, 4) == 2  # at least 25k rows a slice
    assert score.slice_count(10_000, 4) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert score.slice_count(1_000_000, 0) == min(len(os.sched_getaffinity(0)), 40)
