"""Map-reduce monitor benchmark: the parallel map (2 workers) + merge vs the single-process monitor, same run.

Data: monitor_bench's drifted current copy, BENCH_MR_ROWS rows (default 100,000,000) in files of 10M rows, and
the reference profile of its 1M-row reference. Each side runs as the local runner runs it: the single process is
`python -m amlops.steps.monitor` (its default threads), the map is the parallel driver
(`python -m amlops.runner.parallel`, BENCH_MR_WORKERS workers of one thread, one file per mini-batch) followed by
`python -m amlops.steps.monitor_reduce`. Peak RSS comes from wait4(): for the map it is the largest of the driver
and its workers. Both result.json files must be identical (created_at aside). Then the merge cost: 1,000 partials
(copies of the run's own partials) read, merged and scored in one process.

Environment: BENCH_MR_ROWS, BENCH_MR_WORKERS (2), BENCH_MR_PARTIALS (1000). Results on stdout and
bench/results/mapreduce-<time>.json, with the load average before and after (the machine is shared).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

import monitor_bench as mb  # noqa: E402

PY = str(ROOT / ".venv/bin/python")
TARGETS = {"speedup": 1.6, "worker_rss_mb": 1024.0, "merge_1000_seconds": 2.0}


def timed(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Wall seconds and peak RSS (MB, the process and its waited-for descendants) of one command."""
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PYTHONPATH"] = str(ROOT / "src")
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out = proc.stdout.read() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime  # the process and its waited-for descendants (the map's workers)
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def map_spec(folder: Path, model: Path, partials: Path, summary: Path, workers: int) -> dict[str, Any]:
    """What the local runner writes for components/monitor_map.yml (runner/local.py `_parallel_command`)."""
    args = (
        f"--data {folder} --model-dir {model} --window all --chunk-rows 250000 --min-window-rows 500 "
        f"--threads 1 --partials {partials}"
    )
    return {
        "entry_script": str(ROOT / "src/amlops/steps/monitor_map.py"),
        "program_arguments": args,
        "input_data": str(folder),
        "input_type": "uri_folder",
        "append_row_to": str(summary),
        "mini_batch_size": "1",
        "max_concurrency_per_instance": workers,
        "error_threshold": 0,
        "mini_batch_error_threshold": 0,
        "retry_settings": {"max_retries": 0, "timeout": 3600},
    }


def comparable(path: Path) -> str:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("created_at", None)
    return json.dumps(data, sort_keys=True)


def merge_cost(partials: Path, model: Path, count: int) -> dict[str, Any]:
    """Read, merge and score `count` partials in this process (copies of the run's partials)."""
    from amlops.drift import partial
    from amlops.drift.profile import ReferenceProfile
    from amlops.steps.monitor_reduce import reduce_partials

    sources = sorted(partials.glob(f"*{partial.PARTIAL_SUFFIX}"))
    many = Path(tempfile.mkdtemp(prefix="amlops-merge-"))
    try:
        for i in range(count):
            shutil.copy(sources[i % len(sources)], many / f"copy-{i:05d}{partial.PARTIAL_SUFFIX}")
        size = sum(f.stat().st_size for f in many.iterdir())
        profile = ReferenceProfile.from_json(model / "reference_profile.json")
        started = time.perf_counter()
        states = partial.read_all(many)
        read = time.perf_counter() - started
        result = reduce_partials(profile, states)
        total = time.perf_counter() - started
    finally:
        shutil.rmtree(many, ignore_errors=True)
    return {
        "partials": count,
        "bytes_per_partial": size // count,
        "read_seconds": round(read, 3),
        "seconds": round(total, 3),
        "rows": result.current.row_count,
    }


def main() -> int:
    rows = int(os.environ.get("BENCH_MR_ROWS", "100000000"))
    workers = int(os.environ.get("BENCH_MR_WORKERS", "2"))
    count = int(os.environ.get("BENCH_MR_PARTIALS", "1000"))
    load_before = os.getloadavg()
    cores = os.cpu_count()
    print(
        f"[map-reduce monitor, {rows:,} rows, {workers} workers; load {load_before[0]:.1f} on {cores} cores]"
    )
    folder = mb.big_dataset(rows)
    reference = mb.dataset(1_000_000)["reference"]
    work = Path(tempfile.mkdtemp(prefix="amlops-mrbench-"))
    try:
        model = work / "model"
        model.mkdir()
        profile, _ = mb.build_profile(reference, 1_000_000)
        shutil.copy(profile, model / "reference_profile.json")
        single = timed(
            [PY, "-m", "amlops.steps.monitor", "--current", str(folder), "--model-dir", str(model),
             "--window", "all", "--output", str(work / "single")],
            work,
        )  # fmt: skip
        spec = work / "map_spec.json"
        spec.write_text(json.dumps(map_spec(folder, model, work / "partials", work / "summary", workers)))
        mapped = timed([PY, "-m", "amlops.runner.parallel", "--spec", str(spec)], work)
        reduced = timed(
            [PY, "-m", "amlops.steps.monitor_reduce", "--partials", str(work / "partials"), "--model-dir",
             str(model), "--output", str(work / "mapreduce")],
            work,
        )  # fmt: skip
        identical = comparable(work / "single/result.json") == comparable(work / "mapreduce/result.json")
        merge = merge_cost(work / "partials", model, count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    mr_seconds = mapped["seconds"] + reduced["seconds"]
    speedup = single["seconds"] / mr_seconds
    report = {
        "rows": rows,
        "workers": workers,
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "single": single,
        "map": mapped,
        "reduce": reduced,
        "speedup": round(speedup, 2),
        "identical": identical,
        "map_rows_per_worker_second": round(rows / (mapped["seconds"] * workers)),
        "map_rows_per_cpu_second": round(rows / mapped["cpu_seconds"]),
        "single_rows_per_cpu_second": round(rows / single["cpu_seconds"]),
        "merge": merge,
        "targets": TARGETS,
    }
    print(f"  single process      {single['seconds']:8.1f} s  peak {single['rss_mb']:7.0f} MB")
    print(
        f"  map ({workers} workers)     {mapped['seconds']:8.1f} s  peak {mapped['rss_mb']:7.0f} MB per process"
    )
    print(f"  reduce              {reduced['seconds']:8.1f} s  peak {reduced['rss_mb']:7.0f} MB")
    print(f"  speed-up {speedup:.2f}x (target >= {TARGETS['speedup']}), identical results: {identical}")
    print(
        f"  merge of {merge['partials']:,} partials ({merge['bytes_per_partial']:,} B each): "
        f"{merge['seconds']:.2f} s (target < {TARGETS['merge_1000_seconds']} s)"
    )
    print(f"  load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    mb.RESULTS.mkdir(parents=True, exist_ok=True)
    out = mb.RESULTS / f"mapreduce-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"results: {out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
