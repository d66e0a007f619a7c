"""monitor_map: the map half of the map-reduce monitor, an Azure ML `parallel` entry script.

Each mini-batch (a list of Parquet/CSV files) is streamed through the monitor exactly as the single-process step
streams it (same chunking: chunks never span files), and its per-window sufficient statistics are written as one
small partial file, `<digest of the files>.partial.json`, into the `partials` output folder; `run` returns one
summary line per mini-batch (appended to `parallel_run_step.txt`). `amlops.steps.monitor_reduce` merges them.

    python -m amlops.steps.monitor_map --data PATH --partials DIR [monitor options]   (every file: one partial)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from amlops.config import DEFAULT_CHUNK_ROWS

PROFILE_FILE = (
    "reference_profile.json"  # as amlops.steps.monitor: the train step stores it in the model folder
)


class MapInputError(ValueError):
    """An argument the map step cannot use."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # An exception, not SystemExit: inside a parallel worker's init() an exit only says "SystemExit: 2".
        raise MapInputError(f"{self.prog}: {message}")


def _parser(prog: str) -> argparse.ArgumentParser:
    # The parallel driver passes its own reserved arguments beside ours (--output among them: Microsoft Learn
    # "CLI (v2) parallel job YAML schema", reference-yaml-job-parallel, and amlops.steps.score's note), so no
    # name here is one of them, abbreviations are off and unknown arguments are ignored (parse_known_args).
    p = _ArgumentParser(prog=prog, allow_abbrev=False, description=(__doc__ or "").splitlines()[0])
    p.add_argument("--data", required=True, help="the current data folder (the parallel job's input_data)")
    p.add_argument("--partials", required=True, help="output folder for the partial files")
    p.add_argument("--reference-profile", nargs="?", const="")
    p.add_argument("--model-dir", nargs="?", const="")
    p.add_argument("--labels", nargs="?", const="")
    p.add_argument("--window", default="all")
    p.add_argument("--timestamp-column", nargs="?", const="")
    p.add_argument("--id-column", nargs="?", const="")
    p.add_argument("--prediction-column", nargs="?", const="")
    p.add_argument("--label-column", nargs="?", const="")
    p.add_argument("--features", nargs="?", const="")
    p.add_argument(
        "--column-kinds", nargs="?", const="", help="name=numeric|categorical (the schema's monitor_as)"
    )
    p.add_argument("--min-window-rows", type=int)
    p.add_argument("--thresholds", nargs="?", const="")
    p.add_argument("--numeric-metric", nargs="?", const="")
    p.add_argument("--categorical-metric", nargs="?", const="")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    p.add_argument("--threads", type=int, default=1, help="threads per worker (features side by side)")
    return p


def _relative(file: str, root: str) -> str:
    """A data file's name under the input folder (the same on every node whatever the mount point)."""
    rel = os.path.relpath(file, root)
    return file if rel.startswith("..") else rel


@dataclass
class Mapper:
    """What every mini-batch of a worker shares: the profile, the options, the labels, the output folder."""

    profile: Any
    options: Any
    labels: Any
    data: str
    partials: Path
    # The model's error estimator and multivariate PCA, as the single process loads them (load_extras).
    estimator: Any = None
    pca: Any = None

    def map_files(self, files: Sequence[str]) -> tuple[Path | None, int]:
        """Stream the files (in name order) through one monitor; write its partial. (partial file, rows)."""
        from amlops.data.io import is_data_file
        from amlops.drift import partial
        from amlops.drift.monitor import Monitor, MonitorError, _extra_columns, iter_batches, open_dataset

        usable = sorted(str(f) for f in files if is_data_file(str(f)))
        if not usable:
            return None, 0
        mon = Monitor(self.profile, self.options, self.labels)
        mon.extras.extend(model_extras(self.estimator, self.pca))
        prediction = self.options.prediction_column
        has_prediction = False
        absent: set[str] | None = None  # the profile's columns none of the files has
        try:
            for f in usable:
                ds = open_dataset(f, dictionary_columns=mon.categorical)
                names = ds.schema.names
                # Refused naming the file, or skipped when it has no rows, as the single process does
                # (Monitor.check_each_file): "not in the current data" would not say which file lacks the column.
                if mon.skip_file(f, names, ds.count_rows):
                    continue
                present = bool(prediction) and prediction in names
                has_prediction |= present
                # A file without the prediction column reads it as nulls, as the single-process monitor reads
                # such a file among others (amlops.drift.monitor.every_files_columns): its rows count as missing
                # predictions and the estimate leaves them out, whichever mini-batch the file falls in.
                columns = mon.columns_needed([*names, prediction] if prediction and not present else names)
                # Missing for the result means missing from every file, as in the single process's union of the
                # files' columns (a file without one counts its rows as nulls there, which update() does here).
                absent = set(mon.missing_columns) if absent is None else absent & mon.missing_columns
                # The extras' columns too (run_monitor reads them the same way): the estimator's features.
                columns += [c for c in _extra_columns(mon, names) if c not in columns]
                read = [c for c in columns if c in names]
                try:
                    for batch in iter_batches(ds, read, self.options.chunk_rows):
                        mon.update(batch if present or not prediction else _null_column(batch, prediction))
                except MonitorError as exc:
                    # A mini-batch holds many files: "cannot read the current data" alone would not say which.
                    raise MonitorError(f"{f}: {exc}") from None
        finally:
            mon.close()
        # Whether any file had predictions: a run whose files have none reports no prediction sections.
        mon._has_prediction = has_prediction
        mon.missing_columns = absent or set()
        state = partial.dump(mon, source=self.data, files=[_relative(f, self.data) for f in usable])
        return partial.write(state, self.partials, partial.batch_name(usable)), int(mon.rows.sum())


