"""evaluate: score the challenger and the current champion on the same recent holdout; decide the gate.

    python -m amlops.steps.evaluate --model DIR --snapshot DIR --schema demand.yaml --verdict OUT
    --model-name NAME [--metric mae] [--max-mae X] [--max-rmse X] [--max-mape X] [--min-improvement 0.0]
    [--bootstrap-samples 1000] [--confidence 0.95] [--require-confident true] [--seed 42] [--holdout-days 28]
    [--min-holdout-rows 50] [--min-holdout-days 7]

The gate passes only if every configured absolute threshold holds AND (when there is a champion) the
challenger beats it on `metric` by at least `min_improvement` (relative) AND, with `require_confident`, the
lower end of the block-bootstrap interval of the improvement is above zero. Anything that prevents a fair
comparison (a champion that cannot score the holdout, non-finite predictions, a holdout below
`min_holdout_rows` rows or `min_holdout_days` days) fails the gate: it fails closed.
The verdict goes to `verdict.json`; nothing downstream can override it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlops.config import (
    DEFAULT_MIN_HOLDOUT_DAYS,
    DEFAULT_MIN_HOLDOUT_ROWS,
    GATE_METRICS,
    MIN_BOOTSTRAP_SAMPLES,
)
from amlops.data.io import finite_json as _finite_or_none
from amlops.data.schema import DatasetSchema, SchemaFileError, load_schema
from amlops.data.snapshot import SnapshotError, read_snapshot
from amlops.data.split import SplitError, split_holdout
from amlops.drift.metrics import counts_for_mape, percentage_errors
from amlops.steps._args import parse_bool as _bool

VERDICT_FILE = "verdict.json"
METRICS = GATE_METRICS


class EvaluateError(ValueError):
    """The evaluation cannot run with these inputs; one line."""


def _limit(text: str) -> float | None:
    """A threshold: empty, 'none' or <= 0 mean no limit (AML pipeline inputs cannot be null, so 0 stands for
    it)."""
    if str(text).strip().lower() in ("", "none", "null"):
        return None
    value = float(text)
    return value if value > 0 else None


# ------------------------------------------------------------------------------------------------ metrics
def _per_day_sums(y: np.ndarray, pred: np.ndarray, day: np.ndarray, n_days: int) -> dict[str, np.ndarray]:
    """Per-day sums from which MAE/RMSE/MAPE of any resample of days follow exactly."""
    err = pred - y
    pos = counts_for_mape(y)
    ape = percentage_errors(y, np.abs(err), pos)
    return {
        "n": np.bincount(day, minlength=n_days).astype(float),
        "abs": np.bincount(day, weights=np.abs(err), minlength=n_days),
        "sq": np.bincount(day, weights=err**2, minlength=n_days),
        "n_pos": np.bincount(day, weights=pos.astype(float), minlength=n_days),
        "ape": np.bincount(day, weights=ape, minlength=n_days),
    }


def _metric_from_sums(s: dict[str, np.ndarray], metric: str, w: np.ndarray) -> np.ndarray:
    """The metric for each row of day-weights `w` (shape (B, days))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "mae":
            return (w @ s["abs"]) / (w @ s["n"])
        if metric == "rmse":
            return np.sqrt((w @ s["sq"]) / (w @ s["n"]))
        return (w @ s["ape"]) / (w @ s["n_pos"])


def metrics_of(sums: dict[str, np.ndarray]) -> dict[str, float]:
    ones = np.ones((1, len(sums["n"])))
    return {m: float(_metric_from_sums(sums, m, ones)[0]) for m in METRICS}


