"""train: fit the seeded scikit-learn pipeline on a snapshot; log params, metrics, dataset and model to
MLflow.

    python -m amlops.steps.train --snapshot DIR --schema demand.yaml --model OUT --run-info OUT
        [--seed 42] [--holdout-days 28] [--params '{"max_iter": 300}'] [--data-uri azureml:demand:3]

The most recent `holdout_days` days are kept out of training (the evaluate step scores them). The model
folder (`--model`, an MLflow model) carries `reference_profile.json` (the training data's profile for
monitoring), `feature_importance.json` and the error estimator fitted on the holdout and the training rows
predicted out of fold (`error_estimator.json` + `.pkl`: the monitor estimates MAE/RMSE before labels arrive),
and is logged as the run's `model` artifact so
registering it versions them together. `--run-info` gets `run_info.json` (MLflow run id, model source URI, metrics, the
config that produced the model).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlops.data.schema import DatasetSchema, SchemaFileError, load_schema
from amlops.data.snapshot import SnapshotError, read_snapshot, short_version
from amlops.data.split import SplitError, split_holdout
from amlops.drift.metrics import regression_metrics
from amlops.steps._threads import openmp_threads_for

RUN_INFO_FILE = "run_info.json"
MODEL_ARTIFACT = "model"
PROFILE_FILE = "reference_profile.json"
IMPORTANCE_FILE = "feature_importance.json"
PREDICTION_COLUMN = "prediction"
# Tests set this to a checkpoint name (e.g. "train:after_fit") to SIGKILL the step there: an abrupt death at a
# known point, which a timer cannot give. Nothing else sets it.
KILL_HOOK_ENV = "AMLOPS_TEST_KILL_AT"


class TrainError(ValueError):
    """Training cannot go on with these inputs; one line."""


def parse_params(text: str | None) -> dict[str, Any]:
    """`max_iter=200,learning_rate=0.05` (values read as YAML scalars) or a JSON object; empty: no overrides.

    The k=v form needs no shell quoting, which matters: Azure ML pastes input values into the command."""
    import yaml

    text = (text or "").strip()
    if text in ("", "{}", "none", "-"):
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrainError(f"params: not valid JSON ({exc.msg}): {text!r}") from None
        if not isinstance(value, dict):
            raise TrainError(f"params: expected a JSON object, got {text!r}")
        return value
    out: dict[str, Any] = {}
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise TrainError(f"params: expected k=v,k=v, got {item!r} in {text!r}")
        out[key.strip()] = yaml.safe_load(raw.strip()) if raw.strip() else None
    return out


def checkpoint(name: str) -> None:
    if os.environ.get(KILL_HOOK_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def pip_requirements() -> list[str]:
    """Exactly what loading the model needs, pinned to this environment (inference is slow and
    unreproducible)."""
    from importlib.metadata import version

    return [
        f"{dist}=={version(dist)}"
        # mlflow-skinny, not mlflow: the environment's MLflow (azureml-mlflow caps it at 3.15, whose full `mlflow`
        # wheel requires pandas<3); the skinny wheel holds the same Python package.
        for dist in ("mlflow-skinny", "scikit-learn", "pandas", "numpy", "scipy", "cloudpickle", "pyarrow")
    ]


def _dataset_source(uri: str) -> Any:
    """An MLflow dataset source for the data URI; `azureml:name:version` and other non-file URIs have no
    built-in
    resolver, so they are recorded as they are."""
    from mlflow.data.dataset_source import DatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.exceptions import MlflowException

    class UriDatasetSource(DatasetSource):
        def __init__(self, value: str) -> None:
            self.uri = value

        @staticmethod
        def _get_source_type() -> str:
            return "uri"

        def load(self, **kwargs: Any) -> str:
            return self.uri

        @staticmethod
        def _can_resolve(raw_source: Any) -> bool:
            return False

        @classmethod
        def _resolve(cls, raw_source: Any) -> UriDatasetSource:
            return cls(str(raw_source))

        def to_dict(self) -> dict[str, Any]:
            return {"uri": self.uri}

        @classmethod
        def from_dict(cls, source_dict: dict[Any, Any]) -> UriDatasetSource:
            return cls(str(source_dict["uri"]))

    try:
        return resolve_dataset_source(uri)
    except MlflowException:
        return UriDatasetSource(uri)


IMPORTANCE_REPEATS = 3


def _importance(model: Any, X: pd.DataFrame, y: np.ndarray, seed: int) -> dict[str, float]:
    """Permutation importance of each input column on the holdout (MAE increase), for drift weighting."""
    sample = X if len(X) <= 5000 else X.sample(5000, random_state=seed)
    y_sample = pd.Series(y, index=X.index).loc[sample.index].to_numpy()
    mean = permutation_importance_batched(model, sample, y_sample, IMPORTANCE_REPEATS, seed)
    return {col: round(float(max(v, 0.0)), 6) for col, v in zip(sample.columns, mean, strict=True)}


def permutation_importance_batched(
    model: Any, X: pd.DataFrame, y: np.ndarray, n_repeats: int, seed: int
) -> np.ndarray:
    """`sklearn.inspection.permutation_importance(model, X, y, scoring="neg_mean_absolute_error", n_repeats,
    random_state=seed).importances_mean`, to the bit, from ONE predict call: the same shuffles (one RandomState
    per column, seeded as sklearn seeds them, each repeat shuffling the previous one: sklearn/inspection/
    _permutation_importance.py, `_calculate_permutation_scores`), all the shuffled copies stacked and scored
    together. sklearn predicts each copy separately, n_features x n_repeats + 1 calls on a few hundred rows that
    each pay the pipeline's fixed cost; the model scores rows independently, so stacking changes no prediction."""
    from sklearn.metrics import mean_absolute_error
    from sklearn.utils import check_random_state

    rows = len(X)
    column_seed = check_random_state(seed).randint(np.iinfo(np.int32).max + 1)
    copies = [X]
    for col_idx in range(X.shape[1]):
        rng = check_random_state(column_seed)
        permuted = X.copy()
        order = np.arange(rows)
        for _ in range(n_repeats):
            rng.shuffle(order)
            col = permuted.iloc[order, col_idx]
            col.index = permuted.index
            permuted[permuted.columns[col_idx]] = col
            copies.append(permuted.copy())
    pred = np.asarray(model.predict(pd.concat(copies, ignore_index=True)))
    scores = [-mean_absolute_error(y, pred[i * rows : (i + 1) * rows]) for i in range(len(copies))]
    permuted_scores = np.array(scores[1:]).reshape(X.shape[1], n_repeats)
    return np.asarray(np.mean(scores[0] - permuted_scores, axis=1))


