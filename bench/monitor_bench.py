"""Monitor benchmark: amlops vs Evidently vs NannyML vs a read-once floor, on the same Parquet files, same
run.

Data: 20 numeric + 5 categorical columns; the drifted current copy shifts 5 numeric (n00-n04) and 2
categorical (c0, c1) columns, the clean current copy is a fresh sample of the reference distribution. Every
tool runs in its own interpreter (peers in their own venvs, bench/.venv-*), so peak RSS is per tool. amlops
and the floor report the median of BENCH_RUNS runs; the peers one run each (they take minutes at 1M rows).

Environment: BENCH_SIZES (default 100000,1000000), BENCH_RUNS (5), BENCH_SKIP_PEERS=1, BENCH_SKIP_100M=1,
BENCH_BIG_ROWS (100000000), BENCH_PEERS_CLEAN_ALL=1 (peers on the clean copy at every size, not only the
smallest). Results: a table on stdout and bench/results/monitor-<time>.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DATA = BENCH / "data"
RESULTS = BENCH / "results"
WORKERS = BENCH / "workers"
GENERATOR_VERSION = "1"

NUMERIC = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
DRIFTED = {"n00", "n01", "n02", "n03", "n04", "c0", "c1"}
CARDINALITY = [5, 10, 20, 50, 3]
KINDS = ["normal", "lognormal", "uniform", "gamma", "poisson"]
PYTHON = {
    "amlops": ROOT / ".venv/bin/python",
    "floor": ROOT / ".venv/bin/python",
    "evidently": BENCH / ".venv-evidently/bin/python",
    "nannyml": BENCH / ".venv-nannyml/bin/python",
}
TARGETS = {
    "amlops_1m_seconds": 1.0,
    "vs_evidently": 100.0,
    "vs_nannyml": 15.0,
    "vs_floor": 3.0,
    "big_rss_mb": 1024.0,
}


# ------------------------------------------------------------------------------------------ data
def _numeric(kind: str, i: int, n: int, rng: np.random.Generator, drift: bool) -> np.ndarray:
    """Column i of a kind; `drift` applies the injected change (only called for n00-n04)."""
    loc = 10.0 * (i + 1)
    if kind == "normal":
        x = rng.normal(loc, 2.0, n)
        return x + 1.0 if drift else x  # +0.5 sd
    if kind == "lognormal":
        x = rng.lognormal(1.0, 0.5, n)
        return x * 1.5 if drift else x
    if kind == "uniform":
        x = rng.uniform(loc, loc + 4.0, n)
        return x + 1.0 if drift else x  # a quarter of the range
    if kind == "gamma":
        return rng.gamma(2.0, 1.4 if drift else 1.0, n)
    return rng.poisson(13.0 if drift else 10.0, n).astype(np.float64)


def _categorical(j: int, n: int, rng: np.random.Generator, drift: bool) -> pa.Array:
    k = CARDINALITY[j]
    p = 1.0 / np.arange(1, k + 1)
    p /= p.sum()
    if drift:
        p = p[::-1].copy()  # the rare categories become the common ones
    idx = np.searchsorted(np.cumsum(p), rng.random(n), side="right").clip(0, k - 1).astype(np.int32)
    dictionary = pa.array([f"{chr(97 + j)}{v:02d}" for v in range(k)])
    # Stored as plain strings (Parquet dictionary-encodes them on disk), as most exported data is.
    return pa.DictionaryArray.from_arrays(pa.array(idx), dictionary).cast(pa.string())


def make_table(n: int, seed: int, drift: bool) -> pa.Table:
    rng = np.random.default_rng(seed)
    arrays: dict[str, pa.Array] = {}
    for i, name in enumerate(NUMERIC):
        arrays[name] = pa.array(_numeric(KINDS[i % len(KINDS)], i, n, rng, drift and name in DRIFTED))
    for j, name in enumerate(CATEGORICAL):
        arrays[name] = _categorical(j, n, rng, drift and name in DRIFTED)
    return pa.table(arrays)


def dataset(n: int) -> dict[str, Path]:
    """reference / drift / clean Parquet files of n rows (cached under bench/data/<n>/)."""
    folder = DATA / f"{n}"
    stamp = folder / f".v{GENERATOR_VERSION}"
    files = {name: folder / f"{name}.parquet" for name in ("reference", "drift", "clean")}
    if stamp.exists() and all(f.exists() for f in files.values()):
        return files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path, (seed, drift) in zip(files.values(), ((1, False), (2, True), (3, False)), strict=True):
        pq.write_table(make_table(n, seed, drift), path, row_group_size=min(n, 1_000_000))
    stamp.touch()
    return files


def big_dataset(rows: int, chunk: int = 1_000_000) -> Path:
    """A drifted current dataset of `rows` rows written chunk by chunk (never whole in memory)."""
    folder = DATA / f"big-{rows}"
    stamp = folder / f".v{GENERATOR_VERSION}"
    if stamp.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    per_file = 10 * chunk
    written = 0
    part = 0
    while written < rows:
        path = folder / f"part-{part:04d}.parquet"
        writer: pq.ParquetWriter | None = None
        in_file = 0
        while in_file < per_file and written < rows:
            n = min(chunk, rows - written)
            table = make_table(n, 1000 + written // chunk, drift=True)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=n)
            written += n
            in_file += n
        assert writer is not None
        writer.close()
        part += 1
        print(f"  generated {written:,} / {rows:,} rows", end="\r", flush=True)
    print()
    stamp.touch()
    return folder


# ------------------------------------------------------------------------------------------ running
def run_worker(tool: str, reference: Path, current: Path, profile: Path | None, runs: int) -> dict[str, Any]:
    python = PYTHON[tool]
    if not python.exists():
        return {"tool": tool, "error": f"{python} missing (bench/run.sh creates it)"}
    cmd = [
        str(python),
        str(WORKERS / f"{tool}_worker.py"),
        "--reference",
        str(reference),
        "--current",
        str(current),
        "--numeric",
        ",".join(NUMERIC),
        "--categorical",
        ",".join(CATEGORICAL),
        "--runs",
        str(runs),
    ]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    env = {**os.environ, "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(WORKERS)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=WORKERS, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"tool": tool, "error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(lines[-1])


def build_profile(reference: Path, n: int) -> tuple[Path, float]:
    """Profile the reference once (timed) with the project's own code."""
    sys.path.insert(0, str(ROOT / "src"))
    from amlops.drift.monitor import iter_batches, open_dataset
    from amlops.drift.profile import build_profile_from_batches

    path = DATA / f"{n}" / "reference_profile.json"
    started = time.perf_counter()
    ds = open_dataset(str(reference))
    profile = build_profile_from_batches(
        iter_batches(ds, NUMERIC + CATEGORICAL, 1_000_000), NUMERIC, CATEGORICAL
    )
    profile.to_json(path)
    return path, time.perf_counter() - started


