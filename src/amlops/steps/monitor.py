"""monitor: drift, data quality and performance of current data against a reference profile.

    python -m amlops.steps.monitor --current PATH
        [--reference-profile FILE | --reference-data PATH | --model-dir DIR]
        [--labels FILE] [--window all|daily|weekly|auto|<N rows>] [--timestamp-column date] [--id-column
        row_id]
        [--prediction-column prediction] [--label-column units_sold] [--features a,b,c]
        [--min-window-rows 500] [--thresholds '{"normalized_wasserstein_distance": 0.15}'] [--chunk-rows N]
        [--column-kinds holiday=categorical,...] [--policy-drift-windows-n 2 --policy-... (the retrain policy)]
        --output DIR

PATH is a Parquet/CSV file or a folder of them, local or abfs://. Writes DIR/result.json (schema in
docs/monitor.md), DIR/report.html and, when the profile was built from --reference-data,
DIR/reference_profile.json (and, when that reference holds the prediction and label columns, the error estimator
fitted on it: DIR/error_estimator.json + .pkl). Logs metrics and both files to MLflow when MLFLOW_TRACKING_URI
is set. `--window auto` is weekly when the timestamp column exists, else one window. Exit 0 whether drift was
found or not; 1 with one `error:` line on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.config import DEFAULT_CHUNK_ROWS, PolicySettings
from amlops.drift.monitor import parse_thresholds, resolve_window
from amlops.drift.result import RESULT_FILE

if TYPE_CHECKING:
    from amlops.drift.result import MonitorResult

PROFILE_FILE = "reference_profile.json"
IMPORTANCE_FILE = "feature_importance.json"  # written by the train step into the model folder
REPORT_FILE = "report.html"


def load_reference(
    reference_profile: str | None,
    reference_data: str | None,
    model_dir: str | None,
    exclude: list[str],
    features: list[str] | None,
    target: str | None,
    prediction: str | None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[Any, bool]:
    """(ReferenceProfile, built_here). Exactly one source must be given."""
    from amlops.drift.profile import (
        ProfileError,
        ReferenceProfile,
        build_profile_from_batches,
        infer_feature_types,
    )

    given = [x for x in (reference_profile, reference_data, model_dir) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of --reference-profile, --reference-data, --model-dir")
    if model_dir:
        location = model_dir.rstrip("/") + "/" + PROFILE_FILE
        try:
            return ReferenceProfile.from_json(location), False
        except ProfileError as exc:
            raise ValueError(f"{model_dir}: no usable {PROFILE_FILE} in the model folder ({exc})") from None
    if reference_profile:
        return ReferenceProfile.from_json(reference_profile), False
    assert reference_data is not None
    from amlops.drift.monitor import iter_batches, open_dataset

    ds = open_dataset(reference_data)
    names = ds.schema.names
    numeric, categorical = infer_feature_types(ds.schema, exclude=exclude)
    if features:
        missing = [f for f in features if f not in names]
        if missing:
            raise ValueError(f"{reference_data}: no column(s) {', '.join(missing)}")
        numeric = [f for f in features if f in numeric]
        categorical = [f for f in features if f not in numeric]
    if not numeric and not categorical:
        raise ValueError(f"{reference_data}: no numeric or categorical columns to profile")
    tgt = target if target and target in names else None
    pred = prediction if prediction and prediction in names else None
    columns = list(dict.fromkeys([*numeric, *categorical, *(c for c in (tgt, pred) if c)]))
    profile = build_profile_from_batches(
        iter_batches(ds, columns, chunk_rows),
        numeric,
        categorical,
        target=tgt,
        prediction=pred,
        metadata={"source": reference_data},
    )
    if profile.row_count == 0:
        raise ValueError(f"{reference_data}: no rows")
    return profile, True


def monitor(
    current: str,
    output: str | Path,
    *,
    reference_profile: str | None = None,
    reference_data: str | None = None,
    model_dir: str | None = None,
    labels: str | None = None,
    window: str = "all",
    timestamp_column: str | None = None,
    id_column: str | None = None,
    prediction_column: str | None = None,
    label_column: str | None = None,
    features: list[str] | None = None,
    min_window_rows: int | None = None,
    thresholds: dict[str, float] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    numeric_metric: str | None = None,
    categorical_metric: str | None = None,
    column_kinds: dict[str, str] | None = None,
    policy: PolicySettings | None = None,
) -> MonitorResult:
    """Run the monitor and write result.json + report.html into `output`; returns the result. `column_kinds`:
    declared comparison kinds (amlops.drift.kinds); `policy`: the retrain policy the report decides with
    (default: PolicySettings()), recorded in result.json's settings."""
    from amlops.drift.kinds import with_comparison_kinds
    from amlops.drift.monitor import DEFAULT_MIN_WINDOW_ROWS, MonitorOptions, load_labels, run_monitor
    from amlops.drift.policy import record_policy

    exclude = [c for c in (timestamp_column, id_column, prediction_column, label_column) if c]
    profile, built = load_reference(
        reference_profile,
        reference_data,
        model_dir,
        exclude,
        features,
        label_column,
        prediction_column,
        chunk_rows,
    )
    window = resolve_window(window, timestamp_column, current)
    label_series = None
    if labels:
        if not id_column or not label_column:
            raise ValueError("--labels needs --id-column and --label-column to join on")
        label_series = load_labels(labels, id_column, label_column)
    options = MonitorOptions(
        window=window,
        timestamp_column=timestamp_column,
        id_column=id_column,
        prediction_column=prediction_column,
        label_column=label_column,
        thresholds=thresholds or {},
        min_window_rows=DEFAULT_MIN_WINDOW_ROWS if min_window_rows is None else min_window_rows,
        chunk_rows=chunk_rows,
        features=features if features and not built else None,
        numeric_metric=numeric_metric or MonitorOptions.numeric_metric,
        categorical_metric=categorical_metric or MonitorOptions.categorical_metric,
    )
    estimator = load_estimator(
        model_dir, reference_data, profile, prediction_column, label_column, out=output
    )
    pca = load_multivariate(model_dir, None, profile) if model_dir else None  # stored with the model only
    compared = with_comparison_kinds(profile, column_kinds)
    result = run_monitor(
        current, compared, options, labels=label_series, extras=window_extras(estimator, pca)
    )
    record_policy(result, policy or PolicySettings())
    result.current.source = current
    result.reference.source = reference_profile or reference_data or model_dir
    publish(result, output, model_dir=model_dir, built_profile=profile if built else None)
    return result


