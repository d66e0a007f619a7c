"""Local driver for AML `parallel` components (task type run_function).

As on Azure ML: the entry script's `init()` runs once per worker process (with the program arguments in sys.argv),
`run(mini_batch)` runs per mini-batch — a list of file paths for `uri_folder` input, a pandas DataFrame for
`mltable` input — and what `run` returns is appended, one line per item or row, to `append_row_to`
(file `parallel_run_step.txt`). Failed mini-batches are retried `retry_settings.max_retries` times; the step fails
when more than `mini_batch_error_threshold` mini-batches (or `error_threshold` items) fail (-1 = never).

    python -m amlops.runner.parallel --spec parallel_spec.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import re
import shlex
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

APPEND_FILE_NAME = "parallel_run_step.txt"
_module: Any = None


def parse_size(value: Any) -> tuple[str, int]:
    """`"10"` -> ("count", 10); `"10kb"`/`"1mb"`/`"1gb"` -> ("bytes", n)."""
    text = str(value).strip().lower()
    m = re.fullmatch(r"(\d+)\s*(kb|mb|gb)?", text)
    if not m:
        raise ValueError(f"mini_batch_size {value!r}: expected a number of files or a size like 10kb/1mb")
    number, unit = int(m.group(1)), m.group(2)
    if number <= 0:
        raise ValueError(f"mini_batch_size {value!r} must be positive")
    if unit is None:
        return "count", number
    return "bytes", number * {"kb": 1024, "mb": 1024**2, "gb": 1024**3}[unit]


def list_files(location: str) -> list[str]:
    root = Path(location)
    if root.is_file():
        return [str(root)]
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def file_batches(files: list[str], size: Any) -> list[list[str]]:
    kind, n = parse_size(size)
    if kind == "count":
        return [files[i : i + n] for i in range(0, len(files), n)]
    batches: list[list[str]] = []
    current: list[str] = []
    used = 0
    for f in files:
        current.append(f)
        used += Path(f).stat().st_size
        if used >= n:
            batches.append(current)
            current, used = [], 0
    if current:
        batches.append(current)
    return batches


def _mltable_frames(location: str, size: Any) -> list[Any]:
    """A minimal MLTable reader: `paths` (file/folder/pattern) with read_parquet or read_delimited, split by size."""
    import pandas as pd
    import yaml

    root = Path(location)
    spec = yaml.safe_load((root / "MLTable").read_text(encoding="utf-8"))
    files: list[Path] = []
    for entry in spec.get("paths", []):
        for key in ("file", "folder", "pattern"):
            if key in entry:
                target = str(entry[key])
                target = target[len("./") :] if target.startswith("./") else target
                if key == "pattern":
                    files.extend(sorted(root.glob(target)))
                elif key == "folder":
                    files.extend(sorted(p for p in (root / target).rglob("*") if p.is_file()))
                else:
                    files.append(root / target)
    reader = "read_parquet"
    options: dict[str, Any] = {}
    for transform in spec.get("transformations", []) or []:
        if isinstance(transform, dict):
            for name, opts in transform.items():
                if name in {"read_parquet", "read_delimited"}:
                    reader, options = name, opts or {}
    frames = [
        pd.read_parquet(f) if reader == "read_parquet" else pd.read_csv(f, sep=options.get("delimiter", ","))
        for f in files
    ]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    kind, n = parse_size(size)
    if kind == "count":
        rows = n
    else:
        per_row = max(1, int(table.memory_usage(deep=True).sum() / max(len(table), 1)))
        rows = max(1, n // per_row)
    return [table.iloc[i : i + rows] for i in range(0, len(table), rows)] or [table]


def driver_argv(spec: dict[str, Any]) -> list[str]:
    """The command line Azure ML's parallel driver runs with, which the entry script sees as sys.argv in init():
    the driver's own reserved arguments first (its `--output` is the job's summary folder, not the entry's
    output), then the component's program_arguments, then the input dataset names. Source: azureml-pipeline-steps
    azureml/pipeline/steps/_parallel_run_step_base.py `_generate_main_file_args`; Microsoft Learn "CLI (v2)
    parallel job YAML schema" (reference-yaml-job-parallel). Mirrored so an entry script that reuses a reserved
    name (--output) reads the driver's value here as it would on Azure ML."""
    retry = spec.get("retry_settings") or {}
    summary = spec.get("append_row_to") or ""
    summary_dir = str(Path(summary).parent) if summary and Path(summary).suffix else summary
    reserved = [
        "--client_sdk_version", "1.62.0",
        "--scoring_module_name", str(spec.get("entry_script", "")),
        "--mini_batch_size", str(spec.get("mini_batch_size") or 10),
        "--error_threshold", str(spec.get("error_threshold") if spec.get("error_threshold") is not None else -1),
        "--output_action", "append_row" if summary else "summary_only",
        "--logging_level", str(spec.get("logging_level") or "INFO"),
        "--run_invocation_timeout", str(retry.get("timeout", 60)),
        "--run_max_try", str(int(retry.get("max_retries", 3)) + 1),
        "--create_snapshot_at_runtime", "True",
        "--append_row_file_name", APPEND_FILE_NAME,
        "--output", summary_dir or ".",
        "--process_count_per_node", str(spec.get("max_concurrency_per_instance") or 1),
    ]  # fmt: skip
    program = shlex.split(str(spec.get("program_arguments") or ""))
    return ["driver/amlbi_main.py", *reserved, *program, "--input_fds_0", "input_data"]


