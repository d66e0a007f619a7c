"""Multivariate drift: a change in the joint distribution of the numeric features that no single column shows
(two features that moved together now move apart), measured as PCA reconstruction error.

Why PCA reconstruction error and not a domain classifier's AUC: the PCA is fitted once (at training time, like
the reference profile) and stored as a few numbers (means, scales, k components), and a window then needs one
streamed pass with a matrix product per chunk and three sums per window, which merge by addition like the
histograms. A domain classifier needs reference rows at monitoring time (not just a profile), a model fitted per
window, and cross-validation to read an AUC: minutes at a million rows and nothing to merge. NannyML uses the
same PCA idea ("data reconstruction", https://github.com/NannyML/nannyml/blob/main/docs/how_it_works/
multivariate_drift.rst); as there, the components kept explain 65 % of the variance.

Reference level: the PCA is fitted on half of the reference rows and its error measured on the other half (error
on the rows it was fitted on would be optimistic). Alarm: a window's mean error rises above the reference by at
least `MIN_RISE` (10 %: the same "effect size first" rule as the distance thresholds, so a slow seasonal drift of
correlations does not alarm) *and* by more than Z_ALARM standard errors of a window of its size (4: about 3 in
100,000 undrifted windows one-sided), so small windows do not alarm on noise.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

MULTIVARIATE_FILE = "multivariate.json"
FORMAT = "amlops.multivariate_pca"
VARIANCE = 0.65
MIN_RISE = 0.10
Z_ALARM = 4.0
MIN_ROWS = 100


class MultivariateError(ValueError):
    """The PCA cannot be fitted or read; one line."""


@dataclass
class PCADrift:
    numeric: list[str]
    mean: list[float]
    scale: list[float]
    components: list[list[float]]  # k x d, orthonormal rows
    reference_error: float  # mean per-row reconstruction error on held-out reference rows
    reference_sd: float  # their standard deviation
    rows: int

    def errors(self, Z: np.ndarray) -> np.ndarray:
        """Per-row reconstruction error of standardized rows (n x d; missing values sit at the mean)."""
        return self.column_errors([Z[:, j] for j in range(Z.shape[1])])

    def column_errors(self, cols: list[np.ndarray]) -> np.ndarray:
        """The same from standardized columns. The components are orthonormal, so the squared residual is
        |z|² - Σ score²: k + d vector passes, no reconstruction. Vector operations instead of a matrix product:
        with d and k this small, BLAS's threads cost more than the arithmetic (10x here under load)."""
        cols = [np.where(np.isfinite(c), c, 0.0) for c in cols]
        total = np.zeros(len(cols[0]))
        for c in cols:
            total += c * c
        for comp in np.asarray(self.components):
            score = np.zeros(len(cols[0]))
            for weight, c in zip(comp, cols, strict=True):
                score += weight * c
            total -= score * score
        return np.sqrt(np.maximum(total, 0.0))

    def standardize(self, columns: dict[str, np.ndarray], n: int) -> list[np.ndarray]:
        return [
            (columns[name] - self.mean[j]) / self.scale[j] if name in columns else np.zeros(n)
            for j, name in enumerate(self.numeric)
        ]

    def threshold(self, n: int) -> float:
        return self.reference_error + max(
            MIN_RISE * self.reference_error, Z_ALARM * self.reference_sd / math.sqrt(n)
        )

    def judge(self, total: float, n: int, effective: float | None = None) -> dict[str, Any]:
        """The window's verdict from its error total over n rows; `effective`: the sample size the mean rests on
        (a thinned window), for the noise allowance."""
        if n <= 0:
            return {
                "value": None,
                "reference": self.reference_error,
                "threshold": None,
                "exceeded": False,
                "count": 0,
            }
        value = total / n
        limit = self.threshold(max(int(effective if effective is not None else n), 1))
        return {
            "value": value,
            "reference": self.reference_error,
            "threshold": limit,
            "exceeded": bool(value > limit),
            "count": int(n),
        }

    def save(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, **asdict(self)}
        (Path(folder) / MULTIVARIATE_FILE).write_text(json.dumps(data) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str) -> PCADrift | None:
        from amlops import storage

        path = folder.rstrip("/") + "/" + MULTIVARIATE_FILE
        if not storage.exists(path):
            return None
        with storage.open_file(path) as fh:
            data = json.loads(fh.read())
        if data.pop("format", None) != FORMAT:
            raise MultivariateError(f"{path}: not an amlops multivariate PCA")
        return cls(**data)


