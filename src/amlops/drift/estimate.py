"""Estimate the model's error before labels arrive: direct loss estimation (DLE), fitted once, streamed per window.

Method (NannyML's DLE, https://github.com/NannyML/nannyml/blob/main/docs/how_it_works/performance_estimation.rst
"Direct Loss Estimation"): on labelled rows the model did not train on, fit a second model ("nanny") that
predicts the absolute error |y - ŷ| (and the squared error) from the features and the prediction ŷ; the
estimated MAE of a window is the mean of its per-row estimates, the estimated RMSE the root of the mean estimated
squared error. Its documented limits hold here too: it follows covariate shift (P(X) moves, P(y|X) stays), it
cannot see concept drift, and it cannot know the error in regions of the input space the holdout never covered.

What this module does beyond NannyML's DLE:
- **Calibration**: the holdout is split in two folds; a nanny is fitted on each and predicts the other
  (cross-fitting), and an isotonic map from out-of-fold estimate to realized loss is fitted on those honest
  predictions. The conditional mean of the loss given the estimate is what a window's mean needs; boosting
  shrinks extremes towards the mean, the isotonic map undoes that without assuming a shape.
- **Uncertainty**: each window's interval combines its sampling error (the realized MAE of n rows varies by
  sd(|e|)/sqrt(n); sd(|e|) is itself estimated from the two nanny outputs, Var|e| = E[e²] - (E|e|)²) with the
  estimator's own error (the two fold nannies disagree on the window by |a - b|; the standard error of their
  mean is |a - b| / 2).
- **Speed**: a HistGradientBoostingRegressor (histogram trees, native categories and missing values, already in
  the environment; NannyML's LightGBM is not) with few small trees. One nanny pair (absolute error) serves both
  metrics: the expected squared error is a second isotonic map of the same output (fitted out of fold), so the
  trees are walked once per row. Large windows are subsampled (FULL_ROWS, then thinning, weighted), and the
  monitor keeps a handful of sums per window, so the estimate streams and merges like the reference profile.

The fitted estimator is stored in the model folder beside reference_profile.json: `error_estimator.pkl` (the
trees, pickled like the model itself: the same trust boundary as the model folder) and `error_estimator.json`
(features, category codes, calibration maps and the reference level, readable without unpickling).
"""

from __future__ import annotations

import functools
import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

ESTIMATOR_FILE = "error_estimator.json"
ESTIMATOR_MODELS = "error_estimator.pkl"
FORMAT = "amlops.error_estimator"
FORMAT_VERSION = 1
Z = 1.96  # two-sided 95 % interval
MIN_ROWS = 200  # fewer labelled rows than this cannot say where the model errs
MAX_CATEGORIES = 250
# Per window the first FULL_ROWS rows are estimated one by one; after that the row at position p is taken with
# rate FULL_ROWS / p (weight p / FULL_ROWS), so a window of n rows costs ~FULL_ROWS * (1 + ln(n / FULL_ROWS))
# rows through the nannies (1M rows: ~4.4k; 10 windows of 100k: ~32k) and the weights change smoothly; the
# subsampling error enters the interval.
FULL_ROWS = 512
# That thinning keeps the subsampling error of a large window near that of ~2 * FULL_ROWS equally weighted rows
# (the weighted sample's effective size, (sum w)^2 / sum w^2, saturates there), yet it walks the trees for
# FULL_ROWS * (1 + ln(n / FULL_ROWS)) rows: most of them early rows of weight ~1 that add little. So when the
# nannies run (before a window is read, or when BUFFER_ROWS rows wait), a second, position-only thinning raises
# every weight to at least THIN_LEVEL * n / FULL_ROWS (n: the window's rows met so far), keeping a row of weight w
# with probability w / that level: a window of 100k rows walks ~1.1k rows instead of ~3.2k, for ~9 % more
# subsampling variance (the interval counts it). Unbiased either way; the result does not depend on how the
# stream was chunked unless the buffer fills while a window is still open (more than BUFFER_ROWS sampled rows).
THIN_LEVEL = 0.35
_PHI = (
    0.6180339887498949  # golden-ratio steps: an evenly spread, deterministic "random" number per sampled row
)
BUFFER_ROWS = 65_536
NANNY_PARAMS: dict[str, Any] = {
    # Poisson loss: the target is a non-negative loss whose conditional mean is what we need; its log link
    # keeps estimates positive and lets error scale with the demand level multiplicatively.
    "loss": "poisson",
    "learning_rate": 0.15,
    # Few small trees: the nanny runs on the monitor's hot path (~1 µs per row and tree model here).
    "max_iter": 30,
    "max_leaf_nodes": 8,
    "early_stopping": False,  # a random validation split would make the fit depend on more than the seed
}


