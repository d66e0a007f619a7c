"""Map-reduce monitor benchmark: the parallel map (2 workers) + merge vs the single-process monitor, same run.

Data: monitor_bench's drifted current copy, BENCH_MR_ROWS rows (default 100,000,000) in files of 10M rows, and
the reference profile of its 1M-row reference. Each side runs as the local runner runs it: the single process is
`python -m amlops.steps.monitor` (its default threads), the map is the parallel driver
(`python -m amlops.runner.parallel`, BENCH_MR_WORKERS workers of one thread, one file per mini-batch) followed by
`python -m amlops.steps.monitor_reduce`. Wall and CPU seconds (user + sys, the process and its waited-for
children) side by side; peak RSS per map worker from the workers' own summary lines (getrusage in each worker);
both result.json files must be identical (created_at aside). Then the merge cost: 1,000 partials (copies of the
run's own, each given other file names) read, merged and scored in one process.

Environment: BENCH_MR_ROWS, BENCH_MR_WORKERS (2), BENCH_MR_PARTIALS (1000), BENCH_MR_REPEATS (1: single and
map-reduce alternate this many times, the figures are medians), BENCH_MR_ONE_WORKER=1 (also the map with one
worker: its CPU seconds against the single process's say whether the map path costs more per row),
BENCH_MR_DATA (another folder of Parquet files instead of the generated one), BENCH_MR_PCA=1 (the model also
carries a multivariate PCA, fitted on 200k reference rows, as `amlops train` stores one: both sides compute the
multivariate metric and the partials carry its per-window samples; the merge's copies then get other sample
hashes too, as other files hold other rows). Results on stdout and
bench/results/mapreduce-<time>.json, with the load average before and after (the machine is shared).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import statistics
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
    # Output to a file, not a pipe: wait4 before reading a pipe would hang a command that fills its buffer.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        log.seek(0)
        out = log.read()
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


def worker_peaks(summary: Path) -> dict[str, float]:
    """Peak RSS (MB) per map worker process, from the `pid N peak_rss_mb M` of its summary lines."""
    peaks: dict[str, float] = {}
    text = (summary / "parallel_run_step.txt").read_text(encoding="utf-8") if summary.is_dir() else ""
    for pid, size in re.findall(r"pid (\d+) peak_rss_mb (\d+)", text):
        peaks[pid] = max(peaks.get(pid, 0.0), float(size))
    return peaks


def merge_cost(partials: Path, model: Path, count: int) -> dict[str, Any]:
    """Read, merge and score `count` partials in this process (copies of the run's partials, each naming other
    files: the merge refuses a file counted twice)."""
    from amlops.drift import partial
    from amlops.drift.profile import ReferenceProfile
    from amlops.steps.monitor_map import load_extras, model_extras
    from amlops.steps.monitor_reduce import reduce_partials

    sources = [
        json.loads(f.read_text(encoding="utf-8")) for f in sorted(partials.glob(f"*{partial.PARTIAL_SUFFIX}"))
    ]
    many = Path(tempfile.mkdtemp(prefix="amlops-merge-"))
    try:
        for i in range(count):
            state = dict(sources[i % len(sources)])
            state["files"] = [f"copy-{i:05d}/{f}" for f in state["files"]]
            if state.get("samples"):
                state["samples"] = {k: _other_rows(v, i) for k, v in state["samples"].items()}
            partial.write(state, many, f"copy-{i:05d}")
        size = sum(f.stat().st_size for f in many.iterdir())
        profile = ReferenceProfile.from_json(model / "reference_profile.json")
        extras = model_extras(*load_extras(str(model)))
        started = time.perf_counter()
        cpu0 = time.process_time()
        states = partial.read_all(many)
        read = time.perf_counter() - started
        result = reduce_partials(profile, states, extras=extras)
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    finally:
        shutil.rmtree(many, ignore_errors=True)
    return {
        "partials": count,
        "bytes_per_partial": size // count,
        "read_seconds": round(read, 3),
        "seconds": round(total, 3),
        "cpu_seconds": round(cpu, 3),
        "rows": result.current.row_count,
    }


def _other_rows(packed: dict[str, Any], copy: int) -> dict[str, Any]:
    """A copy's samples as other rows' would be: the same sizes and values, other hashes (a copy sharing every hash
    with the others would make the merge unite 1,000 identical samples, which no real set of files does)."""
    import numpy as np

    from amlops.drift import partial

    arrays = partial._unpack_sample(packed)
    salt = np.uint64((copy * 0x9E3779B97F4A7C15 + 1) % 2**64)
    return partial._pack_sample({**arrays, "hashes": arrays["hashes"] * np.uint64(0xBF58476D1CE4E5B9) ^ salt})


def _pca_model(model: Path, reference: Path) -> None:
    """A multivariate PCA beside the profile, fitted as the train step fits one (amlops.drift.multivariate)."""
    import pyarrow.parquet as pq

    from amlops.drift.multivariate import fit_pca

    frame = pq.read_table(reference, columns=mb.NUMERIC).slice(0, 200_000).to_pandas()
    fit_pca(frame, mb.NUMERIC).save(model)


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 2)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: _median(runs, k) for k in ("seconds", "cpu_seconds", "rss_mb")}
    out["runs"] = runs
    return out


def main() -> int:
    rows = int(os.environ.get("BENCH_MR_ROWS", "100000000"))
    workers = int(os.environ.get("BENCH_MR_WORKERS", "2"))
    count = int(os.environ.get("BENCH_MR_PARTIALS", "1000"))
    repeats = max(1, int(os.environ.get("BENCH_MR_REPEATS", "1")))
    one_worker = os.environ.get("BENCH_MR_ONE_WORKER") == "1"
    load_before = os.getloadavg()
    cores = os.cpu_count()
    folder = Path(os.environ["BENCH_MR_DATA"]) if os.environ.get("BENCH_MR_DATA") else mb.big_dataset(rows)
    print(f"[map-reduce monitor, {folder}, {workers} workers; load {load_before[0]:.1f} on {cores} cores]")
    reference = mb.dataset(1_000_000)["reference"]
    work = Path(tempfile.mkdtemp(prefix="amlops-mrbench-"))
    singles: list[dict[str, Any]] = []
    maps: list[dict[str, Any]] = []
    reduces: list[dict[str, Any]] = []
    ones: list[dict[str, Any]] = []
    peaks: dict[str, float] = {}
    identical = True
    try:
        model = work / "model"
        model.mkdir()
        profile, _ = mb.build_profile(reference, 1_000_000)
        shutil.copy(profile, model / "reference_profile.json")
        if os.environ.get("BENCH_MR_PCA") == "1":
            _pca_model(model, reference)
        for r in range(repeats):
            # Interleaved (single, map, reduce, [map with one worker]) so that a change in the machine's load
            # touches both sides alike.
            for d in ("single", "mapreduce", "partials", "summary", "partials1", "summary1"):
                shutil.rmtree(work / d, ignore_errors=True)
            single = timed(
                [PY, "-m", "amlops.steps.monitor", "--current", str(folder), "--model-dir", str(model),
                 "--window", "all", "--output", str(work / "single")],
                work,
            )  # fmt: skip
            singles.append({**single, "load": round(os.getloadavg()[0], 1)})
            spec = work / "map_spec.json"
            spec.write_text(json.dumps(map_spec(folder, model, work / "partials", work / "summary", workers)))
            maps.append(
                {
                    **timed([PY, "-m", "amlops.runner.parallel", "--spec", str(spec)], work),
                    "load": round(os.getloadavg()[0], 1),
                }
            )
            for pid, mb_ in worker_peaks(work / "summary").items():
                peaks[f"{r}:{pid}"] = mb_
            reduces.append(
                timed(
                    [PY, "-m", "amlops.steps.monitor_reduce", "--partials", str(work / "partials"),
                     "--model-dir", str(model), "--output", str(work / "mapreduce")],
                    work,
                )
            )  # fmt: skip
            identical &= comparable(work / "single/result.json") == comparable(work / "mapreduce/result.json")
            if one_worker:
                spec1 = work / "map_spec1.json"
                spec1.write_text(
                    json.dumps(map_spec(folder, model, work / "partials1", work / "summary1", 1))
                )
                ones.append(
                    {
                        **timed([PY, "-m", "amlops.runner.parallel", "--spec", str(spec1)], work),
                        "load": round(os.getloadavg()[0], 1),
                    }
                )
        rows = json.loads((work / "single/result.json").read_text(encoding="utf-8"))["current"]["row_count"]
        merge = merge_cost(work / "partials", model, count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    single_s, map_s, reduce_s = _summary(singles), _summary(maps), _summary(reduces)
    pair_speedups = [
        round(s["seconds"] / (m["seconds"] + d["seconds"]), 2)
        for s, m, d in zip(singles, maps, reduces, strict=True)
    ]
    speedup = statistics.median(pair_speedups)
    mr_cpu = map_s["cpu_seconds"] + reduce_s["cpu_seconds"]
    worker_peak = max(peaks.values()) if peaks else None
    report: dict[str, Any] = {
        "rows": rows,
        "data": str(folder),
        "workers": workers,
        "cores": cores,
        "repeats": repeats,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "single": single_s,
        "map": map_s,
        "reduce": reduce_s,
        "speedup": round(speedup, 2),
        "speedups_per_pair": pair_speedups,
        "cpu_ratio_mapreduce_to_single": round(mr_cpu / single_s["cpu_seconds"], 2),
        "worker_peak_rss_mb": peaks,
        "identical": identical,
        "map_rows_per_worker_second": round(rows / (map_s["seconds"] * workers)),
        "map_rows_per_cpu_second": round(rows / map_s["cpu_seconds"]),
        "single_rows_per_cpu_second": round(rows / single_s["cpu_seconds"]),
        "merge": merge,
        "targets": TARGETS,
    }
    if ones:
        report["map_one_worker"] = _summary(ones)
    line = "  {:<26}{:>9.1f} s{:>9.1f} CPU s{:>8.0f} MB peak"
    print(f"  {'':<26}{'wall':>11}{'CPU (user+sys)':>15}{'':>8}   (medians of {repeats})")
    print(line.format("single process", single_s["seconds"], single_s["cpu_seconds"], single_s["rss_mb"]))
    print(line.format(f"map ({workers} workers)", map_s["seconds"], map_s["cpu_seconds"], map_s["rss_mb"]))
    print(line.format("reduce", reduce_s["seconds"], reduce_s["cpu_seconds"], reduce_s["rss_mb"]))
    if ones:
        o = report["map_one_worker"]
        print(line.format("map (1 worker)", o["seconds"], o["cpu_seconds"], o["rss_mb"]))
        print(f"  map 1 worker / single process CPU: {o['cpu_seconds'] / single_s['cpu_seconds']:.2f}")
    print(
        f"  speed-up {speedup:.2f}x (target >= {TARGETS['speedup']}; per pair {pair_speedups}); "
        f"CPU map+reduce / single {report['cpu_ratio_mapreduce_to_single']:.2f}"
    )
    peak_text = ", ".join(f"{v:.0f}" for v in peaks.values()) or "n/a"
    ok = worker_peak is not None and worker_peak < TARGETS["worker_rss_mb"]
    print(f"  peak RSS per map worker: {peak_text} MB (target < {TARGETS['worker_rss_mb']:.0f}: {ok})")
    print(f"  identical result.json: {identical}")
    print(
        f"  merge of {merge['partials']:,} partials ({merge['bytes_per_partial']:,} B each): "
        f"{merge['seconds']:.2f} s, {merge['cpu_seconds']:.2f} CPU s (read {merge['read_seconds']:.2f} s; "
        f"target < {TARGETS['merge_1000_seconds']} s)"
    )
    print(
        f"  map: {report['map_rows_per_worker_second']:,} rows per worker-second, "
        f"{report['map_rows_per_cpu_second']:,} per CPU-second (single: {report['single_rows_per_cpu_second']:,})"
    )
    print(f"  load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    mb.RESULTS.mkdir(parents=True, exist_ok=True)
    out = mb.RESULTS / f"mapreduce-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"results: {out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
