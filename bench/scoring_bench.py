"""Scoring overhead benchmark: the batch scoring step vs the bare `model.predict` on the same rows.

Data: 1M rows of the demand generator (amlops.data.generate) in BENCH_SCORING_FILES Parquet files. Model:
trained by the real train step (default parameters: 300 boosting rounds) on a year of 5 stores x 20 products.

The baseline is `model.predict(X)`: the model loaded by MLflow's sklearn loader, X the rows already in memory
in model-input form (amlops.data.features.model_input), nothing but the prediction. It is compared with the
scoring step doing everything a worker does: `init()` (load the model, check every file against the signature)
and `run()` over the files (read Parquet, convert, predict, add prediction/model_version/scored_at, write).

- in-process, default threads: the entry script in this process, OpenMP and Arrow with a thread per core, as
  the baseline. This is the overhead the target is about.
- in-process, one thread: the same with both capped at one thread. Parallel regions make wall-clock time
  erratic when other processes hold the cores; one thread is the least load-sensitive view of the overhead.
- parallel driver: the step as `amlops run` runs it (python -m amlops.runner.parallel: 2 worker processes x 1
  thread, one file per mini-batch), process start and imports included, against the default-threads baseline.

Runs are interleaved (baseline, step, baseline, step, ...) so that load from other processes hits both alike;
medians of BENCH_RUNS runs are compared. Target: step <= 1.10 x baseline. The step's predictions must equal
the baseline's, row for row.

Environment: BENCH_SCORING_ROWS (1000000), BENCH_SCORING_FILES (10), BENCH_RUNS (3),
BENCH_SCORING_SKIP_DRIVER=1 (skip the parallel driver runs).
Results: a table on stdout and bench/results/scoring-<time>.json.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCHEMA = ROOT / "data" / "schema" / "demand.yaml"
ENTRY_SCRIPT = ROOT / "src" / "amlops" / "steps" / "score.py"
TARGET_RATIO = 1.10


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its finished children) of one call."""
    before = os.times()
    wall = time.perf_counter()
    fn()
    wall = time.perf_counter() - wall
    after = os.times()
    cpu = sum(
        getattr(after, k) - getattr(before, k) for k in ("user", "system", "children_user", "children_system")
    )
    return wall, cpu


def train_model(root: Path) -> Path:
    """A model as the training pipeline makes it: the train step on a clean snapshot, default parameters."""
    from amlops.data.generate import GeneratorConfig, generate
    from amlops.data.schema import load_schema
    from amlops.data.snapshot import write_snapshot
    from amlops.steps.train import train

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_EXPERIMENT_NAME"] = "scoring-bench"
    history = generate(GeneratorConfig(start=date(2023, 1, 1), days=365, stores=5, products=20, seed=1))
    write_snapshot(history, load_schema(SCHEMA), root / "snapshot")
    train(root / "snapshot", SCHEMA, root / "model", root / "run_info")
    return root / "model"


def scoring_data(rows: int, files: int, folder: Path) -> pd.DataFrame:
    """`rows` rows of a year of 50 stores x 55 products, split into `files` Parquet files."""
    from amlops.data.generate import GeneratorConfig, generate

    df = generate(GeneratorConfig(start=date(2024, 1, 1), days=365, stores=50, products=55, seed=2))
    while len(df) < rows:  # more rows than a year: repeat the year with fresh row ids
        df = pd.concat([df, df.assign(row_id=df["row_id"] + f"-{len(df)}")], ignore_index=True)
    df = df.head(rows).reset_index(drop=True)
    folder.mkdir(parents=True)
    bounds = np.linspace(0, rows, files + 1).astype(int)
    for i in range(files):
        df.iloc[bounds[i] : bounds[i + 1]].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    return df


def load_entry_script() -> ModuleType:
    """The entry script as the parallel driver loads it (from its file)."""
    spec = importlib.util.spec_from_file_location("score_entry", ENTRY_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_predictions(folder: Path) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(f) for f in sorted(folder.glob("*.parquet"))], ignore_index=True)


def summarize(
    name: str, rows: int, base: list[tuple[float, float]], step: list[tuple[float, float]]
) -> dict[str, Any]:
    b_wall, s_wall = statistics.median(x[0] for x in base), statistics.median(x[0] for x in step)
    b_cpu, s_cpu = statistics.median(x[1] for x in base), statistics.median(x[1] for x in step)
    return {
        "config": name,
        "rows": rows,
        "baseline": [{"seconds": w, "cpu_seconds": c} for w, c in base],
        "step": [{"seconds": w, "cpu_seconds": c} for w, c in step],
        "median_seconds": {"baseline": b_wall, "step": s_wall},
        "median_cpu_seconds": {"baseline": b_cpu, "step": s_cpu},
        "overhead_ratio": s_wall / b_wall,
        "cpu_overhead_ratio": s_cpu / b_cpu,
        "passed": s_wall / b_wall <= TARGET_RATIO,
    }