class EstimatorError(ValueError):
    """The error estimator cannot be fitted or read; one line."""


@functools.cache
def _threadpools() -> Any:
    """The process's thread pools, found once: `threadpool_limits()` searches the loaded libraries on every
    call (2-13 ms here), more than a flush's tree walk on a small window."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@dataclass
class Calibration:
    """A monotone map from raw nanny output to expected loss (isotonic regression, as breakpoints)."""

    x: list[float]
    y: list[float]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if not self.x:
            return raw
        return np.interp(raw, np.asarray(self.x), np.asarray(self.y))


@dataclass
class ErrorEstimator:
    """Two cross-fitted nannies per loss (absolute, squared), their calibrations and the reference level."""

    numeric: list[str]
    categorical: list[str]
    categories: dict[str, list[str]]
    models: list[Any]  # [nanny of |error| fitted on fold 0, the same fitted on fold 1]
    calibration: dict[str, Calibration]  # raw nanny output -> expected "abs" and "sq" error
    reference: dict[str, float]  # realized and estimated MAE/RMSE on the holdout, mean prediction, rows
    sq_cv: float  # sd(e²) / mean(e²) on the reference rows (the holdout): the squared error's spread (RMSE interval)
    metadata: dict[str, Any] = field(default_factory=dict)
    # Numeric ranges the nannies saw ([min, max] on the holdout). A row outside them, or with a category they
    # never saw, is *unsupported*: the estimate cannot know the model's error there (DLE's documented limit).
    support: dict[str, list[float]] = field(default_factory=dict)

    def unsupported(self, X: np.ndarray) -> np.ndarray:
        """Per row of the nanny's input: outside the numeric ranges, or an unseen category (code -1)."""
        out = np.zeros(len(X), dtype=bool)
        for j, name in enumerate(self.numeric):
            lo, hi = self.support.get(name, (-np.inf, np.inf))
            col = X[:, j]
            with np.errstate(invalid="ignore"):
                out |= (col < lo) | (col > hi)
        for j in range(len(self.numeric), len(self.numeric) + len(self.categorical)):
            out |= X[:, j] == -1.0
        return out

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    # -- prediction ---------------------------------------------------------------------------------------
    def design(self, columns: dict[str, np.ndarray], prediction: np.ndarray) -> np.ndarray:
        """The nanny's input: numeric features, category codes (unknown: NaN) and the prediction."""
        n = len(prediction)
        out = np.empty((n, len(self.features) + 1), dtype=np.float64)
        for j, name in enumerate(self.features):
            values = columns.get(name)
            out[:, j] = np.nan if values is None else values
        out[:, -1] = prediction
        return out

    def predict_loss(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated per-row expected loss of each fold nanny: {"abs": (2, n), "sq": (2, n)}."""
        # One OpenMP thread: scikit-learn walks each tree in a parallel region, and for the few thousand rows
        # of a chunk waking the threads costs more than the walk (5x here, worse on a busy machine).
        with _threadpools().limit(limits=1, user_api="openmp"):
            raw = np.vstack([m.predict(X) for m in self.models])
        return {kind: np.maximum(cal.apply(raw), 0.0) for kind, cal in self.calibration.items()}

    def columns_from_frame(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        for name in self.numeric:
            if name in df:
                cols[name] = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64)
        for name in self.categorical:
            if name in df:
                values = df[name].astype("string")
                codes = pd.Categorical(values, categories=self.categories[name]).codes
                # Unseen: -1 (scikit-learn's trees treat negative categories as missing); null: NaN.
                cols[name] = np.where(codes >= 0, codes, np.where(values.isna(), np.nan, -1.0)).astype(
                    np.float64
                )
        return cols

    def columns_from_batch(self, batch: pa.RecordBatch | pa.Table) -> dict[str, np.ndarray]:
        from amlops.drift.profile import numeric_values

        names = set(batch.schema.names)
        cols: dict[str, np.ndarray] = {}
        for name in self.numeric:
            if name in names:
                cols[name] = numeric_values(batch.column(name))[0]
        for name in self.categorical:
            if name in names:
                column = batch.column(name)
                if pa.types.is_dictionary(column.type):
                    column = column.cast(column.type.value_type)
                if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                    column = pc.cast(column, pa.string())
                idx = pc.index_in(column, value_set=pa.array(self.categories[name], pa.string()))
                codes = np.asarray(
                    pc.fill_null(pc.cast(idx, pa.float64()), -1.0).to_numpy(zero_copy_only=False),
                    dtype=np.float64,
                )
                valid = np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
                cols[name] = np.where(valid, codes, np.nan)
        return cols

    def estimate_frame(self, df: pd.DataFrame, prediction: np.ndarray) -> dict[str, Any]:
        """The estimate over a whole frame, as a window of the monitor would report it."""
        acc = EstimateSums()
        glob = np.zeros(1, np.intp)
        take, w = acc.sample(len(prediction), None, glob)
        X = self.design(self.columns_from_frame(df.iloc[take]), np.asarray(prediction, np.float64)[take])
        acc.add(self, X, None, glob, w)
        return acc.window(self, 0)

    # -- storage ------------------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "numeric": self.numeric,
            "categorical": self.categorical,
            "categories": self.categories,
            "calibration": {k: {"x": c.x, "y": c.y} for k, c in self.calibration.items()},
            "reference": self.reference,
            "sq_cv": self.sq_cv,
            "metadata": self.metadata,
            "support": self.support,
        }
        (folder / ESTIMATOR_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        with (folder / ESTIMATOR_MODELS).open("wb") as fh:
            pickle.dump(self.models, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, folder: str) -> ErrorEstimator | None:
        """The estimator stored in a model folder (local or a storage URL), or None when it has none."""
        from amlops import storage

        base = folder.rstrip("/")
        meta_path, models_path = f"{base}/{ESTIMATOR_FILE}", f"{base}/{ESTIMATOR_MODELS}"
        if not storage.exists(meta_path) or not storage.exists(models_path):
            return None
        with storage.open_file(meta_path) as fh:
            meta = json.loads(fh.read())
        if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise EstimatorError(f"{meta_path}: not an amlops error estimator of version {FORMAT_VERSION}")
        with storage.open_file(models_path) as fh:
            # The model folder is trusted as a whole: the model beside it is a pickle too.
            models = pickle.loads(fh.read())
        return cls(
            numeric=list(meta["numeric"]),
            categorical=list(meta["categorical"]),
            categories={k: list(v) for k, v in meta["categories"].items()},
            models=models,
            calibration={k: Calibration(list(v["x"]), list(v["y"])) for k, v in meta["calibration"].items()},
            reference={k: float(v) for k, v in meta["reference"].items()},
            sq_cv=float(meta["sq_cv"]),
            metadata=dict(meta.get("metadata") or {}),
            support={k: [float(v[0]), float(v[1])] for k, v in (meta.get("support") or {}).items()},
        )


# ---------------------------------------------------------------------------------------------- fitting
def fit_error_estimator(
    features: pd.DataFrame,
    prediction: np.ndarray,
    y: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    *,
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
    reference_rows: np.ndarray | None = None,
) -> ErrorEstimator:
    """Fit on labelled rows the model did NOT train on (its holdout): a nanny fitted on training rows learns the
    model's training error, which is smaller than its error on new data, and the estimate would be optimistic.

    >>> rng = np.random.default_rng(0); x = rng.uniform(0, 1, 4000)
    >>> est = fit_error_estimator(pd.DataFrame({"x": x}), 2 * x, 2 * x + rng.normal(0, x), ["x"], [])
    >>> low = est.estimate_frame(pd.DataFrame({"x": x[x < 0.3]}), 2 * x[x < 0.3])["mae"]
    >>> high = est.estimate_frame(pd.DataFrame({"x": x[x > 0.7]}), 2 * x[x > 0.7])["mae"]
    >>> bool(low < est.reference["realized_mae"] < high)
    True
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(prediction) & np.isfinite(y)
    if int(ok.sum()) < MIN_ROWS:
        raise EstimatorError(
            f"the error estimator needs at least {MIN_ROWS} labelled rows with a prediction, got {int(ok.sum())}"
        )
    features = features.loc[ok].reset_index(drop=True)
    prediction, y = prediction[ok], y[ok]
    # The reference level is the champion's normal: its holdout when the fit also uses older rows (out-of-fold
    # training rows), as the measured error's reference is the holdout's; else every row.
    ref = (
        np.ones(len(y), dtype=bool) if reference_rows is None else np.asarray(reference_rows, dtype=bool)[ok]
    )
    if not ref.any():
        ref = np.ones(len(y), dtype=bool)
    categories = {
        c: [str(v) for v in features[c].astype("string").value_counts().index[:MAX_CATEGORIES]]
        for c in categorical
        if c in features
    }
    est = ErrorEstimator(
        numeric=[c for c in numeric if c in features],
        categorical=[c for c in categorical if c in features],
        categories=categories,
        models=[],
        calibration={},
        reference={},
        sq_cv=0.0,
        metadata=dict(metadata or {}),
    )
    columns = est.columns_from_frame(features)
    est.support = {
        name: [float(np.nanmin(columns[name])), float(np.nanmax(columns[name]))]
        for name in est.numeric
        if np.isfinite(columns[name]).any()
    }
    X = est.design(columns, prediction)
    err = np.abs(y - prediction)
    targets = {"abs": err, "sq": err * err}
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(y)) % 2
    cat_mask = np.zeros(X.shape[1], dtype=bool)
    cat_mask[len(est.numeric) : len(est.numeric) + len(est.categorical)] = True
    leaf = max(20, len(y) // 200)
    oof = np.empty(len(y))
    for k in (0, 1):
        model = _nanny(cat_mask, leaf, seed + k)
        model.fit(X[fold == k], err[fold == k])
        oof[fold != k] = model.predict(X[fold != k])
        est.models.append(model)
    # Both maps are fitted on out-of-fold outputs: what a nanny says about rows it never saw.
    est.calibration = {kind: _isotonic(oof, target) for kind, target in targets.items()}
    if not ref.all():
        _level_to_reference(est, X[ref], {kind: target[ref] for kind, target in targets.items()})
    losses = est.predict_loss(X[ref])
    est_mae = float(losses["abs"].mean())
    est_mse = float(losses["sq"].mean())
    ref_mse = float(np.mean(targets["sq"][ref]))
    est.sq_cv = float(np.std(targets["sq"][ref]) / ref_mse) if ref_mse > 0 else 0.0
    est.reference = {
        "rows": float(ref.sum()),
        "realized_mae": float(err[ref].mean()),
        "realized_rmse": math.sqrt(ref_mse),
        "estimated_mae": est_mae,
        "estimated_rmse": math.sqrt(est_mse),
        "mean_prediction": float(np.mean(np.abs(prediction[ref]))),
    }
    return est


def _level_to_reference(est: ErrorEstimator, X_ref: np.ndarray, realized: dict[str, np.ndarray]) -> None:
    """Scale each calibration so that its mean estimate on the reference rows equals their realized loss.
    Why: rows predicted out of fold come from models fitted on half the weeks, which err more than the final
    model, so calibrated on every row the estimate sits above the final model's error (a review measured +5 %
    MAE and +24 % RMSE on the demo's holdout, and measured weekly MAE below the 95 % band in 17 of 54 weeks).
    The holdout is where the final model's own error is known: one factor per loss brings the level there, and
    the shape (which rows err more) stays what every row taught. The factors go to `metadata`."""
    got = est.predict_loss(X_ref)
    for kind, target in realized.items():
        have, want = float(got[kind].mean()), float(np.mean(target))
        if have > 0 and want > 0 and kind in est.calibration:
            factor = want / have
            cal = est.calibration[kind]
            est.calibration[kind] = Calibration(list(cal.x), [v * factor for v in cal.y])
            est.metadata[f"level_factor_{kind}"] = factor


def _nanny(cat_mask: np.ndarray, min_leaf: int, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        **NANNY_PARAMS,
        min_samples_leaf=min_leaf,
        categorical_features=cat_mask if cat_mask.any() else None,
        random_state=seed,
    )


def _isotonic(raw: np.ndarray, target: np.ndarray, knots: int = 64) -> Calibration:
    """Isotonic regression of realized loss on the out-of-fold estimate, kept as at most `knots` breakpoints
    (np.interp between them: fast at a million rows, and JSON-storable)."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(raw, target)
    xs = np.quantile(raw, np.linspace(0.0, 1.0, knots))
    xs = np.unique(xs)
    return Calibration([float(v) for v in xs], [float(v) for v in iso.predict(xs)])


def fit_from_frame(
    df: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    prediction_column: str,
    label_column: str,
    *,
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
) -> ErrorEstimator:
    """Fit from a labelled, scored frame (a foreign reference: features, prediction and label columns)."""
    missing = [c for c in (prediction_column, label_column) if c not in df]
    if missing:
        raise EstimatorError(f"the reference has no {' or '.join(missing)} column to fit the error estimator")
    pred = pd.to_numeric(df[prediction_column], errors="coerce").to_numpy(dtype=np.float64)
    y = pd.to_numeric(df[label_column], errors="coerce").to_numpy(dtype=np.float64)
    return fit_error_estimator(df, pred, y, numeric, categorical, seed=seed, metadata=metadata)


# ---------------------------------------------------------------------------------------------- streaming
# Per window: weight and weighted sums of each fold's estimated |e| and e², |prediction|, and for the subsampled
# rows (weight w > 1) the sums that give the subsampling variance (Poisson-sampling approximation).
_SUMS = ("w", "abs0", "abs1", "sq0", "sq1", "pred", "v0", "v1", "v2", "u")


class EstimateSums:
    """Per-window sums of the estimated losses; windows grow as the monitor meets them. Sums merge by addition
    (the same map/reduce shape as the profile's histograms)."""

    def __init__(self, full_rows: int = FULL_ROWS) -> None:
        self.full_rows = full_rows  # the multivariate metric samples with the same rule, more rows
        self.sums: dict[str, np.ndarray] = {k: np.zeros(0) for k in _SUMS}
        self.seen = np.zeros(0, dtype=np.int64)  # rows met per window (whether estimated or not)
        self.taken = np.zeros(0, dtype=np.int64)  # rows queued per window (numbers the second thinning)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_rows = 0

    def _ensure(self, n: int) -> None:
        have = len(self.seen)
        if have < n:
            grow = max(n, 2 * have) - have
            for k in _SUMS:
                self.sums[k] = np.concatenate([self.sums[k], np.zeros(grow)])
            self.seen = np.concatenate([self.seen, np.zeros(grow, dtype=np.int64)])
            self.taken = np.concatenate([self.taken, np.zeros(grow, dtype=np.int64)])

    def sample(self, n: int, local: np.ndarray | None, glob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the chunk to estimate, their weights), chosen by position in the window only (never by
        value): the first `full_rows` rows, then a thinning at rate full_rows / position."""
        self._ensure(int(glob.max()) + 1)
        groups: list[tuple[int, np.ndarray]]
        if local is None:
            groups = [(int(glob[0]), np.arange(n))]
        elif len(glob) <= 64:
            groups = [(int(g), np.flatnonzero(local == j)) for j, g in enumerate(glob)]
        else:  # many windows in one chunk (daily windows over years): one sort instead of a pass per window
            order = np.argsort(local, kind="stable")
            bounds = np.searchsorted(local[order], np.arange(len(glob) + 1))
            groups = [(int(g), order[bounds[j] : bounds[j + 1]]) for j, g in enumerate(glob)]
        takes, weights = [], []
        for g, idx in groups:
            if len(idx) == 0:
                continue
            p0 = int(self.seen[g])
            p1 = p0 + len(idx)
            self.seen[g] = p1
            n_full = max(min(p1, self.full_rows) - p0, 0)
            sel, wts = [idx[:n_full]], [np.ones(n_full)]
            lo = max(p0, self.full_rows)
            if p1 > lo:
                # Expected count up to position p is FULL·(1 + ln(p / FULL)): the row at p is taken when that
                # passes an integer t, i.e. p = ceil(e^(t/FULL)) - 1 — computed for the few t, not every row.
                t = np.arange(
                    math.floor(self.full_rows * math.log(lo)) + 1,
                    math.floor(self.full_rows * math.log(p1)) + 1,
                )
                pos = np.ceil(np.exp(t / self.full_rows)).astype(np.int64) - 1
                # Non-decreasing in t: dropping repeats needs a neighbour comparison, not np.unique's hash.
                if len(pos) > 1:
                    pos = pos[np.concatenate(([True], pos[1:] != pos[:-1]))]
                pos = pos[(pos >= lo) & (pos < p1)]
                sel.append(idx[pos - p0])
                wts.append((pos + 1.0) / self.full_rows)
            takes.append(np.concatenate(sel))
            weights.append(np.concatenate(wts))
        if not takes:
            return np.zeros(0, np.intp), np.zeros(0)
        take = np.concatenate(takes)
        order = np.argsort(take, kind="stable")
        return take[order], np.concatenate(weights)[order]

    def add(
        self,
        est: ErrorEstimator,
        X: np.ndarray,
        local: np.ndarray | None,
        glob: np.ndarray,
        weights: np.ndarray | None = None,
    ) -> None:
        """Queue estimated rows (X already reduced to the sampled rows; `local` the sampled rows' windows). The
        nannies run when BUFFER_ROWS rows wait, or before a window is read: scikit-learn's per-tree cost is
        per call, so fewer, larger calls are cheaper."""
        w = np.ones(len(X)) if weights is None else weights
        self._ensure(int(glob.max()) + 1)
        rows_window = np.full(len(X), int(glob[0]), np.intp) if local is None else np.asarray(glob)[local]
        self._pending.append((X, rows_window, w, self._number(rows_window)))
        self._pending_rows += len(X)
        if self._pending_rows >= BUFFER_ROWS:
            self.flush(est)

    def _number(self, rows_window: np.ndarray) -> np.ndarray:
        """Each queued row's number among its window's queued rows, in stream order: the second thinning's
        draw, so it depends on positions only (never on values, nor on how the stream was chunked)."""
        order = np.argsort(rows_window, kind="stable")
        by_window = rows_window[order]
        rank = np.arange(len(order)) - np.searchsorted(by_window, by_window, side="left")
        k = np.empty(len(order), dtype=np.int64)
        k[order] = self.taken[by_window] + rank + 1
        self.taken += np.bincount(rows_window, minlength=len(self.taken))[: len(self.taken)]
        return k

    def _thin(self, g: np.ndarray, w: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows kept, their weights) after the second thinning (see THIN_LEVEL): inclusion probability
        w / level, weight raised to the level; rows weighted above the level stay as they are."""
        level = np.maximum(THIN_LEVEL * self.seen[g] / self.full_rows, 1.0)
        q = np.minimum(w / level, 1.0)
        keep = np.flatnonzero((k * _PHI) % 1.0 < q)
        return keep, w[keep] / q[keep]

    def flush(self, est: ErrorEstimator) -> None:
        if not self._pending:
            return
        X = np.concatenate([p[0] for p in self._pending])
        g = np.concatenate([p[1] for p in self._pending])
        keep, w = self._thin(
            g, np.concatenate([p[2] for p in self._pending]), np.concatenate([p[3] for p in self._pending])
        )
        X, g = X[keep], g[keep]
        self._pending, self._pending_rows = [], 0
        pred = X[:, -1]
        ok = np.isfinite(pred)
        if not ok.all():
            X, pred, g, w = X[ok], pred[ok], g[ok], w[ok]
        if len(pred) == 0:
            return
        losses = est.predict_loss(X)
        a = losses["abs"].mean(axis=0)
        extra = w * (w - 1.0)
        values = {
            "w": w,
            "abs0": w * losses["abs"][0],
            "abs1": w * losses["abs"][1],
            "sq0": w * losses["sq"][0],
            "sq1": w * losses["sq"][1],
            "pred": w * np.abs(pred),
            "v0": extra,
            "v1": extra * a,
            "v2": extra * a * a,
            "u": w * est.unsupported(X),
        }
        size = len(self.seen)
        for k, v in values.items():
            self.sums[k] += np.bincount(g, weights=v, minlength=size)[:size]

    def update(
        self,
        est: ErrorEstimator,
        batch: pa.RecordBatch | pa.Table,
        prediction: np.ndarray,
        local: Any,
        glob: Any,
    ) -> None:
        """One chunk of the monitor's stream: sample, build the nanny's input for the sampled rows, add."""
        take, w = self.sample(len(prediction), local, glob)
        if len(take) == 0:
            return
        part = batch.take(pa.array(take)) if len(take) < len(prediction) else batch
        X = est.design(est.columns_from_batch(part), prediction[take])
        self.add(est, X, None if local is None else local[take], glob, w)

    def window(self, est: ErrorEstimator, rows: Any) -> dict[str, Any]:
        """The estimate of the windows `rows` (an index, or an array of them: the overall window)."""
        self.flush(est)
        s = {k: float(np.sum(v[rows])) if len(v) else 0.0 for k, v in self.sums.items()}
        n = float(np.sum(self.seen[rows])) if len(self.seen) else 0.0
        wsum = s["w"]
        ref = dict(est.reference)
        if wsum <= 0:
            return {"count": 0, "mae": None, "rmse": None, "reference": ref}
        a0, a1 = s["abs0"] / wsum, s["abs1"] / wsum
        q0, q1 = s["sq0"] / wsum, s["sq1"] / wsum
        mae, mse = (a0 + a1) / 2, (q0 + q1) / 2
        # The realized MAE of n rows varies by sd(|e|)/sqrt(n); the nannies disagree by |a0 - a1| (model error);
        # a subsampled window adds the error of estimating its mean from a sample.
        var_abs = max(mse - mae * mae, 0.0)
        sub = max(s["v2"] - 2 * mae * s["v1"] + mae * mae * s["v0"], 0.0) / (wsum * wsum)
        mae_se = math.sqrt(var_abs / n + ((a0 - a1) / 2) ** 2 + sub)
        rel_sub = sub / (mae * mae) if mae > 0 else 0.0
        mse_se = math.sqrt((est.sq_cv * mse) ** 2 / n + ((q0 - q1) / 2) ** 2 + rel_sub * mse * mse)
        return {
            "count": int(n),
            "mae": mae,
            "mae_low": max(mae - Z * mae_se, 0.0),
            "mae_high": mae + Z * mae_se,
            "rmse": math.sqrt(mse),
            "rmse_low": math.sqrt(max(mse - Z * mse_se, 0.0)),
            "rmse_high": math.sqrt(mse + Z * mse_se),
            "mean_prediction": s["pred"] / wsum,
            "unsupported_share": s["u"] / wsum,
            "reference": ref,
        }


def relative_error(estimate: dict[str, Any] | Any, bound: str = "mae") -> float | None:
    """Estimated MAE (or a bound of it) over the window's mean prediction, against the same ratio on the
    holdout: a scale-free rise, so demand levels moving with the seasons do not read as a loss of accuracy."""
    get = estimate.get if isinstance(estimate, dict) else lambda k: getattr(estimate, k, None)
    value, mean_pred, ref = get(bound), get("mean_prediction"), get("reference") or {}
    ref_mae, ref_pred = ref.get("estimated_mae"), ref.get("mean_prediction")
    if value is None or not mean_pred or not ref_mae or not ref_pred:
        return None
    return float((value / mean_pred) / (ref_mae / ref_pred) - 1.0)