def flags(result: dict[str, Any], case: str) -> str:
    if "error" in result:
        return "error"
    found = set(result["drifted"])
    if case == "drift":
        hit, extra = len(found & DRIFTED), sorted(found - DRIFTED)
        return f"{hit}/{len(DRIFTED)} injected" + (f", {len(extra)} false" if extra else "")
    return "no false alarm" if not found else f"{len(found)} false: {','.join(sorted(found))}"


def describe(res: dict[str, Any], case: str) -> str:
    if "error" in res:
        return f"error: {res['error']}"
    return (
        f"{res['seconds']:8.3f} s  cpu {res['cpu_seconds']:7.3f} s  rss {res['peak_rss_mb']:7.0f} MiB  "
        f"{flags(res, case)}"
    )


# ------------------------------------------------------------------------------------------ main
def main() -> int:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "100000,1000000").split(",") if s]
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    skip_peers = os.environ.get("BENCH_SKIP_PEERS") == "1"
    peers_clean_all = os.environ.get("BENCH_PEERS_CLEAN_ALL") == "1"
    print(
        f"monitor bench · {os.cpu_count()} cores · load {os.getloadavg()[0]:.1f} · sizes {sizes} · "
        f"median of {runs} runs (peers: 1)"
    )
    rows: list[dict[str, Any]] = []
    profiles: dict[int, Path] = {}
    for n in sizes:
        files = dataset(n)
        profile, seconds = build_profile(files["reference"], n)
        profiles[n] = profile
        print(
            f"[{n:,} rows] reference profile built in {seconds:.2f} s "
            f"({profile.stat().st_size / 1024:.0f} KiB)"
        )
        for case in ("drift", "clean"):
            tools = ["amlops", "floor"]
            if not skip_peers and (case == "drift" or n == min(sizes) or peers_clean_all):
                tools += ["evidently", "nannyml"]
            for tool in tools:
                k = runs if tool in ("amlops", "floor") else 1
                res = run_worker(
                    tool, files["reference"], files[case], profile if tool == "amlops" else None, k
                )
                res.update(rows=n, case=case)
                rows.append(res)
                print(f"  {case:5s} {tool:9s} {describe(res, case)}", flush=True)
    big = None
    if os.environ.get("BENCH_SKIP_100M") != "1":
        big_rows = int(os.environ.get("BENCH_BIG_ROWS", "100000000"))
        print(f"[{big_rows:,} rows streamed] generating (chunked) ...", flush=True)
        folder = big_dataset(big_rows)
        base = max(sizes)
        profile = profiles.get(base) or build_profile(dataset(base)["reference"], base)[0]
        big = run_worker("amlops", dataset(base)["reference"], folder, profile, 1)
        big.update(rows=big_rows, case="drift-streamed")
        rows.append(big)
        print(f"  amlops {describe(big, 'drift')}")
    print_table(rows, sizes, big)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"monitor-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(
        json.dumps({"load_average": os.getloadavg(), "rows": rows}, indent=1) + "\n", encoding="utf-8"
    )
    print(f"results: {out}")
    return 0