def publish(
    result: MonitorResult, output: str | Path, *, model_dir: str | None = None, built_profile: Any = None
) -> Path:
    """Write result.json and report.html (and the profile built on the fly, the model's feature importance),
    and log to MLflow when a tracking URI is set: the single-process monitor and the map-reduce merge step
    publish through this one function."""
    from amlops.drift.report import render_html

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    result.write(out / RESULT_FILE)
    (out / REPORT_FILE).write_text(render_html(result), encoding="utf-8")
    if built_profile is not None:
        built_profile.to_json(out / PROFILE_FILE)
    if model_dir:
        pass_on_importance(model_dir, out)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        from amlops.steps._monitor_mlflow import log_to_mlflow

        log_to_mlflow(result, out)
    return out


FIT_ROWS = 200_000  # a foreign reference larger than this is sampled to fit the error estimator


def load_estimator(
    model_dir: str | None,
    reference_data: str | None,
    profile: Any,
    prediction_column: str | None,
    label_column: str | None,
    out: str | Path | None = None,
) -> Any:
    """The error estimator: the one stored in the model folder, or one fitted here on a foreign reference that
    holds the features, the prediction and the label (the same way its profile is built on the fly); None when
    neither is possible. A reference whose predictions are the model's own training predictions gives an
    optimistic estimator (the model fits its training rows better than new ones): give it scored holdout rows."""
    if model_dir:
        from amlops.drift.estimate import ErrorEstimator

        try:
            return ErrorEstimator.load(model_dir)
        except Exception as exc:  # the estimate is optional: drift and measured error go on without it
            print(f"monitor: the model's error estimator is unusable, no estimate ({exc})", file=sys.stderr)
            return None
    if not reference_data or not prediction_column or not label_column:
        return None
    from amlops.drift.monitor import open_dataset

    ds = open_dataset(reference_data)
    names = ds.schema.names
    if prediction_column not in names or label_column not in names:
        return None
    from amlops.drift.estimate import EstimatorError, fit_from_frame  # pandas and the fit: only when used

    features = [f for f in profile.features if f in names]
    table = ds.to_table(columns=list(dict.fromkeys([*features, prediction_column, label_column])))
    df = table.to_pandas()
    if len(df) > FIT_ROWS:
        df = df.sample(FIT_ROWS, random_state=0)
    try:
        estimator = fit_from_frame(
            df,
            [f for f in profile.numeric if f in names],
            [f for f in profile.categorical if f in names],
            prediction_column,
            label_column,
            metadata={"source": reference_data},
        )
    except EstimatorError as exc:
        print(f"monitor: no error estimate ({exc})", file=sys.stderr)
        return None
    if out is not None:
        estimator.save(out)
    return estimator


def load_multivariate(
    model_dir: str | None, reference_data: str | None, profile: Any, out: str | Path | None = None
) -> Any:
    """The multivariate-drift PCA stored with the model, or one fitted here on foreign reference data."""
    from amlops.drift.multivariate import MultivariateError, PCADrift, fit_pca

    if model_dir:
        return PCADrift.load(model_dir)
    if not reference_data:
        return None
    from amlops.drift.monitor import open_dataset

    ds = open_dataset(reference_data)
    numeric = [f for f in profile.numeric if f in ds.schema.names]
    if len(numeric) < 2:
        return None
    df = ds.to_table(columns=numeric).to_pandas()
    if len(df) > FIT_ROWS:
        df = df.sample(FIT_ROWS, random_state=0)
    try:
        pca = fit_pca(df, numeric)
    except MultivariateError:
        return None
    if out is not None:
        pca.save(out)
    return pca


