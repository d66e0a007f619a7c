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
  trees are walked once per row. A window is estimated from a bottom-k sample of its distinct rows chosen by a
  hash of their content (K_ESTIMATE), so the estimate streams, and its samples merge in any order, like the
  reference profile's histograms (the map-reduce monitor).

The fitted estimator is stored in the model folder beside reference_profile.json: `error_estimator.pkl` (the
trees, pickled like the model itself: the same trust boundary as the model folder) and `error_estimator.json`
(features, category codes, calibration maps and the reference level, readable without unpickling).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import pickle
from collections.abc import Callable, Sequence
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
        table = pa.Table.from_pandas(df[[c for c in self.features if c in df]], preserve_index=False)
        acc = EstimateSample(self)
        acc.update(table, np.asarray(prediction, dtype=np.float64), None, np.zeros(1, np.intp))
        return acc.window(0)

    # -- storage ------------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The stored description (error_estimator.json): what tells two estimators apart without the trees."""
        return {
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

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = self.describe()
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


# ---------------------------------------------------------------------------------------------- sampling
# A window's estimate rests on a *bottom-k sample*: every row gets a 64-bit hash of the columns the metric reads,
# and a window keeps the K distinct hashes that are smallest, each with the number of rows that carry it (rows with
# equal content share a hash: one entry, counted) and the per-entry numbers its metric needs (never the row).
# Why not "the first rows, then thinned by position" (what this was): a map step over a mini-batch does not know
# its rows' positions in a window. The hash is a function of a row's content alone, so the sample does not depend on
# the order or the partition of the stream: a hash among the K smallest of a window is among the K smallest of
# every part of it, with every row carrying it counted there, so the K smallest of the union of two partials' samples
# are the window's, with their counts (the same argument as a KMV distinct-count sketch). The K distinct hashes are
# a uniform sample without replacement of the window's distinct rows (a good hash is a random permutation), and
# the estimate is the count-weighted mean over it (a ratio estimator; exact when the window has at most K distinct
# rows). Cost: a row's hash is a few vector passes per column; the nannies run only for entries still among the K
# smallest when the buffer is evaluated, ~K per window, instead of ~K * (1 + ln(n / K)) rows that ever entered.
# K_ESTIMATE: the nannies walk ~K rows per window (~4 us a row here: 10 windows cost ~80 ms), and a sampled
# window's mean carries the subsampling error of ~K rows (in the interval). The estimator's own error on shifted
# windows reaches ~8 % on every row (bench/estimate_bench.py, a +1.5 sd shift), which leaves ~2 % for sampling
# under issue 18's 10 %: K = 2048 takes 41 % of a 5,000-row window (~1.2 % error). A window of at most K distinct
# rows is estimated whole: the demo's weekly windows (~700-1,400 rows) are.
K_ESTIMATE = 2048
# K_MULTIVARIATE: a PCA row costs little, but a sampled window's mean rests on ~K rows, and the noise allowance
# Z_ALARM * sd / sqrt(K) (~8 % of the reference error at K = 2048) must stay under MIN_RISE (10 %) for a large
# window's verdict to be the one every row would give. Both sizes also set a partial's size (16-56 bytes a row).
K_MULTIVARIATE = 2048
BUFFER_ROWS = 65_536  # entries awaiting the nannies before they run (fewer, larger calls are cheaper)
PREDICTION_KEY = "\x00prediction"  # the prediction's name in the row hash (no column can be called that)
_NO_LIMIT = np.uint64(2**64 - 1)
_M1 = np.uint64(0xFF51AFD7ED558CCD)  # MurmurHash3's fmix64 constants
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT_33 = np.uint64(33)
_MEMO_LIMIT = 200_000  # distinct category strings remembered per column (their hashes)


def _key(name: str, kind: bytes) -> int:
    """A column's own odd multiplier (blake2b of its name): columns are told apart by name, not position."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8, person=kind).digest()
    return int.from_bytes(digest, "little") | 1


def _fmix(h: np.ndarray, scratch: np.ndarray) -> None:
    """MurmurHash3's 64-bit finalizer, in place: every input bit reaches every output bit."""
    for mult in (_M1, _M2, None):
        np.right_shift(h, _SHIFT_33, out=scratch)
        h ^= scratch
        if mult is not None:
            h *= mult


class RowHasher:
    """64-bit hashes of rows from named numeric and categorical columns, the same in every process and however the
    stream is cut: numpy integer arithmetic (exact, wrapping) on each float's bits (-0.0 as 0.0, one NaN for every
    NaN and null) and blake2b of each category's text, found through the chunk's dictionary (a category is its
    text, whatever its index in a chunk). Not Python's hash(): it is salted per process. A column's mix is a
    xorshift (the sign and exponent bits reach the low half) and a multiply by the column's own odd key; the row's
    hash is MurmurHash3's finalizer of the columns' sum (addition modulo 2^64: exact, so no order of the columns
    can matter). Distinct keys keep structured changes from cancelling: a sign flip in two columns moves the sum
    by 2^30 * (+-key_a +- key_b) + 2^64, never 0. Computed in blocks of BLOCK_ROWS rows, whose scratch arrays stay
    in the CPU's cache (2x faster than whole-chunk passes here)."""

    BLOCK_ROWS = 16_384

    def __init__(self, numeric: Sequence[str], categorical: Sequence[str]) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self._num_keys = {c: np.uint64(_key(c, b"amlops.num")) for c in self.numeric}
        self._cat_keys = {c: _key(c, b"amlops.cat").to_bytes(8, "little") for c in self.categorical}
        self._memo: dict[str, dict[str | None, int]] = {c: {} for c in self.categorical}
        self._float = np.empty(self.BLOCK_ROWS)
        self._nan = np.empty(self.BLOCK_ROWS, dtype=bool)
        self._scratch = np.empty(self.BLOCK_ROWS, dtype=np.uint64)
        self._out = np.empty(0, dtype=np.uint64)
        # A column absent from the data: the mix of a missing value (NaN), as a column of nulls would give.
        self._absent = {c: self._mix_block(np.full(1, np.nan), k, 1)[0] for c, k in self._num_keys.items()}

    def hashes(self, n: int, numeric: dict[str, np.ndarray], categorical: dict[str, Any]) -> np.ndarray:
        """Per row: `numeric` float64 arrays (NaN for nulls), `categorical` Arrow arrays; an absent column hashes
        as all nulls (the same as a column of nulls, so a file without it hashes as the dataset's null fill).
        The result is this hasher's buffer, overwritten by the next call (callers copy what they keep)."""
        if len(self._out) < n:
            self._out = np.empty(n, dtype=np.uint64)  # reused: a fresh 2 MB array costs its page faults
        out = self._out[:n]
        constant = np.uint64(0)
        cats = []
        # Sums modulo 2**64, as the block sums below: numpy warns on a scalar's wrap-around (not an array's), which
        # a map step lacking a column printed to its log as "RuntimeWarning: overflow encountered".
        with np.errstate(over="ignore"):
            for name in self.numeric:
                if numeric.get(name) is None:
                    constant += self._absent[name]
            for name in self.categorical:
                column = categorical.get(name)
                if column is None:
                    constant += self._null(name)
                else:
                    cats.append(self._category_codes(name, column))
        present = [(numeric[c], self._num_keys[c]) for c in self.numeric if numeric.get(c) is not None]
        for lo in range(0, n, self.BLOCK_ROWS):
            m = min(self.BLOCK_ROWS, n - lo)
            h = out[lo : lo + m]
            h.fill(constant)
            for values, key in present:
                h += self._mix_block(values[lo : lo + m], key, m)
            gathered = self._scratch[:m]
            for codes, index in cats:  # each category's hash, by its index in the chunk's dictionary
                np.take(codes, index[lo : lo + m], mode="clip", out=gathered)
                h += gathered
            _fmix(h, self._scratch[:m])
        return out

    def _mix_block(self, values: np.ndarray, key: np.uint64, m: int) -> np.ndarray:
        """One column's mix for a block (the scratch's view: use it before the next call)."""
        x = self._float[:m]
        np.add(values, 0.0, out=x)  # a copy, with -0.0 as 0.0 (equal values, equal bits)
        nan = self._nan[:m]
        np.isnan(x, out=nan)
        if nan.any():
            x[nan] = (
                np.nan
            )  # one NaN bit pattern (a null and a NaN of any payload are the same missing value)
        u = x.view(np.uint64)
        scratch = self._scratch[:m]
        np.right_shift(u, _SHIFT_33, out=scratch)
        u ^= scratch
        u *= key
        return u

    def _string_hash(self, name: str, value: str | None) -> int:
        memo = self._memo[name]
        got = memo.get(value)
        if got is None:
            text = b"\x00" if value is None else b"\x01" + value.encode("utf-8")
            got = int.from_bytes(
                hashlib.blake2b(text, digest_size=8, key=self._cat_keys[name]).digest(), "little"
            )
            if len(memo) >= _MEMO_LIMIT:
                memo.clear()
            memo[value] = got
        return got

    def _null(self, name: str) -> np.uint64:
        return np.uint64(self._string_hash(name, None))

    def _category_codes(self, name: str, column: Any) -> tuple[np.ndarray, np.ndarray]:
        """(hash of each dictionary value and, last, of null; each row's index into it) for a column."""
        from amlops.drift.profile import arrow_numpy

        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        codes: list[np.ndarray] = []
        indices: list[np.ndarray] = []
        base = 0
        for arr in chunks:
            if not pa.types.is_dictionary(arr.type):
                arr = pc.dictionary_encode(arr)
            dictionary = arr.dictionary
            if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
                dictionary = pc.cast(dictionary, pa.string())  # as columns_from_batch compares them: as text
            values = [*dictionary.to_pylist(), None]
            codes.append(np.array([self._string_hash(name, v) for v in values], dtype=np.uint64))
            index = arrow_numpy(arr.indices, fill=len(values) - 1)
            indices.append(index + base if base else index)
            base += len(values)
        if len(codes) == 1:
            return codes[0], indices[0]
        return np.concatenate(codes), np.concatenate([i.astype(np.int64) for i in indices])


class BottomK:
    """Per window: the k smallest distinct row hashes (ascending), each with its row count and its values (NaN
    until evaluated); `rows` met and `population` (the rows the sample stands for) per window. Entries enter by
    `offer` (hashes only: the caller computes the inputs of the new entries alone) and are evaluated in batches
    by `flush`; `union` merges another sample's entries of a window (a partial's)."""

    def __init__(self, k: int, width: int) -> None:
        self.k = k
        self.width = width
        self.hashes: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.rows = np.zeros(0, dtype=np.int64)
        self.population = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []  # (window, hashes, inputs) to evaluate
        self.pending_rows = 0

    def ensure(self, n: int) -> None:
        have = len(self.hashes)
        if have < n:
            grow = max(n, 2 * have) - have
            for _ in range(grow):
                self.hashes.append(np.zeros(0, dtype=np.uint64))
                self.counts.append(np.zeros(0, dtype=np.int64))
                self.values.append(np.zeros((0, self.width), dtype=np.float32))
            self.rows = np.concatenate([self.rows, np.zeros(grow, dtype=np.int64)])
            self.population = np.concatenate([self.population, np.zeros(grow, dtype=np.int64)])

    def limit(self, g: int) -> np.uint64:
        """The largest hash that can still enter window g (or count: a hash equal to it is its entry's)."""
        h = self.hashes[g]
        return h[-1] if len(h) >= self.k else _NO_LIMIT

    def offer(self, g: int, h: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Window g meets rows (their hashes; their numbers in the chunk, None: their positions in `h`): rows of
        hashes already kept add to their counts, smaller new hashes enter (pushing the largest out). (rows to
        compute inputs for: one per new entry, their hashes); pass the inputs to `hold`."""
        empty = (np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.uint64))
        limit = self.limit(g)
        if limit != _NO_LIMIT:
            near = np.flatnonzero(h <= limit)
            if not len(near):
                return empty
            h, rows = h[near], near if rows is None else rows[near]
        elif rows is None:
            rows = np.arange(len(h))
        if len(h) > 4 * self.k:
            # A full chunk meeting a young window: cut to the rows at or below the k-th smallest row hash when
            # they hold k distinct hashes (then no hash above it can be among the k smallest distinct).
            kth = np.partition(h, self.k - 1)[self.k - 1]
            low = np.flatnonzero(h <= kth)
            if len(np.unique(h[low])) >= self.k:
                h, rows = h[low], rows[low]
        uniq, first, count = np.unique(h, return_index=True, return_counts=True)
        kept = self.hashes[g]
        pos = np.searchsorted(kept, uniq)
        known = pos < len(kept)
        known[known] = kept[pos[known]] == uniq[known]
        if known.any():
            self.counts[g][pos[known]] += count[known]
        fresh = ~known
        if not fresh.any():
            return empty
        new_h, new_rows, new_count = uniq[fresh], rows[first[fresh]], count[fresh]
        self._install(g, new_h, new_count, np.full((len(new_h), self.width), np.nan, dtype=np.float32))
        stay = np.isin(new_h, self.hashes[g], assume_unique=True)
        return new_rows[stay], new_h[stay]

    def _install(self, g: int, h: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        """Add entries of hashes not in window g; keep the k smallest."""
        all_h = np.concatenate([self.hashes[g], h])
        order = np.argsort(all_h, kind="stable")[: self.k]
        self.hashes[g] = all_h[order]
        self.counts[g] = np.concatenate([self.counts[g], c])[order]
        self.values[g] = np.concatenate([self.values[g], v])[order]

    def hold(self, parts: list[tuple[int, np.ndarray]], inputs: np.ndarray) -> None:
        """The inputs of the rows `offer` returned, for windows in the order of `parts` (window, hashes)."""
        at = 0
        for g, h in parts:
            self._pending.append((g, h, inputs[at : at + len(h)]))
            at += len(h)
        self.pending_rows += at

    def flush(self, evaluate: Callable[[np.ndarray], np.ndarray]) -> None:
        """Evaluate the held entries still in their window's sample (one call for all windows)."""
        pending, self._pending, self.pending_rows = self._pending, [], 0
        found: list[tuple[int, np.ndarray]] = []
        inputs: list[np.ndarray] = []
        for g, h, x in pending:
            kept = self.hashes[g]
            pos = np.searchsorted(kept, h)
            there = pos < len(kept)
            there[there] = kept[pos[there]] == h[there]
            if there.any():
                found.append((g, pos[there]))
                inputs.append(x[there])
        if not found:
            return
        # Kept as float32: half a partial's bytes, and the same rounding in one pass and in a merge (a row's
        # estimate rounded at 6e-8 relative is far below its sampling error).
        values = np.asarray(evaluate(np.concatenate(inputs)), dtype=np.float32).reshape(-1, self.width)
        at = 0
        for g, pos in found:
            self.values[g][pos] = values[at : at + len(pos)]
            at += len(pos)

    def union(self, g: int, h: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        """Merge evaluated entries into window g: equal hashes add their counts (their values are equal: the same
        content), then the k smallest stay."""
        all_h = np.concatenate([self.hashes[g], h])
        all_c = np.concatenate([self.counts[g], c])
        all_v = np.concatenate([self.values[g], v])
        if len(all_h) > 4 * self.k:  # as in offer: the rows at or below the k-th smallest, when k distinct
            kth = np.partition(all_h, self.k - 1)[self.k - 1]
            low = all_h <= kth
            if len(np.unique(all_h[low])) >= self.k:
                all_h, all_c, all_v = all_h[low], all_c[low], all_v[low]
        uniq, first, inverse = np.unique(all_h, return_index=True, return_inverse=True)
        counts = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(counts, inverse, all_c)
        self.hashes[g] = uniq[: self.k]
        self.counts[g] = counts[: self.k]
        self.values[g] = all_v[first[: self.k]]

    # -- what a window's estimate needs -------------------------------------------------------------------
    def complete(self, g: int) -> bool:
        """Every distinct row of the window is in the sample (fewer than k ever met)."""
        return len(self.hashes[g]) < self.k

    def fraction(self, g: int) -> float:
        """The sampled share of the window's distinct rows: 1 when complete, else k over the number of distinct
        rows estimated from the k-th smallest hash ((k - 1) / its quantile: the KMV estimate, unbiased)."""
        if self.complete(g):
            return 1.0
        quantile = (float(self.hashes[g][-1]) + 1.0) / 2.0**64
        return min(1.0, self.k * quantile / (self.k - 1))

    def mean(self, g: int, column: np.ndarray) -> float:
        """Count-weighted mean of per-entry values. math.fsum: the correctly rounded sum, whatever the order."""
        c = self.counts[g]
        return math.fsum((c * column.astype(np.float64)).tolist()) / math.fsum(c.tolist())

    def subsampling_variance(self, g: int, column: np.ndarray) -> float:
        """Variance of the count-weighted mean of `column` from sampling k of the window's distinct rows (a ratio
        estimator over a simple random sample without replacement, with the finite-population correction): 0
        when the sample is the window."""
        f = self.fraction(g)
        m = len(column)
        if f >= 1.0 or m < 2:
            return 0.0
        c = self.counts[g].astype(np.float64)
        total = math.fsum(c.tolist())
        resid = c * (column.astype(np.float64) - self.mean(g, column))
        return (1.0 - f) * m / (m - 1) * math.fsum((resid * resid).tolist()) / (total * total)

    def effective_rows(self, g: int) -> float:
        """Rows' worth of evidence in the window's mean: its rows when complete; otherwise the sample's size in
        rows (Kish: (sum of counts)^2 / sum of squared counts) diluted by the share not sampled."""
        n = float(self.population[g])
        if n <= 0:
            return 0.0
        f = self.fraction(g)
        c = self.counts[g].astype(np.float64)
        kish = math.fsum(c.tolist()) ** 2 / math.fsum((c * c).tolist()) if len(c) else 0.0
        if f >= 1.0 or kish <= 0:
            return n
        return 1.0 / (1.0 / n + (1.0 - f) / kish)

    # -- partials --------------------------------------------------------------------------------------------
    def arrays(self, n: int) -> dict[str, np.ndarray]:
        """The first n windows' state as flat arrays (window-major), for a partial; evaluate first."""
        self.ensure(n)
        return {
            "rows": self.rows[:n].copy(),
            "population": self.population[:n].copy(),
            "sizes": np.array([len(self.hashes[g]) for g in range(n)], dtype=np.int64),
            "hashes": np.concatenate(self.hashes[:n]) if n else np.zeros(0, np.uint64),
            "counts": np.concatenate(self.counts[:n]) if n else np.zeros(0, np.int64),
            "values": np.concatenate(self.values[:n]) if n else np.zeros((0, self.width), dtype=np.float32),
        }

    def absorb(self, parts: Sequence[tuple[dict[str, np.ndarray], np.ndarray]], n: int) -> None:
        """Add partials' arrays (each with the global window of its windows): rows and populations add, samples
        unite (`union`): any order and any grouping keep the same entries with the same counts."""
        self.ensure(n)
        by_window: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        for arrays, glob in parts:
            glob = np.asarray(glob, dtype=np.intp)
            np.add.at(self.rows, glob, arrays["rows"])
            np.add.at(self.population, glob, arrays["population"])
            bounds = np.concatenate([[0], np.cumsum(arrays["sizes"])])
            values = arrays["values"].reshape(-1, self.width)
            for j in np.flatnonzero(arrays["sizes"]):
                lo, hi = bounds[j], bounds[j + 1]
                by_window.setdefault(int(glob[j]), []).append(
                    (arrays["hashes"][lo:hi], arrays["counts"][lo:hi], values[lo:hi])
                )
        for g, entries in by_window.items():
            # United a few thousand entries at a time: each union sorts at most ~UNION_ROWS + k entries, however
            # many partials hold the window (1,000 partials of one window: 1,000 k entries).
            pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
            size = 0
            for e in entries:
                pending.append(e)
                size += len(e[0])
                if size >= UNION_ROWS:
                    self._unite(g, pending)
                    pending, size = [], 0
            if pending:
                self._unite(g, pending)

    def _unite(self, g: int, entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self.union(
            g,
            np.concatenate([e[0] for e in entries]),
            np.concatenate([e[1] for e in entries]),
            np.concatenate([e[2] for e in entries]),
        )


UNION_ROWS = 16_384


def window_groups(n: int, local: np.ndarray | None, glob: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(global window, the chunk's row numbers in it) for each window a chunk touches."""
    if local is None:
        return [(int(glob[0]), np.arange(n))]
    if len(glob) <= 64:
        return [(int(g), np.flatnonzero(local == j)) for j, g in enumerate(glob)]
    # Many windows in one chunk (daily windows over years): one sort instead of a pass per window.
    order = np.argsort(local, kind="stable")
    bounds = np.searchsorted(local[order], np.arange(len(glob) + 1))
    return [(int(g), order[bounds[j] : bounds[j + 1]]) for j, g in enumerate(glob)]


def offer_chunk(
    s: BottomK, h: np.ndarray, eligible: np.ndarray | None, local: np.ndarray | None, glob: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """A chunk's rows offered to their windows' samples (`eligible`: the rows a sample may hold, None: all); rows
    are counted per window. (the rows whose inputs the new entries need, [(window, their hashes)])."""
    take: list[np.ndarray] = []
    parts: list[tuple[int, np.ndarray]] = []
    n = len(h)
    if local is None and eligible is None:  # the common case: one window, every row: no gathers
        g = int(glob[0])
        s.rows[g] += n
        s.population[g] += n
        rows, hashes = s.offer(g, h)
        return rows, [(g, hashes)] if len(rows) else []
    for g, idx in window_groups(n, local, glob):
        s.rows[g] += len(idx)
        if eligible is not None:
            idx = idx[eligible[idx]]
        s.population[g] += len(idx)
        rows, hashes = s.offer(g, h[idx], idx)
        if len(rows):
            take.append(rows)
            parts.append((g, hashes))
    return (np.concatenate(take) if take else np.zeros(0, dtype=np.intp)), parts


class ChunkHashes:
    """The row hash of each chunk, computed once for all of a monitor's extras (the estimate and the multivariate
    metric): over the union of their columns, so it is the same function whichever extra computes it first (or
    alone: a batch without the prediction column skips the estimate, and the hash is still the same)."""

    def __init__(self, numeric: Sequence[str], categorical: Sequence[str]) -> None:
        self.hasher = RowHasher(list(dict.fromkeys(numeric)), list(dict.fromkeys(categorical)))
        self._batch: Any = None
        self._hashes = np.zeros(0, dtype=np.uint64)

    def of(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        if batch is not self._batch:
            from amlops.drift.profile import numeric_values

            names = set(batch.schema.names)
            numeric = {c: numeric_values(batch.column(c))[0] for c in self.hasher.numeric if c in names}
            categorical = {c: batch.column(c) for c in self.hasher.categorical if c in names}
            self._hashes = self.hasher.hashes(batch.num_rows, numeric, categorical)
            self._batch = batch
        return self._hashes


def window_list(rows: Any, n: int) -> list[int]:
    """A window index, a slice or an array of them (the overall window) as a list of windows below n."""
    if isinstance(rows, int | np.integer):
        return [int(rows)] if int(rows) < n else []
    if isinstance(rows, slice):
        return list(range(n))[rows]
    return [int(i) for i in np.asarray(rows).ravel() if int(i) < n]


# Values kept per sampled entry of the estimate: each fold nanny's calibrated |e| and e², |prediction|, and
# whether the row lies outside what the nannies saw.
ESTIMATE_VALUES = ("abs0", "abs1", "sq0", "sq1", "pred", "unsupported")


class EstimateSample:
    """The estimate's per-window bottom-k samples (see K_ESTIMATE); windows grow as the monitor meets them."""

    def __init__(self, est: ErrorEstimator, k: int | None = None) -> None:
        self.est = est
        self.sample = BottomK(K_ESTIMATE if k is None else k, len(ESTIMATE_VALUES))
        self.hasher = RowHasher([*est.numeric, PREDICTION_KEY], est.categorical)

    def identity(self) -> dict[str, Any]:
        """What partials must share to be merged: the estimator (its stored description) and k."""
        return {"k": self.sample.k, "estimator": self.est.describe()}

    def update(
        self,
        batch: pa.RecordBatch | pa.Table,
        prediction: np.ndarray,
        local: Any,
        glob: Any,
        hashes: np.ndarray | None = None,
    ) -> None:
        """One chunk of the monitor's stream: hash its rows (or take the monitor's `hashes`, ChunkHashes), let
        each window's sample take what it keeps, build the nannies' input for the entries that entered (only
        those)."""
        n = len(prediction)
        glob = np.asarray(glob)
        s = self.sample
        s.ensure(int(glob.max()) + 1)
        h = self._hash(batch, prediction) if hashes is None else hashes
        scored = np.isfinite(prediction)  # a row without a prediction has no error to estimate
        rows, parts = offer_chunk(s, h, None if scored.all() else scored, local, glob)
        if not parts:
            return
        # `rows` are in the order of `parts` (by hash within a window), not the chunk's.
        identity = len(rows) == n and bool((rows == np.arange(n)).all())
        part = batch if identity else batch.take(pa.array(rows))
        s.hold(parts, self.est.design(self.est.columns_from_batch(part), prediction[rows]))
        if s.pending_rows >= BUFFER_ROWS:
            self.flush()

    def _hash(self, batch: pa.RecordBatch | pa.Table, prediction: np.ndarray) -> np.ndarray:
        from amlops.drift.profile import numeric_values

        names = set(batch.schema.names)
        numeric = {c: numeric_values(batch.column(c))[0] for c in self.est.numeric if c in names}
        numeric[PREDICTION_KEY] = prediction
        categorical = {c: batch.column(c) for c in self.est.categorical if c in names}
        return self.hasher.hashes(len(prediction), numeric, categorical)

    def flush(self) -> None:
        self.sample.flush(self._evaluate)

    def _evaluate(self, X: np.ndarray) -> np.ndarray:
        losses = self.est.predict_loss(X)
        return np.column_stack(
            [
                losses["abs"][0],
                losses["abs"][1],
                losses["sq"][0],
                losses["sq"][1],
                np.abs(X[:, -1]),
                self.est.unsupported(X).astype(np.float64),
            ]
        )

    def window(self, rows: Any) -> dict[str, Any]:
        """The estimate of the windows `rows` (an index, or an array of them: the overall window). Several
        windows: each window's mean weighted by its rows (a stratified mean), combined with math.fsum, so the
        windows' order (which differs between a merge and one pass) cannot change a bit."""
        self.flush()
        s = self.sample
        ref = dict(self.est.reference)
        windows = window_list(rows, len(s.hashes))
        # The rows the estimate stands for: those with a prediction (a row without one has no error to estimate,
        # and a file without the column never reaches the sample on the map-reduce path), not every row met.
        count = int(sum(int(s.population[g]) for g in windows))
        used = [g for g in windows if len(s.hashes[g]) and s.population[g] > 0]
        total = float(sum(int(s.population[g]) for g in used))
        if not used or total <= 0:
            return {"count": 0, "mae": None, "rmse": None, "reference": ref}
        means: list[list[float]] = [[] for _ in ESTIMATE_VALUES]
        sub: list[float] = []
        for g in used:
            share = float(s.population[g]) / total
            v = s.values[g].astype(np.float64)
            for j in range(len(ESTIMATE_VALUES)):
                means[j].append(share * s.mean(g, v[:, j]))
            sub.append(share * share * s.subsampling_variance(g, (v[:, 0] + v[:, 1]) / 2))
        a0, a1, q0, q1, pred, unsupported = (math.fsum(m) for m in means)
        mae, mse = (a0 + a1) / 2, (q0 + q1) / 2
        # The realized MAE of n rows varies by sd(|e|)/sqrt(n); the nannies disagree by |a0 - a1| (model error);
        # a sampled window adds the error of estimating its mean from k of its distinct rows.
        subsampling = math.fsum(sub)
        var_abs = max(mse - mae * mae, 0.0)
        n = float(count)
        mae_se = math.sqrt(var_abs / n + ((a0 - a1) / 2) ** 2 + subsampling)
        rel_sub = subsampling / (mae * mae) if mae > 0 else 0.0
        mse_se = math.sqrt((self.est.sq_cv * mse) ** 2 / n + ((q0 - q1) / 2) ** 2 + rel_sub * mse * mse)
        return {
            "count": count,
            "mae": mae,
            "mae_low": max(mae - Z * mae_se, 0.0),
            "mae_high": mae + Z * mae_se,
            "rmse": math.sqrt(mse),
            "rmse_low": math.sqrt(max(mse - Z * mse_se, 0.0)),
            "rmse_high": math.sqrt(mse + Z * mse_se),
            "mean_prediction": pred,
            "unsupported_share": unsupported,
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
