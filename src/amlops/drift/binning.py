"""Fast, exact assignment of values to the bins of a reference histogram.

`np.searchsorted` over ~500 edges costs ~50 ns per value (a branchy binary search), which alone would spend
the monitor's whole time budget. Instead each feature gets a lookup table over a grid of cells: uniform in the
value ("linear"), or uniform in an order-preserving integer view of the float's bits ("keys": linear within an
octave, logarithmic across octaves, so heavy tails stay resolved). The grid with less reference mass in
ambiguous cells wins. Because the value -> cell map is monotone (every step of it rounds monotonically), a
cell holding no edge maps straight to its bin; only values in the few cells that hold an edge go through
`searchsorted`. The result equals `np.searchsorted(edges, x, side="right")` exactly (tests check this); the
grid only changes speed.

Bin index convention: 0 = below the first edge (underflow), i in 1..B = [edges[i-1], edges[i]), B+1 = at or
above the last edge (overflow). Callers remove NaN first.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

GRID_CELLS = 1 << 18
_LOW63 = np.int64(0x7FFFFFFFFFFFFFFF)
_PROBES = 4096  # reference quantiles used to estimate how much mass lands in ambiguous cells


def float_keys(x: np.ndarray) -> np.ndarray:
    """Order-preserving int64 view of float64 values (NaN excluded): a < b  <=>  key(a) < key(b)."""
    b = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return b ^ ((b >> 63) & _LOW63)


class Binner:
    """Maps float64 values (no NaN) to bin indices of `edges`. Build once per feature, call per chunk."""

    def __init__(
        self,
        edges: np.ndarray,
        counts: np.ndarray | None = None,
        discrete: bool = False,
        cells: int = GRID_CELLS,
    ) -> None:
        self.edges = np.ascontiguousarray(edges, dtype=np.float64)
        self.n_bins = max(len(self.edges) - 1, 0)
        self.mode = "search"
        self.ambiguous_mass = 1.0
        self._params: tuple[Any, ...] = ()
        if len(self.edges) < 2 or not np.isfinite(self.edges).all():
            return
        # Probe values spread like the reference (its quantile function), to weigh the candidate grids.
        if counts is not None and len(counts) == self.n_bins and counts.sum() > 0:
            cdf = np.concatenate([[0.0], np.cumsum(counts, dtype=np.float64)]) / float(counts.sum())
        else:
            cdf = np.linspace(0.0, 1.0, self.n_bins + 1)
        levels = (np.arange(_PROBES) + 0.5) / _PROBES
        if discrete:  # the values are the atoms themselves (each bin's left edge)
            probes = self.edges[np.searchsorted(cdf[1:], levels, "right").clip(0, self.n_bins - 1)]
        else:
            probes = np.interp(levels, cdf, self.edges)
        best: tuple[float, str, tuple[Any, ...], int] | None = None
        for mode, params, n_cells in self._candidates(cells):
            if n_cells <= 0:
                continue
            self.mode, self._params = mode, params
            _, ambiguous = self._layout(n_cells, table=False)
            mass = float(ambiguous[self._cells(probes)].mean())
            if best is None or mass < best[0]:
                best = (mass, mode, params, n_cells)
        self.mode = "search"
        if best is None or best[0] >= 0.5:  # the grid would not save much over a plain binary search
            return
        mass, mode, params, n_cells = best
        self.mode, self._params, self.ambiguous_mass = mode, params, mass
        before, ambiguous = self._layout(n_cells)
        assert before is not None
        # table[j] = the bin of every value in cell j, or -1 where a value's bin needs more than its cell.
        before[ambiguous] = -1
        # A discrete profile ends with a sentinel edge just above the maximum: the maximum's cell then holds
        # only the maximum (bin B) and values above it (overflow), told apart by one comparison instead of a
        # search.
        self._top = float(self.edges[-2]) if self.n_bins >= 1 else np.nan
        if self.n_bins >= 1 and self.edges[-1] == np.nextafter(self.edges[-2], np.inf):
            cells_of = self._cells(self.edges)
            j = int(cells_of[-1])
            alone = (cells_of == j).sum() == 2 and self._cells(np.nextafter(self.edges[-2:-1], -np.inf))[
                0
            ] < j
            if alone:
                before[j] = -2
        dtype = np.int16 if self.n_bins + 1 < np.iinfo(np.int16).max else np.int32
        self._table = before.astype(dtype)

    def _layout(self, n_cells: int, table: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """(edges at or below the start of each cell, cells whose values straddle an edge).

        An edge that is the smallest float of its cell (its predecessor maps to an earlier cell) is below
        every value of the cell, so it does not make the cell ambiguous: with integer-aligned cells, integer
        atoms (counts, codes, day numbers) never need the binary search.
        """
        cell = self._cells(self.edges)
        starts_cell = self._cells(np.nextafter(self.edges, -np.inf)) < cell
        ambiguous = np.zeros(n_cells, dtype=bool)
        ambiguous[cell[~starts_cell]] = True
        if not table:  # scoring a candidate grid only needs the ambiguous cells
            return None, ambiguous
        first = np.where(starts_cell, cell, cell + 1)  # the first cell entirely at or above the edge
        before = np.cumsum(np.bincount(first, minlength=n_cells + 1))[:n_cells]
        return before, ambiguous

    def _candidates(self, cells: int) -> list[tuple[str, tuple[Any, ...], int]]:
        plans = [self._linear_params(cells), self._key_params(cells)]
        inner = self.edges[:-1]
        span = float(self.edges[-1] - self.edges[0])
        if np.all(inner == np.round(inner)) and 0 < span < cells:
            # Integer-valued edges: one cell per integer, so every integer starts its own cell.
            plans.append(("integer", (float(self.edges[0]) - 1.0, float(int(span) + 2)), int(span) + 3))
        return plans

    def _linear_params(self, cells: int) -> tuple[str, tuple[Any, ...], int]:
        lo, hi = float(self.edges[0]), float(self.edges[-1])
        scale = cells / (hi - lo)
        if not np.isfinite(scale) or scale <= 0:
            return "linear", (), 0
        # c = (x - lo) * scale + 1, clipped to [0, cells + 1]: cell 0 holds x < lo, cells + 1 all x >= hi.
        return "linear", (lo, scale, float(cells + 1)), cells + 2

    def _key_params(self, cells: int) -> tuple[str, tuple[Any, ...], int]:
        # Magnitudes far below the smallest non-zero edge would waste most cells on empty octaves near zero:
        # the keys of (-tiny, tiny) are squeezed to 0 (still monotone). This also gives -0.0 (key -1) and 0.0
        # (key 0) the same cell, as they compare equal; edges are strictly increasing, so one is non-zero.
        nonzero = np.abs(self.edges[self.edges != 0])
        squeeze = int(float_keys(np.array([nonzero.min() / 1024.0]))[0]) if nonzero.size else 0
        kmin = _squeeze_int(int(float_keys(self.edges[:1])[0]), squeeze)
        kmax = _squeeze_int(int(float_keys(self.edges[-1:])[0]), squeeze)
        shift = max(0, (kmax - kmin).bit_length() - cells.bit_length() + 1)
        step = 1 << shift
        base = kmin - step  # keys below kmin are clipped to base: cell 0 holds only underflow
        top = kmax + step  # keys above kmax are clipped to top: the last cell holds only overflow
        return "keys", (base, top, shift, squeeze), ((top - base) >> shift) + 1

    def _cells(self, x: np.ndarray, ws: _Workspace | None = None) -> np.ndarray:
        """Cell index per value (monotone non-decreasing in the value)."""
        n = len(x)
        cell = ws.i64[:n] if ws is not None else np.empty(n, np.int64)
        if self.mode == "integer":  # cell = floor(x) - lo + 1: exact, so every integer starts its own cell
            origin, last_cell = self._params
            c = ws.f64[:n] if ws is not None else np.empty(n, np.float64)
            np.floor(x, out=c)
            c -= origin
            np.clip(c, 0.0, last_cell, out=c)
            np.copyto(cell, c, casting="unsafe")
            return cell
        if self.mode == "linear":
            lo, scale, last_cell = self._params
            c = ws.f64[:n] if ws is not None else np.empty(n, np.float64)
            np.subtract(x, lo, out=c)
            with np.errstate(over="ignore", invalid="ignore"):
                c *= scale
            c += 1.0
            np.clip(c, 0.0, last_cell, out=c)
            np.copyto(cell, c, casting="unsafe")
            return cell
        base, top, shift, squeeze = self._params
        xi = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
        tmp = ws.f64[:n].view(np.int64) if ws is not None else np.empty(n, np.int64)
        np.right_shift(xi, 63, out=tmp)  # float_keys, without temporaries
        tmp &= _LOW63
        np.bitwise_xor(xi, tmp, out=cell)
        if squeeze:
            np.clip(cell, -squeeze - 1, squeeze, out=tmp)
            cell -= tmp
        np.clip(cell, base, top, out=cell)
        cell -= base  # may wrap past 2**63 for huge spans: read as unsigned, it is the true offset
        u = cell.view(np.uint64)
        u >>= np.uint64(shift)
        return cell

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Bin index per value, equal to np.searchsorted(edges, x, 'right').

        The result may be a view of a per-thread scratch buffer: use it before the thread's next call.
        """
        n = len(x)
        if self.mode == "search" or n == 0:
            return np.searchsorted(self.edges, x, "right")
        ws = _workspace(n)
        cell = self._cells(x, ws)
        out = ws.out(self._table.dtype, n)
        np.take(self._table, cell, out=out)
        amb = np.flatnonzero(out < 0)
        if amb.size:
            xs = x[amb]
            code = out[amb]
            top = code == -2
            if top.any():
                res = np.where(xs > self._top, self.n_bins + 1, self.n_bins).astype(out.dtype)
                rest = ~top
                res[rest] = np.searchsorted(self.edges, xs[rest], "right")
                out[amb] = res
            else:
                out[amb] = np.searchsorted(self.edges, xs, "right")
        return out


class _Workspace(threading.local):
    """Scratch arrays reused across calls (fresh multi-MB arrays cost page faults, more than the math)."""

    def __init__(self) -> None:
        self.size = 0
        self.i64 = np.empty(0, np.int64)
        self.f64 = np.empty(0, np.float64)
        self._out: dict[Any, np.ndarray] = {}

    def out(self, dtype: Any, n: int) -> np.ndarray:
        buf = self._out.get(np.dtype(dtype))
        if buf is None or len(buf) < n:
            buf = self._out[np.dtype(dtype)] = np.empty(max(self.size, n), dtype)
        return buf[:n]


_WS = _Workspace()


def _workspace(n: int) -> _Workspace:
    ws = _WS
    if ws.size < n:
        ws.size = n
        ws.i64 = np.empty(n, np.int64)
        ws.f64 = np.empty(n, np.float64)
        ws._out = {}
    return ws


def _squeeze_int(k: int, squeeze: int) -> int:
    return k - min(max(k, -squeeze - 1), squeeze)
