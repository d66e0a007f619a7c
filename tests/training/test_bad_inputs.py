"""Bad inputs: every case ends in one clear error line (exit 1, no snapshot) or in quarantined rows with a
reason each — and the champion stays where it was."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_helpers import SCHEMA, fresh_store

from amlops import registry
from amlops.config import Settings
from amlops.data.io import write_table
from amlops.steps import prep

Builder = Callable[[pd.DataFrame, Path], Path]


@dataclass(frozen=True)
class Case:
    id: str
    build: Builder
    # Expected: a failure whose one line contains all of `error`, or `rows` quarantined for `reason`.
    error: tuple[str, ...] = ()
    reason: str = ""
    rows: int = 0


def csv(df: pd.DataFrame, tmp: Path, name: str = "raw.csv") -> Path:
    return write_table(df, tmp / name)


def edit(fn: Callable[[pd.DataFrame], pd.DataFrame], name: str = "raw.csv") -> Builder:
    return lambda df, tmp: csv(fn(df.copy()), tmp, name)


def set_rows(column: str, value: object, rows: slice) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        df[column] = df[column].astype(object)
        df.loc[df.index[rows], column] = value
        return df

    return fn


def text_file(content: bytes, name: str) -> Builder:
    def build(df: pd.DataFrame, tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(content)
        return path

    return build


def semicolons(df: pd.DataFrame, tmp: Path) -> Path:
    path = tmp / "raw.csv"
    path.write_text(df.head(20).to_csv(index=False, sep=";"))
    return path


def parquet_with_text_prices(df: pd.DataFrame, tmp: Path) -> Path:
    df = df.copy()
    df["price"] = df["price"].astype(str)
    df.loc[df.index[:3], "price"] = "n/a-price"
    return write_table(df, tmp / "raw.parquet")


def duplicate_rows(df: pd.DataFrame) -> pd.DataFrame:
    dup = df.iloc[[10]].copy()
    dup["row_id"] = "dup-1"
    return pd.concat([df, dup], ignore_index=True)


def swap_dates(df: pd.DataFrame) -> pd.DataFrame:
    # Move one row of a series to the end of the file: its date is then earlier than the series' last date.
    first = df.index[(df["store_id"] == "S001") & (df["product_id"] == "P001")][5]
    return pd.concat([df.drop(index=first), df.loc[[first]]], ignore_index=True)


CASES = [
    # --- the file cannot be used: one line, exit 1
    Case("missing-column", edit(lambda d: d.drop(columns=["price"])), error=("'price'", "required")),
    Case(
        "wrong-dtype-column", edit(set_rows("price", "cheap", slice(None))), error=("'price'", "dtype(float)")
    ),
    Case(
        "all-null-column",
        edit(set_rows("units_sold", None, slice(None))),
        error=("'units_sold'", "not_nullable"),
    ),
    Case("empty-file", text_file(b"", "raw.csv"), error=("raw.csv", "file is empty")),
    Case("header-only", text_file(b"row_id,date,price\n", "raw.csv"), error=("raw.csv", "no data rows")),
    Case(
        "corrupt-parquet",
        text_file(b"PAR1\x00\x01garbage\x00PAR1", "raw.parquet"),
        error=("not a valid Parquet",),
    ),
    Case("wrong-delimiter", semicolons, error=("wrong delimiter", "';'")),
    Case(
        "ragged-csv",
        text_file(b"row_id,date,store_id\na,2024-01-01,S001\nb,2024-01-02,S001,extra\n", "raw.csv"),
        error=("not valid CSV",),
    ),
    Case("not-utf8", text_file(b"\xff\xfe\x00b\x00i\x00n\x00\n\x00\x01", "raw.csv"), error=("not UTF-8",)),
    Case("unsupported-type", text_file(b"a,b\n1,2\n", "raw.xlsx"), error=("unsupported file type",)),
    Case(
        "too-many-nulls",
        edit(set_rows("temperature", None, slice(0, 600))),
        error=("'temperature'", "max_null_share(0.2)"),
    ),
    Case(
        "unseen-category-everywhere",
        edit(set_rows("store_type", "megastore", slice(None))),
        error=("'store_type'", "isin", "no valid rows"),
    ),
    Case(
        "negative-demand-many",
        edit(lambda d: d.assign(units_sold=-d["units_sold"] - 1)),
        error=("'units_sold'", "greater_than_or_equal_to(0", "no valid rows"),
    ),
    # --- some rows are bad: they are quarantined with a reason, the rest goes on
    Case(
        "wrong-dtype-rows",
        edit(set_rows("price", "cheap", slice(0, 4))),
        reason="price: dtype(float)",
        rows=4,
    ),
    Case(
        "unseen-category-rows",
        edit(set_rows("store_type", "kiosk", slice(0, 3))),
        reason="store_type: isin",
        rows=3,
    ),
    Case(
        "negative-demand-rows",
        edit(set_rows("units_sold", -5, slice(0, 2))),
        reason="units_sold: greater_than_or_equal_to(0",
        rows=2,
    ),
    Case("duplicate-keys", edit(duplicate_rows), reason="date,store_id,product_id: duplicate_key", rows=2),
    Case("inf-values", edit(set_rows("price", np.inf, slice(0, 3))), reason="price: finite", rows=3),
    Case(
        "unparseable-date",
        edit(set_rows("date", "2024-02-30", slice(0, 2))),
        reason="date: dtype(date)",
        rows=2,
    ),
    Case("date-out-of-order", edit(swap_dates), reason="dates_in_order", rows=1),
    Case(
        "fractional-units",
        edit(set_rows("units_sold", 2.5, slice(0, 2))),
        reason="units_sold: dtype(int)",
        rows=2,
    ),
    Case("flag-not-allowed", edit(set_rows("promotion", 2, slice(0, 2))), reason="promotion: isin", rows=2),
    Case(
        "bad-id-pattern",
        edit(set_rows("store_id", "store-1", slice(0, 2))),
        reason="store_id: pattern",
        rows=2,
    ),
    Case("text-in-parquet", parquet_with_text_prices, reason="price: dtype(float)", rows=3),
]


@pytest.fixture(scope="module")
def champion_registry(
    tmp_path_factory: pytest.TempPathFactory, store_template: Path
) -> Iterator[tuple[Settings, str]]:
    """A registry with a champion (a registered version; the matrix never gets as far as training)."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    settings = Settings(base_dir=root, model_name="bad-inputs")
    fresh_store(settings, store_template)
    client = registry.client_for(settings)
    registry.ensure_registered_model(client, settings.model_name)
    (root / "model").mkdir()
    mv = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri).create_model_version(
        settings.model_name, source=str(root / "model")
    )
    registry.promote(client, settings.model_name, mv.version, reason="baseline", actor="test")
    yield settings, str(mv.version)