# Out-of-fold predictions over the training rows feed the error estimator when the training set is at most this
# big: two more fits of the model on half the rows each (about one more training), paid only where it is cheap.
OOF_MAX_ROWS = 200_000
OOF_BLOCK_DAYS = 7


def week_folds(days: pd.Series) -> np.ndarray:
    """0/1 per row by alternating blocks of OOF_BLOCK_DAYS days: a day's rows always share a fold."""
    return np.asarray(((days - days.min()).dt.days // OOF_BLOCK_DAYS % 2).to_numpy())


def out_of_fold(
    train_df: pd.DataFrame,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    date_column: str,
    fit: Any,
) -> np.ndarray | None:
    """Predictions for every training row from a model that did not train on it: two folds of alternating
    weeks (blocks of days, not rows: rows of one day share its weather and calendar, so a row-wise split would
    leak them and make the errors look small), each predicted by the model fitted on the other. None above
    OOF_MAX_ROWS rows or when a fold would be empty. `fit(X, y)` returns a fitted pipeline."""
    if len(X_train) > OOF_MAX_ROWS:
        return None
    fold = week_folds(pd.to_datetime(train_df[date_column]))
    if len(np.unique(fold)) < 2:
        return None
    out = np.empty(len(X_train))
    for k in (0, 1):
        held = fold == k
        out[held] = fit(X_train[~held], y_train[~held]).predict(X_train[held])
    return out


def fit_estimator(
    holdout: pd.DataFrame,
    prediction: np.ndarray,
    y: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    seed: int,
    oof: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None,
) -> Any:
    """The error estimator (direct loss estimation, amlops.drift.estimate) on labelled rows the model did not
    train on, so it learns the error the model makes on new data, not its training error: the holdout, plus
    (`oof`: rows, their out-of-fold predictions, labels) the training rows predicted out of fold. The holdout
    alone is the last few weeks: a monitor meeting another season, store mix or price level would find most
    of its rows outside what the estimator saw (NannyML's DLE fits on a reference period the model did not
    train on, for the same reason: https://github.com/NannyML/nannyml/blob/main/docs/how_it_works/
    performance_estimation.rst). None (with a line on stderr) when there are too few rows."""
    from amlops.drift.estimate import EstimatorError, fit_error_estimator

    rows, pred, labels = holdout, prediction, y
    reference_rows = None
    if oof is not None:
        rows = pd.concat([oof[0], holdout], ignore_index=True)
        pred, labels = np.concatenate([oof[1], prediction]), np.concatenate([oof[2], y])
        # Its reference level stays the holdout's, like the measured error's (amlops.drift.policy).
        reference_rows = np.arange(len(rows)) >= len(oof[0])
    metadata = {"fitted_on": "out-of-fold training rows + holdout" if oof is not None else "holdout"}
    try:
        return fit_error_estimator(
            rows,
            pred,
            labels,
            numeric,
            categorical,
            seed=seed,
            metadata=metadata,
            reference_rows=reference_rows,
        )
    except EstimatorError as exc:
        print(f"train: no error estimator ({exc})", file=sys.stderr)
        return None


def save_multivariate(train_df: pd.DataFrame, numeric: list[str], seed: int, model_dir: Path) -> None:
    """The PCA of the numeric features for multivariate drift (amlops.drift.multivariate), beside the profile."""
    from amlops.drift.multivariate import MultivariateError, fit_pca

    try:
        fit_pca(train_df, numeric, seed=seed).save(model_dir)
    except MultivariateError as exc:
        print(f"train: no multivariate drift reference ({exc})", file=sys.stderr)


def _save_model(
    pipeline: Any,
    folder: Path,
    schema: DatasetSchema,
    X_train: pd.DataFrame,
    train_pred: np.ndarray,
    metadata: dict[str, Any],
) -> None:
    import cloudpickle
    import mlflow.sklearn
    from mlflow.models import infer_signature

    import amlops.data.features as features_module

    # The calendar transformer lives in amlops: pickle that module by value so the model does not need amlops
    # installed to load (skops would store a reference to it and need it importable and trusted).
    cloudpickle.register_pickle_by_value(features_module)
    try:
        example = X_train.head(5)
        mlflow.sklearn.save_model(
            pipeline,
            str(folder),
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            signature=infer_signature(example, pd.Series(train_pred[:5], name=PREDICTION_COLUMN)),
            input_example=example,
            pip_requirements=pip_requirements(),
            metadata=metadata,
        )
    finally:
        cloudpickle.unregister_pickle_by_value(features_module)


def train(
    snapshot_dir: str | Path,
    schema_path: str | Path,
    model_out: str | Path,
    run_info_out: str | Path,
    *,
    seed: int = 42,
    holdout_days: int = 28,
    params: dict[str, Any] | None = None,
    data_uri: str = "",
) -> dict[str, Any]:
    """Fit, log and save; returns the run info written to `run_info.json`."""
    from amlops.mlflow_local import skip_azureml_plugins

    skip_azureml_plugins()
    import mlflow

    from amlops.data.features import build_pipeline, model_input
    from amlops.drift.profile import build_profile
    from amlops.tracking import log_input, pandas_dataset

    params = dict(params or {})
    schema = load_schema(schema_path)
    df, manifest = read_snapshot(snapshot_dir, schema)
    train_df, holdout_df, cutoff = split_holdout(df, schema.date_column, holdout_days)
    numeric, categorical = list(schema.numeric_features), list(schema.categorical_features)
    X_train = model_input(train_df, numeric, categorical, schema.date_column)
    X_hold = model_input(holdout_df, numeric, categorical, schema.date_column)
    y_train = train_df[schema.target].to_numpy(dtype="float64")
    y_hold = holdout_df[schema.target].to_numpy(dtype="float64")
    with openmp_threads_for(len(X_train)):
        try:
            pipeline = build_pipeline(numeric, categorical, schema.date_column, params, seed)
            pipeline.fit(X_train, y_train)
        except (TypeError, ValueError) as exc:
            raise TrainError(f"cannot fit the model: {str(exc).splitlines()[0]}") from None
        checkpoint("train:after_fit")
        train_pred = pipeline.predict(X_train)
        hold_pred = pipeline.predict(X_hold)
        importance = _importance(pipeline, X_hold, y_hold, seed)
        oof_pred = out_of_fold(
            train_df,
            X_train,
            y_train,
            schema.date_column,
            lambda X, y: build_pipeline(numeric, categorical, schema.date_column, params, seed).fit(X, y),
        )
        oof = (train_df, oof_pred, y_train) if oof_pred is not None else None
        estimator = fit_estimator(holdout_df, hold_pred, y_hold, numeric, categorical, seed, oof)
    metrics = {f"train_{k}": v for k, v in regression_metrics(y_train, train_pred).items()}
    metrics |= {f"holdout_{k}": v for k, v in regression_metrics(y_hold, hold_pred).items()}
    effective = pipeline.named_steps["model"].get_params()
    config = {
        "seed": seed,
        "holdout_days": holdout_days,
        "params": {k: effective[k] for k in sorted(effective)},
        "estimator": type(pipeline.named_steps["model"]).__name__,
        "schema_digest": schema.digest,
        "features": schema.feature_columns,
        "target": schema.target,
    }
    train_end = (cutoff - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    git_commit = os.environ.get("AMLOPS_GIT_COMMIT", "unknown")
    pipeline_run_id = os.environ.get("AZUREML_ROOT_RUN_ID", "")

    from amlops.tracking import run_name, run_note, start_run_args

    name = run_name(
        f"train on {schema.name}@{short_version(manifest['digest'])}",
        pipeline_run=os.environ.get("AZUREML_RUN_ID", ""),
    )
    note = run_note(
        f"Training on {len(train_df):,} rows ({manifest.get('date_min')} .. {train_end}), "
        f"holdout {len(holdout_df):,} rows",
        {
            "holdout MAE": f"{metrics.get('holdout_mae', float('nan')):.4g}",
            "data": data_uri or manifest.get("data_uri", ""),
            "data digest": manifest["digest"],
            "git commit": git_commit,
            "the registered version": "see the Models tab (the version's source run is this run)",
        },
    )
    with (
        mlflow.start_run(**start_run_args(name, note)) as run,  # type: ignore[arg-type]
        tempfile.TemporaryDirectory(prefix="amlops-model-") as tmp,
    ):
        mlflow.set_tags(
            {
                "data.digest": manifest["digest"],
                "data.uri": data_uri or manifest.get("data_uri", ""),
                "git.commit": git_commit,
                "pipeline.run_id": pipeline_run_id,
                "amlops.step": "train",
            }
        )
        mlflow.log_params(
            {
                "seed": seed,
                "holdout_days": holdout_days,
                "estimator": config["estimator"],
                "train_rows": len(train_df),
                "holdout_rows": len(holdout_df),
                "train_start": manifest.get("date_min"),
                "train_end": train_end,
                "data_version": manifest.get("version"),
                **{f"model.{k}": v for k, v in sorted(effective.items()) if k != "categorical_features"},
            }
        )
        mlflow.log_metrics(metrics)
        # MLflow hints about integer columns and ambiguous local sources here; neither applies to a record.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dataset = pandas_dataset(
                df,
                source=_dataset_source(
                    data_uri or manifest.get("data_uri") or str(Path(snapshot_dir).resolve())
                ),
                targets=schema.target,
                name=f"{schema.name}@{short_version(manifest['digest'])}",
                digest=manifest["digest"].split(":", 1)[-1][:32],
            )
            log_input(dataset, context="training")  # falls back to run tags on Azure ML (no datasets API)

        model_dir = Path(tmp) / MODEL_ARTIFACT
        _save_model(
            pipeline,
            model_dir,
            schema,
            X_train,
            train_pred,
            metadata={
                "amlops": {
                    "schema": schema.name,
                    "schema_digest": schema.digest,
                    "date_column": schema.date_column,
                    "target": schema.target,
                    "id_column": schema.id_column,
                    "numeric": numeric,
                    "categorical": categorical,
                    "prediction_column": PREDICTION_COLUMN,
                    "data_digest": manifest["digest"],
                    "train_end": train_end,
                }
            },
        )
        profiled = train_df.assign(**{PREDICTION_COLUMN: train_pred})
        profile = build_profile(
            profiled,
            numeric,
            categorical,
            target=schema.target,
            prediction=PREDICTION_COLUMN,
            metadata={
                "data_digest": manifest["digest"],
                "date_column": schema.date_column,
                "train_start": manifest.get("date_min"),
                "train_end": train_end,
                "feature_importance": importance,
                # The error estimator's level on the holdout (realized vs estimated), when it could be fitted.
                **({"error_estimator": estimator.reference} if estimator is not None else {}),
                # The champion's own holdout error: the monitor reports it next to each window's error, and the
                # retrain policy measures a loss of accuracy against it.
                "performance": {
                    k: v for k, v in regression_metrics(y_hold, hold_pred).items() if np.isfinite(v)
                },
            },
        )
        profile.to_json(model_dir / PROFILE_FILE)
        save_multivariate(train_df, numeric, seed, model_dir)
        if estimator is not None:
            estimator.save(model_dir)
            mlflow.log_metrics(
                {f"error_estimator_{k}": v for k, v in estimator.reference.items() if k != "rows"}
            )
        (model_dir / IMPORTANCE_FILE).write_text(json.dumps(importance, indent=2) + "\n", encoding="utf-8")
        mlflow.log_artifacts(str(model_dir), artifact_path=MODEL_ARTIFACT)
        checkpoint("train:after_log")

        # Into the output folder, never replacing it: on Azure ML an output is a mount point (rw_mount), and
        # removing it fails with EBUSY (https://learn.microsoft.com/azure/machine-learning/how-to-read-write-data-v2
        # "Read and write data in a job": outputs are mounted read-write at the path the command receives).
        out = Path(model_out)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(model_dir, out, dirs_exist_ok=True)
        info = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "model_uri": f"runs:/{run.info.run_id}/{MODEL_ARTIFACT}",
            "model_source": mlflow.get_artifact_uri(MODEL_ARTIFACT),
            "metrics": metrics,
            "config": config,
            "data_digest": manifest["digest"],
            "data_uri": data_uri or manifest.get("data_uri", ""),
            "train_start": manifest.get("date_min"),
            "train_end": train_end,
            "holdout_start": cutoff.strftime("%Y-%m-%d"),
            "feature_importance": importance,
        }
        Path(run_info_out).mkdir(parents=True, exist_ok=True)
        (Path(run_info_out) / RUN_INFO_FILE).write_text(
            json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8"
        )
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amlops.steps.train", description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", required=True, help="clean snapshot folder (prep output)")
    parser.add_argument("--schema", required=True, help="declared schema YAML")
    parser.add_argument("--model", required=True, help="output folder: the MLflow model")
    parser.add_argument("--run-info", required=True, help="output folder: run_info.json")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--holdout-days", type=int, default=28)
    parser.add_argument(
        "--params",
        nargs="?",
        const="",
        default="",
        help="regressor parameters over the defaults: k=v,k=v (or a JSON object)",
    )
    parser.add_argument("--data-uri", nargs="?", const="", default="")
    args = parser.parse_args(argv)
    try:
        params = parse_params(args.params)
        train(
            args.snapshot,
            args.schema,
            args.model,
            args.run_info,
            seed=args.seed,
            holdout_days=args.holdout_days,
            params=params,
            data_uri=args.data_uri,
        )
    except (TrainError, SchemaFileError, SnapshotError, SplitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