def relative_improvement(champion: np.ndarray | float, challenger: np.ndarray | float) -> Any:
    """(champion - challenger) / champion: > 0 means the challenger's error is lower."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(champion) - np.asarray(challenger)) / np.asarray(champion)


def bootstrap_interval(
    champ: dict[str, np.ndarray],
    chall: dict[str, np.ndarray],
    metric: str,
    samples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Block bootstrap over days (rows of one day share weather and holidays, so they are not independent):
    resample days with replacement, recompute both metrics on the same resample, take percentiles of the
    relative improvement."""
    n_days = len(champ["n"])
    rng = np.random.default_rng(seed)
    w = rng.multinomial(n_days, np.full(n_days, 1.0 / n_days), size=samples).astype(float)
    diffs = relative_improvement(_metric_from_sums(champ, metric, w), _metric_from_sums(chall, metric, w))
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        return {"low": None, "high": None, "prob_better": None}
    alpha = (1.0 - confidence) / 2
    return {
        "low": float(np.quantile(diffs, alpha)),
        "high": float(np.quantile(diffs, 1 - alpha)),
        "prob_better": float(np.mean(diffs > 0)),
    }


# ------------------------------------------------------------------------------------------------ scoring
def predict(model: Any, df: pd.DataFrame, schema: DatasetSchema) -> np.ndarray:
    from amlops.data.features import model_input
    from amlops.steps._threads import openmp_threads_for

    X = model_input(df, list(schema.numeric_features), list(schema.categorical_features), schema.date_column)
    with openmp_threads_for(len(X)):
        pred = model.predict(X)
    return np.asarray(pred, dtype="float64").reshape(-1)


def load_model(location: str | Path) -> Any:
    """A model folder or a registry URI (`models:/name/version`), loaded as the scoring step loads it: the sklearn
    flavor's pickle directly (amlops.steps.score.load_model). `mlflow.pyfunc.load_model` would first compare the
    model's pinned requirements with every installed distribution (mlflow/utils/requirements_utils.py,
    `warn_dependency_requirement_mismatches`: a scan of the whole environment, about a second) for a warning the
    gate does not act on; the predictions are the estimator's own either way."""
    from amlops.steps.score import load_model as load_folder

    text = str(location)
    remote = text.startswith(("models:/", "runs:/")) or ("://" in text and not text.startswith("file://"))
    if not remote:
        return load_folder(Path(text.removeprefix("file://"))).predictor
    import tempfile

    import mlflow.artifacts

    # Downloaded next to nothing the user owns and gone when the step ends (an AML job's temp is per job).
    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=text, dst_path=tempfile.mkdtemp(prefix="amlops-")
    )
    return load_folder(Path(folder)).predictor


def _holdout_too_small(rows: int, days: int, min_rows: int, min_days: int) -> list[str]:
    """The reason the gate refuses to decide on this holdout (fails closed), if any: a dozen rows of one day
    cannot tell two models apart, however confident the interval looks."""
    if rows >= min_rows and days >= min_days:
        return []
    return [
        f"holdout too small to decide: {rows} row(s) over {days} day(s), the gate needs at least "
        f"{min_rows} rows and {min_days} days (gate.min_holdout_rows / min_holdout_days; future-dated rows "
        "shrink the holdout to their own days)"
    ]


def _champion_metadata(client: Any, model_name: str, version: str) -> dict[str, str]:
    try:
        return dict(client.get_model_version(model_name, version).tags or {})
    except Exception:  # lineage is informative here, not needed for the gate
        return {}