def window_extras(estimator: Any, pca: Any = None) -> list[Any]:
    from amlops.drift.monitor import estimate_extra, multivariate_extra

    extras = [estimate_extra(estimator)] if estimator is not None else []
    return extras + ([multivariate_extra(pca)] if pca is not None else [])


def pass_on_importance(model_dir: str, out: Path) -> None:
    """Copy the model's feature importance beside result.json: the policy weighs drift by it, and reading it
    from the monitor's output is what makes the local and the Azure ML loop decide on the same facts (the Azure
    loop downloads only this output)."""
    from amlops import storage

    location = model_dir.rstrip("/") + "/" + IMPORTANCE_FILE
    if storage.exists(location):
        with storage.open_file(location) as src:
            (out / IMPORTANCE_FILE).write_bytes(src.read())


# The policy fields the report decides with (amlops.drift.policy.REPORT_FIELDS; job_inputs sets them as inputs).
_POLICY_ARGS: dict[str, Any] = {
    "drift_windows_n": int,
    "drift_windows_m": int,
    "performance_degradation": float,
    "min_drift_importance_share": float,
    "confirm_drift_with_labels": None,  # a boolean: parse_bool
    "min_rows": int,
}


def add_policy_arguments(p: argparse.ArgumentParser) -> None:
    """`--policy-<field>` for each policy setting the report's decision uses; absent: the setting's default."""
    from amlops.steps._args import parse_bool

    for field, kind in _POLICY_ARGS.items():
        p.add_argument(
            "--policy-" + field.replace("_", "-"),
            dest=f"policy_{field}",
            type=kind or parse_bool,
            help=PolicySettings.model_fields[field].description,
        )


def policy_from_arguments(args: argparse.Namespace) -> PolicySettings:
    """The policy given by the `--policy-*` flags over the defaults; a value the settings refuse is a one-line
    ValueError naming the flag."""
    from pydantic import ValidationError

    given = {
        f: getattr(args, f"policy_{f}") for f in _POLICY_ARGS if getattr(args, f"policy_{f}") is not None
    }
    try:
        return PolicySettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "--policy-" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "--policy-*"
        raise ValueError(f"{where}: {first['msg']}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m amlops.steps.monitor", description=__doc__.split("\n")[0])
    p.add_argument("--current", required=True, help="Parquet/CSV file or folder, local or abfs://")
    p.add_argument("--reference-profile", nargs="?", const="", help="reference_profile.json")
    p.add_argument("--reference-data", nargs="?", const="", help="reference data (profile built on the fly)")
    p.add_argument("--model-dir", nargs="?", const="", help="model folder holding reference_profile.json")
    p.add_argument(
        "--labels", nargs="?", const="", help="late labels file/folder with the id and label columns"
    )
    p.add_argument("--window", default="all", help="all | daily | weekly | auto | <N> rows (default: all)")
    p.add_argument("--timestamp-column", nargs="?", const="")
    p.add_argument("--id-column", nargs="?", const="")
    p.add_argument("--prediction-column", nargs="?", const="")
    p.add_argument("--label-column", nargs="?", const="")
    p.add_argument("--features", nargs="?", const="", help="comma-separated subset of the profile's features")
    p.add_argument("--min-window-rows", type=int)
    p.add_argument(
        "--thresholds",
        nargs="?",
        const="",
        help="JSON object or metric=value pairs overriding the default thresholds",
    )
    p.add_argument("--numeric-metric", nargs="?", const="")
    p.add_argument("--categorical-metric", nargs="?", const="")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    p.add_argument(
        "--column-kinds", nargs="?", const="", help="name=numeric|categorical pairs (the schema's monitor_as)"
    )
    add_policy_arguments(p)
    p.add_argument("--output", required=True, help="folder for result.json and report.html")
    # Optional string inputs may arrive empty (a pipeline input of ""): `--flag` alone means "not set".
    args = p.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from amlops.drift.kinds import parse_declared
    from amlops.drift.monitor import MonitorError
    from amlops.drift.profile import ProfileError
    from amlops.steps import _mlflow_warm

    _mlflow_warm.start("amlops-monitor")

    try:
        result = monitor(
            args.current,
            args.output,
            reference_profile=args.reference_profile or None,
            reference_data=args.reference_data or None,
            model_dir=args.model_dir or None,
            labels=args.labels or None,
            window=args.window,
            timestamp_column=args.timestamp_column or None,
            id_column=args.id_column or None,
            prediction_column=args.prediction_column or None,
            label_column=args.label_column or None,
            features=[f.strip() for f in args.features.split(",") if f.strip()] if args.features else None,
            min_window_rows=args.min_window_rows,
            thresholds=parse_thresholds(args.thresholds),
            chunk_rows=args.chunk_rows,
            numeric_metric=args.numeric_metric or None,
            categorical_metric=args.categorical_metric or None,
            column_kinds=parse_declared(args.column_kinds),
            policy=policy_from_arguments(args),
        )
    except (MonitorError, ProfileError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    v = result.verdict
    print(f"monitor: {v.status}: {v.summary}")
    print(f"result: {Path(args.output) / RESULT_FILE}")
    print(f"report: {Path(args.output) / REPORT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
