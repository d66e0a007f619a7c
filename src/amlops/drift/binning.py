"""Fast, exact assignment of values to the bins of a reference histogram.

`np.searchsorted` over ~500 edges costs ~50 ns per value (a branchy binary search), which alone would spend the
monitor's whole time budget. Instead each feature gets a lookup table over a grid of cells: uniform in the value
("linear"), or uniform in an order-preserving integer view of the float's bits ("keys": linear within an octave,
logarithmic across octaves, so heavy tails stay resolved). The grid with less reference mass in ambiguous cells
wins. A cell that holds no edge maps straight to its bin; values in the few cells that straddle an edge go through
`searchsorted`. The result equals `np.searchsorted(edges, x, side="right")` exactly (tests check this); the grid
only changes speed.

Bin index convention: 0 = below the first edge (underflow), i in 1..B = [edges[i-1], edges[i]), B+1 = at or
above the last edge (overflow). Callers remove NaN first.
"""

from __future__ import annotations

import numpy as np

GRID_CELLS = 1 << 16
_LOW63 = np.int64(0x7FFFFFFFFFFFFFFF)


def float_keys(x: np.ndarray) -> np.ndarray:
    """Order-preserving int64 view of float64 values (NaN excluded): a < b  <=>  key(a) < key(b)."""
    b = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return b ^ ((b >> 63) & _LOW63)


def keys_to_floats(k: np.ndarray) -> np.ndarray:
    """Inverse of float_keys (the mapping is an involution on the bit pattern)."""
    k = np.ascontiguousarray(k, dtype=np.int64)
    return (k ^ ((k >> 63) & _LOW63)).view(np.float64)