def main() -> int:
    import mlflow.sklearn
    from threadpoolctl import threadpool_limits

    from amlops.data.features import model_input
    from amlops.data.schema import load_schema

    rows = int(os.environ.get("BENCH_SCORING_ROWS", "1000000"))
    n_files = int(os.environ.get("BENCH_SCORING_FILES", "10"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    with_driver = os.environ.get("BENCH_SCORING_SKIP_DRIVER") != "1"
    print(
        f"== scoring overhead: {rows:,} rows in {n_files} Parquet files, median of {runs} runs ==", flush=True
    )
    results: list[dict[str, Any]] = []
    identical: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="amlops-scoring-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        model_dir = train_model(root / "train")
        print(f"  model trained by the train step in {time.perf_counter() - started:.0f} s", flush=True)
        data = root / "data"
        df = scoring_data(rows, n_files, data)
        schema = load_schema(SCHEMA)
        X = model_input(
            df, list(schema.numeric_features), list(schema.categorical_features), schema.date_column
        )
        model = mlflow.sklearn.load_model(str(model_dir))
        expected = model.predict(X)
        files = sorted(str(p) for p in data.glob("*.parquet"))
        out = root / "predictions"
        args = ["--data", str(data), "--model", str(model_dir), "--output", str(out), "--model-version", "1"]
        entry = load_entry_script()

        def in_process(threads: int) -> Callable[[], None]:
            def step() -> None:
                sys.argv = ["score.py", *args, "--threads", str(threads)]
                entry.init()
                for f in files:
                    entry.run([f])

            return step

        def check(name: str) -> None:
            got = read_predictions(out)
            identical[name] = bool(
                np.array_equal(got["prediction"].to_numpy(), expected)
                and got["row_id"].tolist() == df["row_id"].tolist()
            )

        def measure(name: str, baseline: Callable[[], Any], step: Callable[[], Any]) -> None:
            base: list[tuple[float, float]] = []
            scored: list[tuple[float, float]] = []
            for r in range(runs):
                shutil.rmtree(out, ignore_errors=True)
                base.append(timed(baseline))
                scored.append(timed(step))
                print(
                    f"  {name} run {r + 1}: baseline {base[-1][0]:.2f} s (cpu {base[-1][1]:.2f}), "
                    f"step {scored[-1][0]:.2f} s (cpu {scored[-1][1]:.2f})",
                    flush=True,
                )
            check(name)
            results.append(summarize(name, rows, base, scored))

        # 1. default threads (the step leaves the thread pools alone with --threads 0)
        measure("in-process, default threads", lambda: model.predict(X), in_process(0))

        # 2. the parallel driver, as `amlops run` starts it (before any cap: its workers are fresh processes)
        if with_driver:
            spec_path = root / "parallel_spec.json"
            spec = {
                "entry_script": "amlops/steps/score.py",
                "program_arguments": " ".join([*args, "--threads", "1"]),
                "input_data": str(data),
                "input_type": "uri_folder",
                "append_row_to": str(root / "summary"),
                "mini_batch_size": "1",
                "max_concurrency_per_instance": 2,
                "retry_settings": {"max_retries": 0, "timeout": 3600},
                "mini_batch_error_threshold": 0,
                "error_threshold": 0,
            }
            spec_path.write_text(json.dumps(spec), encoding="utf-8")

            def driver() -> None:
                subprocess.run(
                    [sys.executable, "-m", "amlops.runner.parallel", "--spec", str(spec_path)],
                    cwd=ROOT / "src",
                    check=True,
                    stdout=subprocess.DEVNULL,
                )

            measure("parallel driver, 2 workers x 1 thread", lambda: model.predict(X), driver)

        # 3. one thread for both (last: the step's cap stays for the rest of the process)
        def one_thread_baseline() -> None:
            with threadpool_limits(limits=1):
                model.predict(X)

        measure("in-process, one thread", one_thread_baseline, in_process(1))

    print(f"  {'':40}{'baseline s':>11}{'step s':>9}{'overhead':>10}{'cpu overhead':>14}")
    for r in results:
        m = r["median_seconds"]
        print(
            f"  {r['config']:40}{m['baseline']:>11.2f}{m['step']:>9.2f}"
            f"{r['overhead_ratio'] - 1:>+10.1%}{r['cpu_overhead_ratio'] - 1:>+14.1%}"
        )
    for r in results:
        mark = "PASS" if r["passed"] else "MISS"
        print(
            f"  {mark}  {r['config']}: scoring costs {r['overhead_ratio']:.3f}x bare predict "
            f"(target <= {TARGET_RATIO})"
        )
    for name, same in identical.items():
        print(f"  {'PASS' if same else 'MISS'}  {name}: predictions equal model.predict, row for row")
    print("  note: wall-clock on a shared 2-core machine; cpu s counts OpenMP/Arrow threads and children.")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "rows": rows,
        "files": n_files,
        "runs": runs,
        "target_ratio": TARGET_RATIO,
        "results": results,
        "predictions_identical": identical,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    path = RESULTS / f"scoring-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"  results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