def _null_column(batch: Any, name: str) -> Any:
    import pyarrow as pa

    return batch.append_column(name, pa.nulls(batch.num_rows, pa.float64()))


def load_profile(model_dir: str | None, reference_profile: str | None) -> Any:
    """The stored profile (the model folder's, or a file): the map never builds one, every worker must use the
    same. Not amlops.steps.monitor.load_reference: that module logs to MLflow, which this environment lacks."""
    from amlops.drift.profile import ProfileError, ReferenceProfile

    if bool(model_dir) == bool(reference_profile):
        raise MapInputError("give one of --model-dir or --reference-profile (the map needs a stored profile)")
    if reference_profile:
        return ReferenceProfile.from_json(reference_profile)
    assert model_dir is not None
    try:
        return ReferenceProfile.from_json(model_dir.rstrip("/") + "/" + PROFILE_FILE)
    except ProfileError as exc:
        raise MapInputError(f"{model_dir}: no usable {PROFILE_FILE} in the model folder ({exc})") from None


def build_mapper(args: argparse.Namespace) -> Mapper:
    from amlops.drift.kinds import parse_declared, with_comparison_kinds
    from amlops.drift.monitor import (
        DEFAULT_MIN_WINDOW_ROWS,
        MonitorOptions,
        load_labels,
        parse_thresholds,
        resolve_window,
    )

    # The same comparison kinds as the single-process monitor (amlops.steps.monitor.monitor): a 0/1 column
    # counted as categories here must be counted so in every mini-batch and merged so in the reduce step.
    stored = load_profile(args.model_dir or None, args.reference_profile or None)
    profile = with_comparison_kinds(stored, parse_declared(args.column_kinds))
    window = resolve_window(args.window, args.timestamp_column or None, args.data)
    labels = None
    if args.labels:
        if not args.id_column or not args.label_column:
            raise MapInputError("--labels needs --id-column and --label-column to join on")
        labels = load_labels(args.labels, args.id_column, args.label_column)
    features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else None
    options = MonitorOptions(
        window=window,
        timestamp_column=args.timestamp_column or None,
        id_column=args.id_column or None,
        prediction_column=args.prediction_column or None,
        label_column=args.label_column or None,
        thresholds=parse_thresholds(args.thresholds),
        min_window_rows=DEFAULT_MIN_WINDOW_ROWS if args.min_window_rows is None else args.min_window_rows,
        chunk_rows=args.chunk_rows,
        features=features,
        numeric_metric=args.numeric_metric or MonitorOptions.numeric_metric,
        categorical_metric=args.categorical_metric or MonitorOptions.categorical_metric,
        threads=args.threads,
    )
    if options.window_kind()[0] == "rows":
        # A row-count window needs each row's global position, which a mini-batch does not know.
        raise MapInputError(
            f"--window {window}: row-count windows need the single-process monitor; use all, daily or weekly"
        )
    estimator, pca = load_extras(args.model_dir or None)
    return Mapper(profile, options, labels, args.data, Path(args.partials), estimator, pca)