def _worker_init(entry_script: str, argv: list[str]) -> None:
    global _module
    path = Path(entry_script).resolve()
    sys.argv = list(argv)
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import entry script {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as a normal import would be: dataclasses and pickling look modules up here.
    sys.modules[spec.name] = module
    # Importing the entry script's libraries and init() (a model load) create most of the objects the worker
    # will ever hold: no cyclic collection while they are created (about 0.1 s less start-up per worker), and
    # frozen afterwards so that collections during scoring skip them. The ~1k cyclic objects the imports leave
    # behind stay with the frozen ones: collecting them first would cost as much as the pause saves.
    enabled = gc.isenabled()
    gc.disable()
    try:
        spec.loader.exec_module(module)
        if hasattr(module, "init"):
            module.init()
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    _module = module


def _worker_run(index: int, mini_batch: Any) -> tuple[int, list[str] | None, int, str | None]:
    """(index, lines or None, n items, error text)."""
    n_items = len(mini_batch)
    try:
        result = _module.run(mini_batch)
    except Exception:
        return index, None, n_items, traceback.format_exc()
    return index, _to_lines(result), n_items, None


def _to_lines(result: Any) -> list[str]:
    if result is None:
        return []
    if hasattr(result, "to_csv") and hasattr(result, "columns"):
        text = result.to_csv(sep=" ", header=False, index=False)
        return [ln for ln in text.splitlines() if ln]
    return [str(item) for item in result]


def drive(spec: dict[str, Any]) -> int:
    entry = spec["entry_script"]
    if not Path(entry).exists():
        print(f"error: entry_script {entry} not found in {Path.cwd()}", file=sys.stderr)
        return 1
    data = spec["input_data"]
    if not Path(data).exists():
        # Zero mini-batches would "succeed" with no output; Azure ML fails a job whose input is missing.
        print(f"error: input_data {data} does not exist", file=sys.stderr)
        return 1
    if spec.get("input_type") == "mltable" or (Path(data) / "MLTable").exists():
        batches: list[Any] = _mltable_frames(data, spec.get("mini_batch_size") or "10mb")
    else:
        batches = file_batches(list_files(data), spec.get("mini_batch_size") or 10)
    workers = max(1, int(spec.get("max_concurrency_per_instance") or 1))
    retry = spec.get("retry_settings") or {}
    max_retries = int(retry.get("max_retries", 3))
    timeout = float(retry.get("timeout", 60 * 60 * 24))
    batch_threshold = int(
        spec["mini_batch_error_threshold"] if spec.get("mini_batch_error_threshold") is not None else -1
    )
    item_threshold = int(spec["error_threshold"] if spec.get("error_threshold") is not None else -1)
    print(f"parallel: {len(batches)} mini-batches, {workers} workers, entry {entry}", flush=True)

    results: dict[int, list[str]] = {}
    failed_batches = 0
    failed_items = 0
    attempts = dict.fromkeys(range(len(batches)), 0)
    started = time.perf_counter()
    with ProcessPoolExecutor(
        max_workers=workers, initializer=_worker_init, initargs=(entry, driver_argv(spec))
    ) as pool:
        pending: dict[Future[Any], tuple[int, float]] = {}

        def submit(i: int) -> None:
            attempts[i] += 1
            pending[pool.submit(_worker_run, i, batches[i])] = (i, time.monotonic())

        for i in range(len(batches)):
            submit(i)
        while pending:
            done, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            now = time.monotonic()
            for fut, (i, t0) in list(pending.items()):
                if fut not in done and now - t0 > timeout:
                    fut.cancel()
                    del pending[fut]
                    print(f"mini-batch {i}: timed out after {timeout:.0f}s", flush=True)
                    if attempts[i] <= max_retries:
                        submit(i)
                    else:
                        failed_batches += 1
                        failed_items += len(batches[i])
            for fut in done:
                i, _t0 = pending.pop(fut)
                try:
                    index, lines, n_items, error = fut.result()
                except Exception as exc:  # the worker died (e.g. init() raised)
                    index, lines, n_items, error = i, None, len(batches[i]), f"{type(exc).__name__}: {exc}"
                if error is None and lines is not None:
                    results[index] = lines
                    print(f"mini-batch {index}: {n_items} items ok", flush=True)
                    continue
                print(f"mini-batch {index} attempt {attempts[index]} failed:\n{error}", flush=True)
                if attempts[index] <= max_retries:
                    submit(index)
                else:
                    failed_batches += 1
                    failed_items += n_items
            if (0 <= batch_threshold < failed_batches) or (0 <= item_threshold < failed_items):
                for fut in pending:
                    fut.cancel()
                print(
                    f"error: {failed_batches} mini-batches ({failed_items} items) failed, above the thresholds "
                    f"(mini_batch_error_threshold={batch_threshold}, error_threshold={item_threshold})",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
    if spec.get("append_row_to"):
        target = Path(spec["append_row_to"])
        target = target / APPEND_FILE_NAME if target.is_dir() or not target.suffix else target
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            for i in sorted(results):
                for line in results[i]:
                    fh.write(line + "\n")
    print(
        f"parallel: done in {time.perf_counter() - started:.1f}s, {len(results)} ok, {failed_batches} failed",
        flush=True,
    )
    return 0


def _init_error(entry: str, argv: list[str]) -> str:
    """Run init() in this process to get the entry script's own error (the pool only says it broke)."""
    try:
        _worker_init(entry, argv)
    except BaseException as exc:
        lines = traceback.format_exception_only(type(exc), exc)
        return lines[-1].strip() if lines else type(exc).__name__
    return "a worker process died"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, type=Path)
    args = parser.parse_args(argv)
    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    try:
        return drive(spec)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenProcessPool:
        reason = _init_error(spec["entry_script"], driver_argv(spec))
        print(f"error: init() of {spec['entry_script']} failed: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