def _get(rows: list[dict[str, Any]], tool: str, n: int, case: str = "drift") -> dict[str, Any] | None:
    for r in rows:
        if r["tool"] == tool and r["rows"] == n and r["case"] == case and "error" not in r:
            return r
    return None


def print_table(rows: list[dict[str, Any]], sizes: list[int], big: dict[str, Any] | None) -> None:
    print()
    head = (
        f"{'rows':>11} {'case':6} {'tool':10} {'seconds':>9} {'cpu s':>8} {'rows/s':>12} {'peak RSS':>9} "
        f"{'x amlops':>9}  flags"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['rows']:>11,} {r['case'][:6]:6} {r['tool']:10} error: {r['error']}")
            continue
        ref = _get(rows, "amlops", r["rows"], r["case"])
        ratio = r["seconds"] / ref["seconds"] if ref and r["tool"] != "amlops" else None
        label = "clean" if r["case"] == "clean" else "drift"
        times = f"{r['seconds']:>9.3f} {r['cpu_seconds']:>8.3f} {r['rows'] / r['seconds']:>12,.0f}"
        ratio_text = f"{ratio:.2f}x" if ratio else ""
        print(
            f"{r['rows']:>11,} {r['case'][:6]:6} {r['tool']:10} {times} {r['peak_rss_mb']:>7.0f}MB "
            f"{ratio_text:>9}  {flags(r, label)}"
        )
    print()
    n = 1_000_000 if 1_000_000 in sizes else max(sizes)
    a, e, nm, fl = (_get(rows, t, n) for t in ("amlops", "evidently", "nannyml", "floor"))
    checks: list[tuple[str, bool | None, str]] = []
    if a:
        checks.append(
            (
                f"amlops {n:,} rows x 25 features <= {TARGETS['amlops_1m_seconds']} s median",
                a["seconds"] <= TARGETS["amlops_1m_seconds"],
                f"{a['seconds']:.3f} s (cpu {a['cpu_seconds']:.3f} s)",
            )
        )
    if a and e:
        checks.append(
            (
                f">= {TARGETS['vs_evidently']:.0f}x faster than Evidently",
                e["seconds"] / a["seconds"] >= TARGETS["vs_evidently"],
                f"{e['seconds'] / a['seconds']:.0f}x",
            )
        )
    if a and nm:
        checks.append(
            (
                f">= {TARGETS['vs_nannyml']:.0f}x faster than NannyML",
                nm["seconds"] / a["seconds"] >= TARGETS["vs_nannyml"],
                f"{nm['seconds'] / a['seconds']:.0f}x",
            )
        )
    if a and fl:
        checks.append(
            (
                f"within {TARGETS['vs_floor']:.0f}x of the read-once floor",
                a["seconds"] / fl["seconds"] <= TARGETS["vs_floor"],
                f"{a['seconds'] / fl['seconds']:.2f}x",
            )
        )
    for tool in ("amlops", "evidently", "nannyml"):
        d = _get(rows, tool, n)
        if d:
            checks.append(
                (
                    f"{tool} flags the 7 injected columns ({n:,})",
                    set(d["drifted"]) >= DRIFTED,
                    flags(d, "drift"),
                )
            )
        for size in sizes:
            c = _get(rows, tool, size, "clean")
            if c:
                checks.append(
                    (
                        f"{tool} no false alarm on the clean copy ({size:,})",
                        not c["drifted"],
                        flags(c, "clean"),
                    )
                )
    if big and "error" not in big:
        checks.append(
            (
                f"{big['rows']:,} rows streamed: peak RSS < {TARGETS['big_rss_mb']:.0f} MiB",
                big["peak_rss_mb"] < TARGETS["big_rss_mb"],
                f"{big['peak_rss_mb']:.0f} MiB",
            )
        )
        if a:
            per_row_small = a["seconds"] / a["rows"]
            per_row_big = big["seconds"] / big["rows"]
            checks.append(
                (
                    "time linear in rows (100M per-row time within 1.5x of 1M)",
                    per_row_big <= 1.5 * per_row_small,
                    f"{big['rows'] / big['seconds']:,.0f} vs {a['rows'] / a['seconds']:,.0f} rows/s",
                )
            )
    for label, ok, detail in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {label}: {detail}")
    print(
        "  note: wall-clock on a shared 2-core machine; cpu s is the process CPU time (less load-sensitive)."
    )


if __name__ == "__main__":
    sys.exit(main())