def fit_pca(df: pd.DataFrame, numeric: list[str], seed: int = 0) -> PCADrift:
    """Fit on half of the reference rows, measure the reference error on the other half."""
    cols = [c for c in numeric if c in df]
    if len(cols) < 2:
        raise MultivariateError("multivariate drift needs at least two numeric features")
    X = np.column_stack([pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64) for c in cols])
    if len(X) < 2 * MIN_ROWS:
        raise MultivariateError(
            f"multivariate drift needs at least {2 * MIN_ROWS} reference rows, got {len(X)}"
        )
    mean = np.nanmean(X, axis=0)
    scale = np.nanstd(X, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = np.where(np.isfinite(X), (X - mean) / scale, 0.0)
    half = np.random.default_rng(seed).permutation(len(Z)) % 2 == 0
    _, s, vt = np.linalg.svd(Z[half] - Z[half].mean(axis=0), full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    k = min(int(np.searchsorted(share, VARIANCE)) + 1, len(cols) - 1)
    pca = PCADrift(
        numeric=cols,
        mean=[float(v) for v in mean],
        scale=[float(v) for v in scale],
        components=vt[:k].tolist(),
        reference_error=0.0,
        reference_sd=0.0,
        rows=int((~half).sum()),
    )
    err = pca.errors(Z[~half])
    pca.reference_error = float(err.mean())
    pca.reference_sd = float(err.std())
    return pca


# Per window, rows scored one by one before thinning (the estimator's first rule; the PCA scores rows as they
# stream, so not its second). The thinned mean rests on ~2x this many rows' worth (its effective size, 8k): there
# the noise allowance Z_ALARM * sd / sqrt(8k) is ~4 % of the reference error, under MIN_RISE (10 %), so a large
# window's verdict is the one every row would give, at 17k rows scored per 100k-row window instead of 29k.
SAMPLE_FULL_ROWS = 4096


class MultivariateSums:
    """Per-window weighted sums of the reconstruction error (mergeable by addition). A large window is scored
    on a position-thinned sample (amlops.drift.estimate's rule, with more rows: a PCA row is cheap), weighted
    back; its effective size decides how much rise is noise."""

    def __init__(self) -> None:
        from amlops.drift.estimate import EstimateSums

        self.sampler = EstimateSums(full_rows=SAMPLE_FULL_ROWS)
        self.sums = {k: np.zeros(0) for k in ("w", "we", "ww")}

    def update(self, pca: PCADrift, batch: pa.RecordBatch | pa.Table, local: Any, glob: np.ndarray) -> None:
        from amlops.drift.profile import numeric_values

        take, w = self.sampler.sample(batch.num_rows, local, glob)
        need = len(self.sampler.seen)
        if len(self.sums["w"]) < need:
            for k in self.sums:
                self.sums[k] = np.concatenate([self.sums[k], np.zeros(need - len(self.sums[k]))])
        if len(take) == 0:
            return
        names = set(batch.schema.names)
        # Only the sampled rows are converted (a thinned window reads a fraction of each column).
        index = pa.array(take) if len(take) < batch.num_rows else None
        columns = {
            c: numeric_values(batch.column(c) if index is None else batch.column(c).take(index))[0]
            for c in pca.numeric
            if c in names
        }
        err = pca.column_errors(pca.standardize(columns, len(take)))
        g = np.full(len(take), int(glob[0]), np.intp) if local is None else np.asarray(glob)[local[take]]
        for k, v in (("w", w), ("we", w * err), ("ww", w * w)):
            self.sums[k] += np.bincount(g, weights=v, minlength=need)[:need]

    def window(self, pca: PCADrift, rows: Any) -> dict[str, Any]:
        if not len(self.sums["w"]):
            return pca.judge(0.0, 0)
        w, we, ww = (float(np.sum(self.sums[k][rows])) for k in ("w", "we", "ww"))
        count = int(np.sum(self.sampler.seen[rows]))
        if w <= 0:
            return pca.judge(0.0, 0)
        out = pca.judge(we / w * count, count, effective=w * w / ww)
        return out
