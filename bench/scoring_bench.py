"""Scoring overhead benchmark: the batch scoring step vs the bare `model.predict` on the same rows.

Data: 1M rows of the demand generator (amlops.data.generate) in BENCH_SCORING_FILES Parquet files. Model:
trained by the real train step (default parameters: 300 boosting rounds) on a year of 5 stores x 20 products.

- bare: `model.predict(X)`, the model loaded by MLflow's sklearn loader and X the 1M rows already in memory in
  model-input form (amlops.data.features.model_input): nothing but the prediction.
- step: the parallel entry script in this process, as a worker runs it: `init()` (load the model, check every
  file against the signature) then `run(mini_batch)` over mini-batches of 2 files (read Parquet, convert,
  predict, add prediction/model_version/scored_at, write Parquet atomically).

Runs are interleaved (bare, step, bare, step, ...) so that load from other processes hits both alike; the
medians of BENCH_RUNS runs are compared. Target: step <= 1.10 x bare. Both must give the same predictions.

Environment: BENCH_SCORING_ROWS (1000000), BENCH_SCORING_FILES (10), BENCH_RUNS (3).
Results: a table on stdout and bench/results/scoring-<time>.json.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import statistics
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
MINI_BATCH_FILES = 2  # components/score.yml mini_batch_size


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


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


def main() -> int:
    import mlflow.sklearn

    from amlops.data.features import model_input
    from amlops.data.schema import load_schema

    rows = int(os.environ.get("BENCH_SCORING_ROWS", "1000000"))
    n_files = int(os.environ.get("BENCH_SCORING_FILES", "10"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    print(
        f"== scoring overhead: {rows:,} rows in {n_files} Parquet files, median of {runs} runs ==", flush=True
    )
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
        files = sorted(str(p) for p in data.glob("*.parquet"))
        batches = [files[i : i + MINI_BATCH_FILES] for i in range(0, len(files), MINI_BATCH_FILES)]
        out = root / "predictions"
        sys.argv = ["score.py", "--data", str(data), "--model", str(model_dir), "--output", str(out)]
        sys.argv += ["--model-version", "1"]
        entry = load_entry_script()

        def step() -> None:
            entry.init()
            for batch in batches:
                entry.run(batch)

        bare: list[tuple[float, float]] = []
        scored: list[tuple[float, float]] = []
        for r in range(runs):
            shutil.rmtree(out, ignore_errors=True)
            bare.append(timed(lambda: model.predict(X)))
            scored.append(timed(step))
            print(
                f"  run {r + 1}: bare {bare[-1][0]:.2f} s (cpu {bare[-1][1]:.2f}), "
                f"step {scored[-1][0]:.2f} s (cpu {scored[-1][1]:.2f})",
                flush=True,
            )
        expected = model.predict(X)
        got = pd.concat([pd.read_parquet(f) for f in sorted(out.glob("*.parquet"))], ignore_index=True)
        identical = bool(np.array_equal(got["prediction"].to_numpy(), expected))
        same_rows = got["row_id"].tolist() == df["row_id"].tolist()
        output_mb = sum(f.stat().st_size for f in out.glob("*.parquet")) / 2**20
        input_mb = sum(Path(f).stat().st_size for f in files) / 2**20

    bare_s = statistics.median(b[0] for b in bare)
    step_s = statistics.median(s[0] for s in scored)
    bare_cpu = statistics.median(b[1] for b in bare)
    step_cpu = statistics.median(s[1] for s in scored)
    ratio, cpu_ratio = step_s / bare_s, step_cpu / bare_cpu
    ok = ratio <= TARGET_RATIO
    print(f"  {'':28}{'wall s':>10}{'cpu s':>10}{'rows/s':>14}")
    print(f"  {'bare model.predict':28}{bare_s:>10.2f}{bare_cpu:>10.2f}{rows / bare_s:>14,.0f}")
    print(f"  {'scoring step (init + run)':28}{step_s:>10.2f}{step_cpu:>10.2f}{rows / step_s:>14,.0f}")
    print(f"  overhead: {ratio - 1:+.1%} wall, {cpu_ratio - 1:+.1%} cpu (target <= {TARGET_RATIO - 1:+.0%})")
    print(
        f"  {'PASS' if ok else 'MISS'}  scoring {rows:,} rows costs <= {TARGET_RATIO:.2f}x bare predict: "
        f"{ratio:.3f}x"
    )
    print(
        f"  {'PASS' if identical and same_rows else 'MISS'}  "
        "the step's predictions equal model.predict, row for row"
    )
    print(f"  input {input_mb:.0f} MiB Parquet, output {output_mb:.0f} MiB Parquet")
    print(
        "  note: wall-clock on a shared 2-core machine; cpu s is the process CPU time (pyarrow and OpenMP "
        "threads included)."
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "rows": rows,
        "files": n_files,
        "runs": runs,
        "bare": [{"seconds": w, "cpu_seconds": c} for w, c in bare],
        "step": [{"seconds": w, "cpu_seconds": c} for w, c in scored],
        "median_seconds": {"bare": bare_s, "step": step_s},
        "median_cpu_seconds": {"bare": bare_cpu, "step": step_cpu},
        "overhead_ratio": ratio,
        "cpu_overhead_ratio": cpu_ratio,
        "target_ratio": TARGET_RATIO,
        "passed": ok,
        "predictions_identical": identical and same_rows,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }
    path = RESULTS / f"scoring-{stamp}.json"
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"  results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