def load_extras(model_dir: str | None) -> tuple[Any, Any]:
    """(error estimator, multivariate PCA) stored in the model folder, each None when absent, by the rule of the
    single-process step (amlops.steps.monitor.load_estimator / load_multivariate for a model folder; not imported
    from there: that module logs to MLflow, which the map's environment lacks). An unusable estimator is left out
    with a note, as there; the reduce step loads them the same way."""
    if not model_dir:
        return None, None
    from amlops.drift.estimate import ErrorEstimator
    from amlops.drift.multivariate import PCADrift

    try:
        estimator = ErrorEstimator.load(model_dir)
    except Exception as exc:  # the estimate is optional: drift and measured error go on without it
        print(f"monitor: the model's error estimator is unusable, no estimate ({exc})", file=sys.stderr)
        estimator = None
    return estimator, PCADrift.load(model_dir)


def model_extras(estimator: Any, pca: Any) -> list[Any]:
    """The per-window extras for them (as amlops.steps.monitor.window_extras: the estimate first)."""
    from amlops.drift.monitor import estimate_extra, multivariate_extra

    extras = [estimate_extra(estimator)] if estimator is not None else []
    return extras + ([multivariate_extra(pca)] if pca is not None else [])


# ------------------------------------------------------------------------------------------ parallel entry
_mapper: Mapper | None = None


def _workers_per_node(driver_args: Sequence[str]) -> int:
    """The driver's `--process_count_per_node` (max_concurrency_per_instance; azureml-pipeline-steps
    _parallel_run_step_base.py `_generate_main_file_args`, mirrored by amlops.runner.parallel.driver_argv)."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--process_count_per_node", type=int, default=1)
    known, _ = p.parse_known_args(list(driver_args))
    return max(1, known.process_count_per_node)


def _share_cores(workers: int) -> None:
    """Give each worker's Parquet decoding its share of the node's cores: with one worker per core, Arrow's
    default pool (one thread per core) in every worker would put workers x cores threads on the cores."""
    import pyarrow as pa

    if workers > 1:  # one worker keeps Arrow's own default
        pa.set_cpu_count(max(1, (os.cpu_count() or 1) // workers))


def peak_rss_mb() -> float:
    """This process's peak resident set (Linux reports kB), for the summary line: the sizing rule needs it."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def init() -> None:
    """Parallel entry (Microsoft Learn "How to use parallel job in pipeline", how-to-use-parallel-job-in-pipeline:
    the entry script's `init()` runs once per worker process, before any mini-batch; its arguments are the
    program_arguments, read from sys.argv)."""
    global _mapper
    try:
        args, driver = _parser("monitor_map.py").parse_known_args(sys.argv[1:])
        _share_cores(_workers_per_node(driver))
        _mapper = build_mapper(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise


def run(mini_batch: Any) -> list[str]:
    """Parallel entry: `run(mini_batch)` gets the mini-batch's file paths (uri_folder input) and returns a list;
    the driver appends each item as a line to `append_row_to` (same page). The partial itself is written into the
    `partials` output folder, whose name is the mini-batch's files: a retried mini-batch rewrites it."""
    if _mapper is None:
        raise RuntimeError("init() has not run in this worker")
    if hasattr(mini_batch, "columns"):
        raise MapInputError("the map step reads files: declare the data input as uri_folder, not mltable")
    written, rows = _mapper.map_files([str(f) for f in mini_batch])
    if written is None:
        return [f"{len(mini_batch)} file(s) skipped: no .parquet or .csv"]
    return [
        f"{written.name} {rows} rows {len(mini_batch)} file(s) pid {os.getpid()} peak_rss_mb {peak_rss_mb():.0f}"
    ]


def main(argv: list[str] | None = None) -> int:
    """Without the parallel driver: every data file of --data becomes its own partial."""
    try:
        args = _parser("python -m amlops.steps.monitor_map").parse_args(argv)
        mapper = build_mapper(args)
        from amlops.drift.monitor import list_data_files

        _fs, files, _kind = list_data_files(args.data)
        for f in files:
            mapper.map_files([f])
    except ValueError as exc:  # MonitorError, ProfileError, MapInputError
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"monitor_map: {len(files)} partial(s) in {args.partials}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