def run_prep(raw: Path, tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = prep.main(
        [
            "--raw",
            str(raw),
            "--schema",
            str(SCHEMA),
            "--snapshot",
            str(tmp / "snapshot"),
            "--quarantine",
            str(tmp / "quarantine"),
        ]
    )
    return code, capsys.readouterr().err.strip().splitlines()


def test_the_matrix_is_large_enough() -> None:
    assert len(CASES) >= 15
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(
    case: Case,
    demand_df: pd.DataFrame,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    champion_registry: tuple[Settings, str],
) -> None:
    raw = case.build(demand_df, tmp_path)
    code, err = run_prep(raw, tmp_path, capsys)
    if case.error:
        assert code == 1
        errors = [line for line in err if line.startswith("error:")]
        assert len(errors) == 1 and len(err) == 1, err  # one line, no traceback
        for part in case.error:
            assert part in errors[0], errors[0]
        assert not (tmp_path / "snapshot" / "manifest.json").exists()
    else:
        assert code == 0, err
        quarantined = pd.read_csv(tmp_path / "quarantine" / "quarantine.csv", dtype=str)
        assert len(quarantined) == case.rows
        assert quarantined["_reason"].str.contains(case.reason, regex=False).all(), quarantined[
            "_reason"
        ].tolist()
        manifest = json.loads((tmp_path / "snapshot" / "manifest.json").read_text())
        assert manifest["quarantined_rows"] == case.rows
        assert manifest["rows"] == manifest["raw_rows"] - case.rows
        clean = pd.read_parquet(tmp_path / "snapshot" / "data.parquet")
        assert len(clean) == manifest["rows"] and clean["units_sold"].ge(0).all()
        assert np.isfinite(clean["price"]).all()
    settings, champion = champion_registry
    assert registry.resolve_champion(settings, settings.model_name) == (
        champion,
        registry.model_uri(settings.model_name, champion),
    )


def test_the_error_names_the_file_column_and_rule(
    demand_df: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = csv(set_rows("price", -1.0, slice(0, 400))(demand_df.copy()), tmp_path)
    code, err = run_prep(raw, tmp_path, capsys)
    assert code == 1
    assert err == [
        f"error: {raw}: column 'price': rule 'greater_than_or_equal_to(0.01)' "
        "failed on 400 row(s), e.g. '-1.0'; "
        f"400 of {len(demand_df)} rows invalid ({400 / len(demand_df):.1%}), above max_bad_row_share 5.0%"
    ]
    # The quarantine is written even when the step fails, so the rows can be inspected.
    assert len(pd.read_csv(tmp_path / "quarantine" / "quarantine.csv")) == 400


def test_a_higher_limit_lets_the_same_data_through(demand_df: pd.DataFrame, tmp_path: Path) -> None:
    raw = csv(set_rows("price", -1.0, slice(0, 400))(demand_df.copy()), tmp_path)
    manifest = prep.prep(raw, SCHEMA, tmp_path / "s", tmp_path / "q", max_bad_row_share=0.25)
    assert manifest["quarantined_rows"] == 400


def test_the_step_as_a_process_exits_1_with_one_line(demand_df: pd.DataFrame, tmp_path: Path) -> None:
    import subprocess
    import sys

    raw = csv(demand_df.drop(columns=["holiday"]), tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "amlops.steps.prep",
            "--raw",
            str(raw),
            "--schema",
            str(SCHEMA),
            "--snapshot",
            str(tmp_path / "s"),
            "--quarantine",
            str(tmp_path / "q"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {raw}: column 'holiday': rule 'required': missing from the data "
        "(found: row_id, date, store_id, store_type, product_id, product_category, price, promotion, ...)"
    ]
