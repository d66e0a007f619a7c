"""prep: validate raw data against its declared schema; write a clean, digest-versioned snapshot and a
quarantine.

    python -m amlops.steps.prep --raw data.csv --schema demand.yaml --snapshot OUT --quarantine OUT
        [--max-bad-row-share 0.05] [--data-uri azureml:demand:3]

Outputs: `snapshot/` (data.parquet + manifest.json with the content digest), `quarantine/` (quarantine.csv
with a `_reason` per row + report.json). Exit 1 with one `error: ...` line naming file, column and rule when
the data cannot be used or more than `max_bad_row_share` of the rows are invalid (the quarantine is still
written).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from amlops.data.io import DataFileError, read_table
from amlops.data.schema import SchemaFileError, load_schema
from amlops.data.snapshot import write_snapshot
from amlops.data.validate import DataValidationError, ValidationReport, enforce_limit, validate_frame

QUARANTINE_FILE = "quarantine.csv"
REPORT_FILE = "report.json"


def write_quarantine(report: ValidationReport, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / QUARANTINE_FILE
    report.quarantine.to_csv(path, index=False, lineterminator="\n")
    (folder / REPORT_FILE).write_text(
        json.dumps(report.summary(), indent=2, default=str) + "\n", encoding="utf-8"
    )
    return path


def prep(
    raw: str | Path,
    schema_path: str | Path,
    snapshot_dir: str | Path,
    quarantine_dir: str | Path,
    *,
    max_bad_row_share: float = 0.05,
    data_uri: str = "",
) -> dict[str, Any]:
    """Validate `raw` (file or folder); returns the snapshot manifest. Raises DataValidationError /
    DataFileError /
    SchemaFileError with one line when the data cannot be used."""
    if not 0.0 <= max_bad_row_share <= 1.0:
        raise DataValidationError(f"max_bad_row_share must be between 0 and 1, got {max_bad_row_share}")
    schema = load_schema(schema_path)
    df = read_table(raw)
    report = validate_frame(df, schema, source=str(raw))
    write_quarantine(report, Path(quarantine_dir))
    enforce_limit(report, max_bad_row_share)
    return write_snapshot(
        report.clean,
        schema,
        snapshot_dir,
        source=str(raw),
        data_uri=data_uri or str(Path(raw).resolve()),
        raw_rows=report.total_rows,
        quarantined_rows=report.bad_rows,
        warnings=report.warnings,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amlops.steps.prep", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", help="raw data: a CSV/Parquet file or a folder of them")
    parser.add_argument("--schema", required=True, help="declared schema YAML")
    parser.add_argument("--snapshot", required=True, help="output folder for the clean snapshot")
    parser.add_argument("--quarantine", required=True, help="output folder for invalid rows and the report")
    parser.add_argument("--max-bad-row-share", type=float, default=0.05)
    parser.add_argument(
        "--data-uri",
        nargs="?",
        const="",
        default="",
        help="where the data came from, for lineage (azureml:x:1)",
    )
    args = parser.parse_args(argv)
    if not args.raw:
        print(
            "error: no raw data given: set the pipeline input raw_file or raw_folder (or pass --raw)",
            file=sys.stderr,
        )
        return 1
    try:
        manifest = prep(
            args.raw,
            args.schema,
            args.snapshot,
            args.quarantine,
            max_bad_row_share=args.max_bad_row_share,
            data_uri=args.data_uri,
        )
    except (DataFileError, DataValidationError, SchemaFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in manifest.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"snapshot {manifest['version']}: {manifest['rows']} rows "
        f"({manifest['date_min']} .. {manifest['date_max']}), "
        f"{manifest['quarantined_rows']} quarantined; digest {manifest['digest']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