class Binner:
    """Maps float64 values (no NaN) to bin indices of `edges`. Build once per feature, call per chunk."""

    def __init__(self, edges: np.ndarray, counts: np.ndarray | None = None, cells: int = GRID_CELLS) -> None:
        self.edges = np.ascontiguousarray(edges, dtype=np.float64)
        self.n_bins = max(len(self.edges) - 1, 0)
        self.mode = "search"
        self.ambiguous_mass = 1.0
        if len(self.edges) < 2 or not np.isfinite(self.edges).all():
            return
        # Reference CDF at the edges (uniform per bin if counts are unknown) to weigh ambiguous cells by mass.
        if counts is not None and len(counts) == self.n_bins and counts.sum() > 0:
            self._cdf = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)]) / float(counts.sum())
        else:
            self._cdf = np.linspace(0.0, 1.0, self.n_bins + 1)
        plans = [self._plan_linear(cells), self._plan_keys(cells)]
        mass, mode, lut, ambiguous, params = min(plans, key=lambda p: p[0])
        if mass >= 0.5:  # the grid would not save much over a plain binary search
            return
        self.mode, self._lut, self._ambiguous, self._params = mode, lut, ambiguous, params
        self.ambiguous_mass = mass

    # A plan: (share of reference bins touched by ambiguous cells, mode, lut, ambiguous mask, params).
    def _plan_linear(self, cells: int) -> tuple[float, str, np.ndarray, np.ndarray, tuple[float, ...]]:
        lo, hi = float(self.edges[0]), float(self.edges[-1])
        scale = cells / (hi - lo)
        if not np.isfinite(scale) or scale <= 0:
            return (np.inf, "linear", np.empty(0, np.int32), np.empty(0, bool), ())
        # c = (x - lo) * scale + 1: cell 0 holds x < lo, cells 1..cells the grid, cells+1 anything >= hi.
        j = np.arange(cells, dtype=np.float64)
        starts = np.concatenate([[-np.inf], lo + j / scale, [hi]])
        ends = np.concatenate([[lo], lo + (j + 1) / scale, [np.inf]])
        lut, ambiguous, _ = self._score(starts, ends)
        # Rounding in (x - lo) * scale can put a value one cell off; a cell is only trusted when its neighbours
        # map to the same bin too.
        widened = ambiguous.copy()
        widened[1:] |= ambiguous[:-1] | (lut[1:] != lut[:-1])
        widened[:-1] |= ambiguous[1:] | (lut[1:] != lut[:-1])
        return (self._mass(starts, ends, widened), "linear", lut, widened, (lo, scale, float(cells + 1)))

    def _plan_keys(self, cells: int) -> tuple[float, str, np.ndarray, np.ndarray, tuple[float, ...]]:
        # Magnitudes far below the smallest non-zero edge would waste most cells on empty octaves near zero:
        # the keys of (-tiny, tiny) are squeezed to 0 (monotone, so ambiguity is still detected exactly).
        nonzero = np.abs(self.edges[self.edges != 0])
        squeeze = int(float_keys(np.array([nonzero.min() / 1024.0]))[0]) if nonzero.size else 0
        kmin = _squeeze_int(int(float_keys(self.edges[:1])[0]), squeeze)
        kmax = _squeeze_int(int(float_keys(self.edges[-1:])[0]), squeeze)
        shift = max(0, (kmax - kmin).bit_length() - cells.bit_length() + 1)
        step = 1 << shift
        base = kmin - step  # keys below kmin are clipped to base: they all land in cell 0 (underflow)
        top = kmax + step  # keys above kmax are clipped to top: a cell holding only overflow
        n_cells = ((top - base) >> shift) + 1
        j = np.arange(n_cells, dtype=np.int64)
        starts_k = base + (j << shift)
        ends_k = np.minimum(starts_k + (step - 1), top)
        starts = keys_to_floats(_unsqueeze(starts_k, squeeze, low=True))
        ends = keys_to_floats(_unsqueeze(ends_k, squeeze, low=False))
        starts[0] = -np.inf  # everything clipped to base belongs to the first cell, everything above top to the last
        ends[-1] = np.inf
        lut, ambiguous, mass = self._score(starts, ends)
        return (mass, "keys", lut, ambiguous, (base, top, shift, squeeze))

    def _score(self, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        lut = np.searchsorted(self.edges, starts, "right").astype(np.int32)
        last = np.searchsorted(self.edges, ends, "right").astype(np.int32)
        ambiguous = lut != last
        return lut, ambiguous, self._mass(starts, ends, ambiguous)

    def _mass(self, starts: np.ndarray, ends: np.ndarray, ambiguous: np.ndarray) -> float:
        """Share of the reference mass that falls in ambiguous cells (and so needs the binary search)."""
        cdf_end = np.interp(ends[ambiguous], self.edges, self._cdf)
        cdf_start = np.interp(starts[ambiguous], self.edges, self._cdf)
        return float((cdf_end - cdf_start).sum())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Bin index per value, equal to np.searchsorted(edges, x, 'right')."""
        if self.mode == "search" or len(x) == 0:
            return np.searchsorted(self.edges, x, "right")
        if self.mode == "linear":
            lo, scale, last_cell = self._params
            c = x - lo
            with np.errstate(over="ignore", invalid="ignore"):
                c *= scale
            c += 1.0
            np.clip(c, 0.0, last_cell, out=c)
            cell = c.astype(np.intp)
        else:
            base, top, shift, squeeze = (int(v) for v in self._params)
            k = float_keys(x)
            if squeeze:
                k -= np.clip(k, -squeeze - 1, squeeze)
            np.clip(k, base, top, out=k)
            k -= base  # may wrap past 2**63 for huge spans: read as unsigned, it is the true offset
            u = k.view(np.uint64)
            u >>= np.uint64(shift)
            cell = u
        out = self._lut[cell]
        amb = np.flatnonzero(self._ambiguous[cell])
        if amb.size:
            out[amb] = np.searchsorted(self.edges, x[amb], "right")
        return out


def _squeeze_int(k: int, squeeze: int) -> int:
    return k - min(max(k, -squeeze - 1), squeeze)


def _unsqueeze(k: np.ndarray, squeeze: int, *, low: bool) -> np.ndarray:
    """A key in the squeezed space back to the raw key at the low (or high) end of its pre-image."""
    if not squeeze:
        return k
    if low:
        return np.where(k > 0, k + squeeze, k - squeeze - 1)
    return np.where(k < 0, k - squeeze - 1, k + squeeze)
