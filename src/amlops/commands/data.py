"""`amlops data generate | validate | register`: synthetic demand data, schema checks, data assets on Azure
ML."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from amlops.commands.options import EnvOption
from amlops.console import UserError, handle_errors, out, warn
from amlops.errors import UsageError

# GeneratorConfig's defaults (generate.py imports numpy and pandas, which `--help` must not wait for);
# tests/newcomer/test_first_session.py holds them equal (and tests/training/test_generate.py the kinds).
DEFAULT_STORES, DEFAULT_PRODUCTS = 5, 40
DRIFT_HELP = (
    "price_shift | new_category | promo_response | seasonality | covariate_shift | level_shift | slow_movers"
    " (repeatable)"
)


def _date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected a date as YYYY-MM-DD") from None


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Synthetic demand data, schema validation, Azure ML data assets.", no_args_is_help=True
    )

    @group.command("generate")
    @handle_errors
    def generate(
        out_path: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv, .csv.gz or .parquet")],
        start: Annotated[str, typer.Option("--start", help="First day (YYYY-MM-DD)")] = "2024-01-01",
        days: Annotated[int, typer.Option("--days", min=1, help="Number of days")] = 365,
        stores: Annotated[int, typer.Option("--stores", min=1)] = DEFAULT_STORES,
        products: Annotated[int, typer.Option("--products", min=1)] = DEFAULT_PRODUCTS,
        seed: Annotated[
            int, typer.Option("--seed", help="Same seed, same data (and a longer series extends a shorter)")
        ] = 42,
        drift_date: Annotated[
            str | None, typer.Option("--drift-date", help="Drift starts on this day (YYYY-MM-DD)")
        ] = None,
        drift: Annotated[list[str] | None, typer.Option("--drift", help=DRIFT_HELP)] = None,
        drift_strength: Annotated[
            float, typer.Option("--drift-strength", min=0.0, help="Scale of every drift kind")
        ] = 1.0,
        keep_from: Annotated[
            str | None,
            typer.Option(
                "--from",
                help="Write only the days from this one (YYYY-MM-DD): the tail of the same series, as new data",
            ),
        ] = None,
    ) -> None:
        """Write daily sales per store x product (seasonality, holidays, price, promotions, weather)."""
        from amlops.data.generate import GeneratorConfig
        from amlops.data.generate import generate as make
        from amlops.data.io import DataFileError, write_table

        try:
            config = GeneratorConfig(
                start=_date(start, "--start") or date(2024, 1, 1),
                days=days,
                stores=stores,
                products=products,
                seed=seed,
                drift_date=_date(drift_date, "--drift-date"),
                drifts=tuple(drift or ()),
                drift_strength=drift_strength,
                keep_from=_date(keep_from, "--from"),
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
        df = make(config)
        try:
            write_table(df, out_path)
        except DataFileError as exc:
            raise UserError(str(exc)) from None
        first, last = df["date"].min().date(), df["date"].max().date()
        drifted = f"; drift {', '.join(config.drifts)} from {config.drift_date}" if config.drifts else ""
        out.print(
            f"wrote {len(df):,} rows ({first} .. {last}, {stores} stores x {products} products{drifted}) "
            f"to {out_path}"
        )

    @group.command("validate")
    @handle_errors
    def validate(
        file: Annotated[Path, typer.Argument(help="CSV/Parquet file or folder to check")],
        schema: Annotated[
            Path | None, typer.Option("--schema", help="Schema YAML (default: data.schema_file)")
        ] = None,
        quarantine: Annotated[
            Path | None, typer.Option("--quarantine", help="Write invalid rows + reasons here")
        ] = None,
        max_bad_row_share: Annotated[
            float | None,
            typer.Option("--max-bad-row-share", min=0.0, max=1.0, help="Default: data.max_bad_row_share"),
        ] = None,
    ) -> None:
        """Check data against its declared schema as the prep step would (exit 1 when prep would fail)."""
        from amlops.config import load_settings
        from amlops.data.io import DataFileError, read_table
        from amlops.data.schema import SchemaFileError, load_schema
        from amlops.data.validate import DataValidationError, enforce_limit, validate_frame

        settings = load_settings()
        schema_path = schema or settings.schema_path()
        limit = settings.data.max_bad_row_share if max_bad_row_share is None else max_bad_row_share
        try:
            declared = load_schema(schema_path)
            report = validate_frame(read_table(file), declared, source=str(file))
        except (SchemaFileError, DataFileError, DataValidationError) as exc:
            raise UserError(str(exc)) from None
        if quarantine is not None:
            quarantine.parent.mkdir(parents=True, exist_ok=True)
            report.quarantine.to_csv(quarantine, index=False)
        for message in report.warnings:
            warn(message)
        if report.rule_counts:
            from rich.table import Table

            table = Table(title=f"{file}: invalid rows by rule", title_justify="left")
            for col in ("column", "rule", "rows"):
                table.add_column(col)
            for column, rule, n in report.top_rules(20):
                table.add_row(column, rule, f"{n:,}")
            out.print(table)
        out.print(
            f"{file}: {report.total_rows:,} rows, {len(report.clean):,} valid, {report.bad_rows:,} invalid "
            f"({report.bad_share:.2%}; limit {limit:.2%})"
            + (f"; quarantine: {quarantine}" if quarantine else "")
        )
        try:
            enforce_limit(report, limit)
        except DataValidationError as exc:
            raise UserError(str(exc)) from None

    @group.command("register")
    @handle_errors
    def register_asset(
        path: Annotated[
            Path, typer.Argument(help="Folder to register, e.g. a prep snapshot (runs/.../prep/snapshot)")
        ],
        name: Annotated[str, typer.Option("--name", help="Data asset name")] = "demand",
        version: Annotated[
            str | None, typer.Option("--version", help="Default: derived from the content digest")
        ] = None,
        env: EnvOption = None,
        target: Annotated[
            str,
            typer.Option(
                "--target",
                "-t",
                help="azure (default): the workspace; local: the local asset registry `amlops run` resolves "
                "azureml: references from",
            ),
        ] = "azure",
    ) -> None:
        """Register a data folder as an Azure ML data asset (uri_folder), versioned by its content."""
        from amlops.azure.data_assets import register_snapshot
        from amlops.config import load_settings

        if target == "local":
            _register_local(path, name, version)
            return
        if target != "azure":
            raise UsageError(f"--target {target!r}: expected azure or local")
        asset = register_snapshot(path, name, load_settings(), env=env, version=version)
        out.print(f"registered {asset}  (train on it: amlops train --target azure --data {asset})")

    app.add_typer(group, name="data")


def _register_local(path: Path, name: str, version: str | None) -> None:
    """`data register --target local`: the same content version as on Azure, into the local asset registry."""
    from amlops.azure.data_assets import snapshot_digest, version_for
    from amlops.config import load_settings
    from amlops.runner.assets import register_data

    folder = path.expanduser().resolve()
    if not folder.is_dir() or not any(p.is_file() for p in folder.rglob("*")):
        raise UserError(f"{path}: not a folder with files (a data snapshot is a folder of files)")
    ref, created = register_data(
        load_settings(), folder, name, version or version_for(snapshot_digest(folder))
    )
    state = "registered" if created else "already registered"
    out.print(f"{state} {ref} locally  (amlops run resolves it: path: {ref})")