def evaluate(
    model_dir: str | Path,
    snapshot_dir: str | Path,
    schema_path: str | Path,
    verdict_out: str | Path,
    *,
    model_name: str,
    metric: str = "mae",
    max_mae: float | None = None,
    max_rmse: float | None = None,
    max_mape: float | None = None,
    min_improvement: float = 0.0,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    require_confident: bool = True,
    seed: int = 42,
    holdout_days: int = 28,
    min_holdout_rows: int = DEFAULT_MIN_HOLDOUT_ROWS,
    min_holdout_days: int = DEFAULT_MIN_HOLDOUT_DAYS,
) -> dict[str, Any]:
    from amlops.mlflow_local import skip_azureml_plugins

    skip_azureml_plugins()
    from mlflow.tracking import MlflowClient

    from amlops import registry

    if metric not in METRICS:
        raise EvaluateError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if not 0 < confidence < 1:
        raise EvaluateError(f"confidence must be between 0 and 1, got {confidence}")
    if bootstrap_samples < MIN_BOOTSTRAP_SAMPLES:
        raise EvaluateError(
            f"bootstrap_samples must be at least {MIN_BOOTSTRAP_SAMPLES}, got {bootstrap_samples}"
        )
    if min_holdout_rows < 1 or min_holdout_days < 1:
        raise EvaluateError(
            f"min_holdout_rows and min_holdout_days must be at least 1, got {min_holdout_rows}, {min_holdout_days}"
        )
    schema = load_schema(schema_path)
    df, manifest = read_snapshot(snapshot_dir, schema)
    _, holdout, cutoff = split_holdout(df, schema.date_column, holdout_days)
    y = holdout[schema.target].to_numpy(dtype="float64")
    day_codes, days = pd.factorize(pd.to_datetime(holdout[schema.date_column]).dt.normalize(), sort=True)
    n_days = len(days)

    reasons: list[str] = _holdout_too_small(len(holdout), n_days, min_holdout_rows, min_holdout_days)
    notes: list[str] = []
    try:
        challenger_pred = predict(load_model(model_dir), holdout, schema)
    except Exception as exc:  # a challenger that cannot score: one line, exit 1
        raise EvaluateError(
            f"{model_dir}: the challenger cannot score the holdout ({str(exc).splitlines()[0]})"
        ) from None
    chall_sums = _per_day_sums(y, challenger_pred, day_codes, n_days)
    chall = metrics_of(chall_sums)
    if not np.all(np.isfinite(challenger_pred)):
        reasons.append("challenger produced non-finite predictions")

    thresholds = {"max_mae": max_mae, "max_rmse": max_rmse, "max_mape": max_mape}
    for name, limit in thresholds.items():
        m = name.removeprefix("max_")
        if limit is not None and not (chall[m] <= limit):
            reasons.append(f"challenger {m} {chall[m]:.4g} above {name} {limit:g}")

    client = MlflowClient()
    champion = registry.resolve_champion(client, model_name)
    champion_block: dict[str, Any] | None = None
    improvement: float | None = None
    interval: dict[str, Any] | None = None
    if champion is None:
        notes.append("no champion yet: absolute thresholds only")
    else:
        version, uri = champion
        champion_block = {"version": version, "uri": uri, "metrics": None}
        tags = _champion_metadata(client, model_name, version)
        train_end = tags.get("data.train_end")
        if train_end and pd.Timestamp(train_end) >= cutoff:
            notes.append(
                f"champion v{version} was trained on data up to {train_end}, inside this holdout: "
                "the comparison favours the champion"
            )
        try:
            champion_pred = predict(load_model(uri), holdout, schema)
        except Exception as exc:  # fail closed, with the reason in the verdict
            reasons.append(
                f"champion v{version} could not score the holdout: {str(exc).splitlines()[0][:300]}"
            )
        else:
            champ_sums = _per_day_sums(y, champion_pred, day_codes, n_days)
            champ = metrics_of(champ_sums)
            champion_block["metrics"] = champ
            improvement = float(relative_improvement(champ[metric], chall[metric]))
            interval = bootstrap_interval(champ_sums, chall_sums, metric, bootstrap_samples, confidence, seed)
            interval |= {
                "confidence": confidence,
                "samples": bootstrap_samples,
                "method": "block bootstrap over days",
            }
            if not math.isfinite(improvement) or not chall[metric] < champ[metric]:
                reasons.append(
                    f"challenger {metric} {chall[metric]:.4g} does not beat "
                    f"champion v{version} ({champ[metric]:.4g})"
                )
            elif improvement < min_improvement:
                reasons.append(
                    f"challenger improves {metric} by {improvement:.2%}, "
                    f"less than min_improvement {min_improvement:.2%}"
                )
            # Only worth saying when the challenger looks better: a clear loss needs no interval to fail.
            beats = math.isfinite(improvement) and chall[metric] < champ[metric]
            if beats and require_confident and (interval["low"] is None or not interval["low"] > 0):
                low = "n/a" if interval["low"] is None else f"{interval['low']:.2%}"
                high = "n/a" if interval["high"] is None else f"{interval['high']:.2%}"
                reasons.append(
                    f"improvement not significant: "
                    f"{confidence:.0%} interval [{low}, {high}] does not exclude 0"
                )

    passed = not reasons
    if passed:
        summary = f"gate passed: {metric} {chall[metric]:.4g}" + (
            f" vs champion v{champion[0]} {champion_block['metrics'][metric]:.4g} ({improvement:+.2%})"
            if champion and champion_block and champion_block["metrics"]
            else " (no champion)"
        )
    else:
        summary = "gate failed: " + "; ".join(reasons)
    verdict = {
        "passed": passed,
        "summary": summary,
        "reasons": reasons,
        "notes": notes,
        "metric": metric,
        "challenger": {"metrics": chall},
        "champion": champion_block,
        "improvement": improvement,
        "interval": interval,
        "thresholds": thresholds,
        "min_improvement": min_improvement,
        "require_confident": require_confident,
        "holdout": {
            "start": cutoff.strftime("%Y-%m-%d"),
            "end": pd.Timestamp(days.max()).strftime("%Y-%m-%d"),
            "days": n_days,
            "rows": len(holdout),
        },
        "data_digest": manifest["digest"],
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "metric": metric,
            **thresholds,
            "min_improvement": min_improvement,
            "bootstrap_samples": bootstrap_samples,
            "confidence": confidence,
            "require_confident": require_confident,
            "seed": seed,
            "holdout_days": holdout_days,
            "min_holdout_rows": min_holdout_rows,
            "min_holdout_days": min_holdout_days,
        },
    }
    out = Path(verdict_out)
    out.mkdir(parents=True, exist_ok=True)
    verdict = _finite_or_none(verdict)
    (out / VERDICT_FILE).write_text(json.dumps(verdict, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amlops.steps.evaluate", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--model", required=True, help="the challenger: an MLflow model folder (train output)"
    )
    parser.add_argument("--snapshot", required=True, help="clean snapshot folder (prep output)")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--verdict", required=True, help="output folder for verdict.json")
    parser.add_argument("--model-name", required=True, help="registered model whose champion is compared")
    parser.add_argument("--metric", default="mae", choices=METRICS)
    parser.add_argument("--max-mae", type=_limit, default=None)
    parser.add_argument("--max-rmse", type=_limit, default=None)
    parser.add_argument("--max-mape", type=_limit, default=None)
    parser.add_argument("--min-improvement", type=float, default=0.0)
    parser.add_argument("--bootstrap-samples", type=int, default=1000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--require-confident", type=_bool, default=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--holdout-days", type=int, default=28)
    parser.add_argument("--min-holdout-rows", type=int, default=DEFAULT_MIN_HOLDOUT_ROWS)
    parser.add_argument("--min-holdout-days", type=int, default=DEFAULT_MIN_HOLDOUT_DAYS)
    args = parser.parse_args(argv)
    try:
        verdict = evaluate(
            args.model,
            args.snapshot,
            args.schema,
            args.verdict,
            model_name=args.model_name,
            metric=args.metric,
            max_mae=args.max_mae,
            max_rmse=args.max_rmse,
            max_mape=args.max_mape,
            min_improvement=args.min_improvement,
            bootstrap_samples=args.bootstrap_samples,
            confidence=args.confidence,
            require_confident=args.require_confident,
            seed=args.seed,
            holdout_days=args.holdout_days,
            min_holdout_rows=args.min_holdout_rows,
            min_holdout_days=args.min_holdout_days,
        )
    except (EvaluateError, SchemaFileError, SnapshotError, SplitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(verdict["summary"])
    for note in verdict["notes"]:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
