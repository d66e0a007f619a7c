"""The end-to-end baseline of the scoring bench: a process that does nothing but load a model, read the rows
and call `model.predict` once on all of them — what a hand-written batch job would do, with the fastest reader
at hand (the scoring step's own: text as dictionaries, converted from Arrow once) and no checks, no extra
columns, no output.

    python bench/workers/bare_predict.py --model DIR --data FOLDER

Prints one JSON line: rows, the sum of the predictions (the bench compares it with the in-memory prediction,
so a baseline that skipped the work would show), and its own phase times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

started = time.perf_counter()

import pyarrow as pa  # noqa: E402

from amlops.steps import score  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    model = score.load_model(args.model)  # the pickled estimator, as the step loads it (no MLflow import)
    options = score.resolve_options(model, "0")
    loaded = time.perf_counter()
    files = score.data_files(args.data)
    table = pa.concat_tables([score.read_input(f, model, options)[0] for f in files])
    frame = score.model_frame(Path(args.data), table, model)
    read = time.perf_counter()
    pred = model.predictor.predict(frame)
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "rows": len(pred),
                "prediction_sum": float(pred.sum()),
                "import_and_load_seconds": loaded - started,
                "read_seconds": read - loaded,
                "predict_seconds": done - read,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
