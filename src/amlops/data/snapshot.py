"""Clean snapshots: validated rows as Parquet, versioned by the digest of their content.

A snapshot folder holds `data.parquet` and `manifest.json`. The digest is sha256 over a canonical text form
of the rows (columns in schema order, rows in key order, floats in shortest round-trip form, dates in ISO
8601), so the same rows give the same digest whatever the file they came from, the Parquet writer or the
machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd

from amlops.data.schema import DatasetSchema
from amlops.errors import AmlopsError

DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
_CHUNK_ROWS = 200_000


class SnapshotError(AmlopsError, ValueError):
    """A snapshot folder that cannot be read."""


def content_digest(df: pd.DataFrame, schema: DatasetSchema) -> str:
    """`sha256:<hex>` of the rows' canonical serialisation (see module docstring)."""
    canonical = df[schema.column_names].sort_values(schema.sort_columns, kind="mergesort")
    for spec in schema.columns:
        col = canonical[spec.name]
        if spec.dtype == "date":
            canonical[spec.name] = col.dt.strftime("%Y-%m-%d")
        elif spec.dtype == "datetime":
            canonical[spec.name] = col.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    h = hashlib.sha256()
    h.update(("\x1f".join(schema.column_names) + "\n").encode("utf-8"))
    for start in range(0, len(canonical), _CHUNK_ROWS):
        part = canonical.iloc[start : start + _CHUNK_ROWS]
        text = part.to_csv(index=False, header=False, lineterminator="\n", na_rep="\\N", sep="\x1f")
        h.update(text.encode("utf-8"))
    return "sha256:" + h.hexdigest()


def short_version(digest: str) -> str:
    """The first 12 hex digits: enough to tell snapshots apart in names and tables."""
    return digest.split(":", 1)[-1][:12]


def write_snapshot(
    df: pd.DataFrame, schema: DatasetSchema, folder: str | Path, **extra: Any
) -> dict[str, Any]:
    """Write `data.parquet` + `manifest.json`; returns the manifest (digest, version, rows, date range,
    schema)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    digest = content_digest(df, schema)
    dates = df[schema.date_column]
    manifest: dict[str, Any] = {
        "digest": digest,
        "version": short_version(digest),
        "rows": len(df),
        "columns": schema.column_names,
        "date_column": schema.date_column,
        "date_min": dates.min().strftime("%Y-%m-%d") if len(df) else None,
        "date_max": dates.max().strftime("%Y-%m-%d") if len(df) else None,
        "schema": {"name": schema.name, "digest": schema.digest},
        **extra,
    }
    # Write the data first and the manifest last: a folder with a manifest is a complete snapshot.
    tmp = out / f".{DATA_FILE}.tmp"
    df.to_parquet(tmp, index=False)
    tmp.replace(out / DATA_FILE)
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise SnapshotError(
            f"{folder}: not a snapshot (no {MANIFEST_FILE}; was it written by the prep step?)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "digest" not in data:
        raise SnapshotError(f"{path}: no 'digest' in the manifest")
    return data


def read_snapshot(
    folder: str | Path, schema: DatasetSchema | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The snapshot's rows and manifest; with a schema, refuse one validated with another."""
    manifest = read_manifest(folder)
    if schema is not None and manifest.get("schema", {}).get("digest") != schema.digest:
        used = manifest.get("schema", {})
        raise SnapshotError(
            f"{folder}: snapshot was validated with schema {used.get('name')!r} "
            f"({str(used.get('digest', '?'))[:19]}), not with {schema.source or schema.name} "
            f"({schema.digest[:19]})"
        )
    path = Path(folder) / DATA_FILE
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"{path}: cannot read the snapshot ({str(exc).splitlines()[0]})") from None
    return df, manifest
