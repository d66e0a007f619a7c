"""Multivariate drift: a change in the joint distribution of the numeric features that no single column shows
(two features that moved together now move apart), measured as PCA reconstruction error.

Why PCA reconstruction error and not a domain classifier's AUC: the PCA is fitted once (at training time, like
the reference profile) and stored as a few numbers (means, scales, k components), and a window then needs one
streamed pass scoring a hash-chosen sample of each window's rows, a sample that merges like the histograms
(amlops.drift.estimate.BottomK). A domain classifier needs reference rows at monitoring time (not just a
profile), a model fitted per window, and cross-validation to read an AUC: minutes at a million rows and nothing
to merge. NannyML uses the same PCA idea ("data reconstruction", https://github.com/NannyML/nannyml/blob/main/docs/how_it_works/
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
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

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

    def judge(self, value: float | None, n: int, effective: float | None = None) -> dict[str, Any]:
        """The window's verdict from its mean error over n rows; `effective`: the rows' worth of evidence the mean
        rests on (a sampled window: fewer than n), for the noise allowance."""
        if n <= 0 or value is None:
            return {
                "value": None,
                "reference": self.reference_error,
                "threshold": None,
                "exceeded": False,
                "count": 0,
            }
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
    import pandas as pd

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


class MultivariateSample:
    """Per-window bottom-k samples of the reconstruction error (amlops.drift.estimate.BottomK, K_MULTIVARIATE rows
    chosen by a hash of the numeric features: the same in one pass and in merged partials). A window's error is
    the count-weighted mean over its sample; its effective size (rows when the sample is the window) decides how
    much rise is noise."""

    def __init__(self, pca: PCADrift, k: int | None = None) -> None:
        from amlops.drift.estimate import K_MULTIVARIATE, BottomK, RowHasher

        self.pca = pca
        self.sample = BottomK(K_MULTIVARIATE if k is None else k, 1)
        self.hasher = RowHasher(pca.numeric, [])

    def identity(self) -> dict[str, Any]:
        """What partials must share to be merged: the PCA and k."""
        return {"k": self.sample.k, "pca": asdict(self.pca)}

    def update(
        self,
        batch: pa.RecordBatch | pa.Table,
        local: Any,
        glob: np.ndarray,
        hashes: np.ndarray | None = None,
    ) -> None:
        """One chunk: hash its rows (or take the monitor's `hashes`, amlops.drift.estimate.ChunkHashes), let each
        window's sample take what it keeps, score the entries that entered."""
        from amlops.drift.estimate import offer_chunk
        from amlops.drift.profile import numeric_values

        s = self.sample
        s.ensure(int(np.max(glob)) + 1)
        names = set(batch.schema.names)
        columns = {c: numeric_values(batch.column(c))[0] for c in self.pca.numeric if c in names}
        h = self.hasher.hashes(batch.num_rows, columns, {}) if hashes is None else hashes
        rows, parts = offer_chunk(s, h, None, local, np.asarray(glob))
        if not parts:
            return
        # A PCA row is cheap: the entries that entered are scored at once (only they: a fraction of the chunk).
        err = self.pca.column_errors(
            self.pca.standardize({c: v[rows] for c, v in columns.items()}, len(rows))
        )
        s.hold(parts, err.reshape(-1, 1))
        s.flush(lambda values: values)

    def window(self, rows: Any) -> dict[str, Any]:
        """Several windows (the overall one): each window's mean weighted by its rows, combined with math.fsum
        (the windows' order cannot change a bit); its effective size likewise."""
        from amlops.drift.estimate import window_list

        s = self.sample
        windows = window_list(rows, len(s.hashes))
        count = int(sum(int(s.rows[g]) for g in windows))
        used = [g for g in windows if len(s.hashes[g]) and s.population[g] > 0]
        total = float(sum(int(s.population[g]) for g in used))
        if not used or total <= 0:
            return self.pca.judge(None, 0)
        shares = [float(s.population[g]) / total for g in used]
        value = math.fsum(w * s.mean(g, s.values[g][:, 0]) for w, g in zip(shares, used, strict=True))
        spread = math.fsum(w * w / s.effective_rows(g) for w, g in zip(shares, used, strict=True))
        return self.pca.judge(value, count, effective=1.0 / spread if spread > 0 else None)
