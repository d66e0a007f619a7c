"""Partial sufficient statistics of the monitor: what one mini-batch contributes, and their exact merge.

The monitor's state after a pass is a set of per-window sums: histogram counts on the reference edges, category
counts, null / type-error counts, label-join hits (integers) and float totals (moments, out-of-range distances,
error sums). A *partial* is that state for a subset of the files, written by the map step; the reduce step adds
partials together and scores the merged state with the same code as the single-process monitor.

Exactness: integers add exactly in any order. Float totals do not, so they are kept as exact sums: each chunk's
float total (numpy's sum of one streamed chunk, the same chunk in both paths: chunks never span files) is
converted to an integer multiple of 2**-SCALE (every finite double is one) and those integers add exactly; the
float is formed once, at scoring, by one correctly rounded division. Any order, any grouping, the same bits.
A total that is not a finite double (values whose squares or distances pass the float range, ~1.3e154 for a
square) cannot be made exact: it is kept as an overflow marker (+inf, -inf or nan) that every later sum carries,
so the statistic comes out as inf / nan (reported as null), never as a wrong finite number.

Layout of a partial (version 3, chosen so that the merge is a few numpy additions per partial, not Python work per
feature): every integer statistic of a window (rows, then per section its histogram counts and count scalars) is
one row of an int64 matrix, deflated; every exact total of a window is one comma-separated hex field of the
`exact` text, window-major. The column layout follows from the profile and settings, which the fingerprint pins.
Version 3 adds `samples`: per label-free extra (the error estimate, the multivariate metric) its per-window
bottom-k samples (amlops.drift.estimate.BottomK: hashes, counts, per-entry values, window-major), which merge
by keeping the k smallest hashes of their union: exact too, in any order and grouping.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import os
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from amlops.drift.monitor import Monitor

# The smallest positive double is 2**-1074; frexp gives it as 0.5 * 2**-1073, i.e. mantissa 2**52 scaled by
# 2**-1125: every finite double is an integer multiple of 2**-SCALE.
SCALE = 1126
PARTIAL_SCHEMA = "amlops.monitor.partial"
PARTIAL_VERSION = 3
PARTIAL_SUFFIX = ".partial.json"


class PartialError(ValueError):
    """Partials that cannot be merged (other settings, another profile, a foreign file): one clear line."""


# ------------------------------------------------------------------------------------------ exact float sums
def exact(value: float) -> int:
    """The finite double `value` as an exact integer multiple of 2**-SCALE."""
    if value == 0.0:
        return 0
    m, e = math.frexp(value)
    return int(m * 2**53) << (e - 53 + SCALE)


def exact_array(values: np.ndarray) -> list[int]:
    """`exact` for each element, all finite (vectorised split; the shift is per element, in Python ints)."""
    m, e = np.frexp(np.asarray(values, dtype=np.float64))
    mant = np.ldexp(m, 53).astype(np.int64).tolist()
    shifts = (e.astype(np.int64) - 53 + SCALE).tolist()
    return [mi << s if mi else 0 for mi, s in zip(mant, shifts, strict=True)]


def exact_sum_of(values: np.ndarray) -> int:
    """The exact sum of finite doubles whose float sum overflowed (rare: values near the float maximum)."""
    return sum(exact_array(values))


def to_float(total: int) -> float:
    """The exact sum as the nearest double (CPython's int / int true division is correctly rounded)."""
    if total == 0:
        return 0.0
    try:
        return total / (1 << SCALE)
    except OverflowError:  # the sum of finite doubles exceeds the float range
        return math.inf if total > 0 else -math.inf


class ExactSums:
    """Per-window exact float totals; windows grow as the monitor meets them. `overflow`: per window, the sum of
    the totals that were not finite doubles (+inf, -inf or nan only: adding those is order-independent too)."""

    def __init__(self) -> None:
        self.values: list[int] = []
        self.overflow: dict[int, float] = {}

    def ensure(self, n: int) -> None:
        if len(self.values) < n:
            self.values.extend([0] * (n - len(self.values)))

    def add(self, window: int, total: float, parts: np.ndarray | None = None) -> None:
        """Add a chunk's float total to a window; `parts` (the summed values) when the total is not finite."""
        if math.isfinite(total):
            self.values[window] += exact(total)
            return
        if parts is not None:
            parts = np.asarray(parts, dtype=np.float64)
            finite = np.isfinite(parts)
            if finite.all():  # finite values whose float sum overflowed: their exact sum is still exact
                self.values[window] += exact_sum_of(parts)
                return
            total = float(np.sum(parts[~finite]))  # the values themselves overflowed (a square, a distance)
        self.mark_overflow(window, total)

    def add_many(self, windows: np.ndarray, totals: np.ndarray) -> None:
        totals = np.asarray(totals, dtype=np.float64)
        finite = np.isfinite(totals)
        if not finite.all():
            for g, v in zip(windows[~finite].tolist(), totals[~finite].tolist(), strict=True):
                self.mark_overflow(g, v)
            windows, totals = windows[finite], totals[finite]
        for g, v in zip(windows.tolist(), exact_array(totals), strict=True):
            self.values[g] += v

    def mark_overflow(self, window: int, value: float) -> None:
        """Record a non-finite total: the window's statistic is inf / nan from now on, in any merge order."""
        self.overflow[window] = self.overflow.get(window, 0.0) + (
            value if not math.isfinite(value) else math.nan
        )

    def total(self, rows: Any) -> float:
        value = to_float(self.raw(rows))
        if self.overflow:
            for g in _window_list(rows, len(self.values)):
                if g in self.overflow:
                    value += self.overflow[g]
        return value

    def raw(self, rows: Any) -> int:
        if not self.values:
            return 0
        if isinstance(rows, int | np.integer):
            return self.values[int(rows)]
        if isinstance(rows, slice):
            return sum(self.values[rows])
        return sum(self.values[int(i)] for i in np.asarray(rows).ravel())


def _window_list(rows: Any, n: int) -> list[int]:
    if isinstance(rows, int | np.integer):
        return [int(rows)]
    if isinstance(rows, slice):
        return list(range(n))[rows]
    return [int(i) for i in np.asarray(rows).ravel()]


def _encode_exact(value: int) -> str:
    """An exact total as hex without its trailing zero bits ('<mantissa>.<shift>'): a double's total carries
    ~1,100 zero bits below its mantissa (the 2**-SCALE grid), which would be ~270 hex digits per number."""
    if value == 0:
        return "0"
    shift = (value & -value).bit_length() - 1
    return f"{value >> shift:x}.{shift:x}"


def _decode_exact(text: str) -> int:
    if text == "0":
        return 0
    mantissa, _, shift = text.partition(".")
    return int(mantissa, 16) << int(shift or "0", 16)


# ------------------------------------------------------------------------------------------ (de)serialising
def _b64(a: np.ndarray) -> str:
    """int64 counts, deflated (histograms are mostly small numbers and zeros: ~10x smaller, faster to read)."""
    raw = np.ascontiguousarray(a, dtype=np.int64).tobytes()
    return base64.b64encode(zlib.compress(raw, 1)).decode("ascii")


def _unb64(text: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.int64).reshape(shape)


def decode_ints(text: str) -> np.ndarray:
    return _unb64(text, (-1,))


def fingerprint(mon: Monitor) -> str:
    """What partials must share to be added: the profile and every setting that shapes the statistics."""
    o = mon.options
    shape = {
        "profile": mon.profile.to_dict(),
        "window": o.window,
        "timestamp_column": o.timestamp_column,
        "id_column": o.id_column,
        "prediction_column": o.prediction_column,
        "label_column": o.label_column,
        "chunk_rows": o.chunk_rows,
        # The scoring settings too: the merge scores with the first partial's options, so partials given other
        # thresholds or metrics would make the result depend on which one is read first.
        "thresholds": dict(sorted(o.thresholds.items())),
        "numeric_metric": o.numeric_metric,
        "categorical_metric": o.categorical_metric,
        "min_window_rows": o.min_window_rows,
        "features": o.features,
        "numeric": list(mon.numeric),
        "categorical": list(mon.categorical),
        "labels": len(mon._label_hits),
        # The label-free extras and what they were computed with (the estimator, the PCA, their sample sizes).
        "extras": [[extra.key, extra.identity()] for extra in mon.extras],
    }
    text = json.dumps(shape, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class _Section:
    """One accumulator of the monitor as columns of a partial: histogram width, count scalars, exact totals."""

    key: str
    acc: Any
    scalars: tuple[str, ...]
    exact: tuple[str, ...]

    @property
    def width(self) -> int:
        return int(self.acc.width)


def _sections(mon: Monitor) -> list[_Section]:
    from amlops.drift import monitor as m

    out = [_Section(f"numeric:{k}", f.acc, m.NUM_COUNTS, m.NUM_EXACT) for k, f in mon.numeric.items()]
    out += [_Section(f"categorical:{k}", f.acc, ("errors",), ()) for k, f in mon.categorical.items()]
    if mon.prediction is not None:
        out.append(_Section("prediction", mon.prediction.acc, m.NUM_COUNTS, m.NUM_EXACT))
    out.append(_Section("performance", mon.performance.acc, m.PERF_COUNTS, m.PERF_EXACT))
    return out


def _layout(sections: Sequence[_Section]) -> list[list[Any]]:
    return [[s.key, s.width, list(s.scalars), list(s.exact)] for s in sections]


def _widths(sections: Sequence[_Section]) -> tuple[int, int]:
    """(int columns: rows + counts + scalars, exact columns) of one window."""
    return 1 + sum(s.width + len(s.scalars) for s in sections), sum(len(s.exact) for s in sections)


def _head(a: np.ndarray, n: int) -> np.ndarray:
    """The first n rows, zero-padded (an accumulator never updated has fewer rows than the monitor windows)."""
    if len(a) >= n:
        return a[:n]
    pad = np.zeros((n - len(a), *a.shape[1:]), dtype=a.dtype)
    return np.concatenate([a, pad])


def dump(mon: Monitor, source: str | None = None, files: Iterable[str] | None = None) -> dict[str, Any]:
    """The monitor's accumulated state as a partial (JSON-ready). `files`: the data files it counted (default:
    those of the partials a merged monitor absorbed), so a merge can refuse a file counted twice."""
    n = len(mon.windows.keys)
    sections = _sections(mon)
    width, n_exact = _widths(sections)
    ints = np.zeros((n, width), dtype=np.int64)
    ints[:, 0] = _head(np.asarray(mon.rows, dtype=np.int64), n)
    exact_cols: list[list[int]] = []
    overflow: list[list[Any]] = []
    col = 1
    for s in sections:
        ints[:, col : col + s.width] = _head(s.acc.counts, n)
        col += s.width
        for k in s.scalars:
            # Count scalars are float64 arrays holding integers (exact far beyond any row count).
            ints[:, col] = np.rint(_head(s.acc.scalars.get(k, np.zeros(0)), n))
            col += 1
        for k in s.exact:
            sums = s.acc.exact.get(k) or ExactSums()
            exact_cols.append((sums.values + [0] * n)[:n])
            overflow += [[g, len(exact_cols) - 1, repr(v)] for g, v in sorted(sums.overflow.items()) if g < n]
    by_window = [exact_cols[j][g] for g in range(n) for j in range(n_exact)]
    return {
        "schema": PARTIAL_SCHEMA,
        "schema_version": PARTIAL_VERSION,
        "fingerprint": fingerprint(mon),
        "source": source,
        "files": sorted(files) if files is not None else sorted(getattr(mon, "partial_files", [])),
        "options": dataclasses.asdict(mon.options),
        "keys": list(mon.windows.keys),
        "layout": _layout(sections),
        "ints": _b64(ints),
        "exact": ",".join(_encode_exact(v) for v in by_window),
        "overflow": overflow,
        # Only when labels met predictions: a monitor without any reports no performance at all.
        "has_performance": bool(mon.performance.acc.scalars),
        "label_hits": _b64(mon._label_hits),
        "label_load": mon._label_load,
        "rows_joined": int(mon._rows_joined),
        "missing_columns": sorted(mon.missing_columns),
        "has_prediction": mon._has_prediction,
        "has_label": mon._has_label,
        "samples": {extra.key: _pack_sample(extra.samples().arrays(n)) for extra in mon.extras},
    }


# Sample arrays of a partial: the random ones (hashes, values) do not deflate; the counts do, to almost nothing.
_SAMPLE_DTYPES = {
    "rows": ("<i8", True),
    "population": ("<i8", True),
    "sizes": ("<i8", True),
    "hashes": ("<u8", False),
    "counts": ("<i8", True),
    "values": ("<f4", False),
}


def _pack_sample(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {"width": int(arrays["values"].shape[1])}
    for name, (dtype, deflate) in _SAMPLE_DTYPES.items():
        raw = np.ascontiguousarray(arrays[name], dtype=dtype).tobytes()
        out[name] = base64.b64encode(zlib.compress(raw, 1) if deflate else raw).decode("ascii")
    return out


def _unpack_sample(packed: dict[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, (dtype, deflate) in _SAMPLE_DTYPES.items():
        raw = base64.b64decode(packed[name])
        out[name] = np.frombuffer(zlib.decompress(raw) if deflate else raw, dtype=dtype)
    out["values"] = out["values"].reshape(-1, int(packed["width"]))
    return out


def _check_extras(mon: Monitor, states: Sequence[dict[str, Any]]) -> None:
    """Partials and the merging monitor must carry the same label-free extras (one clear line when not)."""
    want = sorted(extra.key for extra in mon.extras)
    for state in states:
        have = sorted(state.get("samples") or {})
        if have == want:
            continue
        if set(have) - set(want):
            raise PartialError(
                f"the partials carry {', '.join(sorted(set(have) - set(want)))} (the model's error estimator or "
                "multivariate PCA) but the merge has none: give the reduce step the model folder the map used"
            )
        raise PartialError(
            f"the merge computes {', '.join(sorted(set(want) - set(have)))} but a partial carries none: map "
            "with the same model folder (its error estimator and multivariate PCA)"
        )


def _check_version(state: dict[str, Any]) -> None:
    if state.get("schema") != PARTIAL_SCHEMA or state.get("schema_version") != PARTIAL_VERSION:
        raise PartialError(
            f"not a monitor partial of this amlops (schema {state.get('schema')!r} "
            f"version {state.get('schema_version')}, expected {PARTIAL_VERSION}): re-run the map step"
        )


def _check(state: dict[str, Any], want: str, layout: list[list[Any]]) -> None:
    if state["fingerprint"] != want:
        raise PartialError(
            "a partial was computed with other settings or another reference profile than the rest; "
            "re-run the map step over every file with the same inputs"
        )
    if state["layout"] != layout:
        raise PartialError("a partial's histogram layout differs from the profile's: another profile")


def absorb(mon: Monitor, state: dict[str, Any], expect: str | None = None) -> None:
    """Add one partial's statistics into the monitor (see absorb_all)."""
    absorb_all(mon, [state], expect)


def absorb_all(mon: Monitor, states: Sequence[dict[str, Any]], expect: str | None = None) -> None:
    """Add the partials' statistics into the monitor: integer additions only, so any order and any grouping give
    the same state. Vectorised: per partial, one int64 matrix addition and one exact-total addition."""
    sections = _sections(mon)
    layout = _layout(sections)
    width, n_exact = _widths(sections)
    want = expect or fingerprint(mon)
    for state in states:
        _check_version(state)
    _check_extras(mon, states)
    for state in states:
        _check(state, want, layout)
    ids = [mon.windows._ids(list(state["keys"])) for state in states]
    n = len(mon.windows.keys)
    ints = np.zeros((n, width), dtype=np.int64)
    exact_sum = np.zeros((n, n_exact), dtype=object)  # Python ints: exact whatever their size
    overflow: dict[tuple[int, int], float] = {}
    hits = np.zeros_like(mon._label_hits)
    for state, glob in zip(states, ids, strict=True):
        if len(glob) == 0:
            continue
        # A partial's window keys are distinct, so fancy-index += adds each row once.
        ints[glob] += _unb64(state["ints"], (len(glob), width))
        if n_exact:
            fields = state["exact"].split(",")
            values = [0 if t == "0" else _decode_exact(t) for t in fields]
            exact_sum[glob] += np.array(values, dtype=object).reshape(len(glob), n_exact)
        for g, j, v in state["overflow"]:
            key = (int(glob[g]), int(j))
            overflow[key] = overflow.get(key, 0.0) + float(v)
        state_hits = decode_ints(state["label_hits"])
        if len(state_hits) != len(hits):
            raise PartialError("partials joined different label files")
        hits += state_hits
    _install(mon, sections, ints, exact_sum, overflow, any(s["has_performance"] for s in states))
    for extra in mon.extras:
        parts = [
            (_unpack_sample(state["samples"][extra.key]), glob)
            for state, glob in zip(states, ids, strict=True)
        ]
        extra.samples().absorb(parts, n)
    mon._label_hits += hits
    for state in states:
        mon._rows_joined += int(state["rows_joined"])
        if state.get("label_load") is not None:
            mon._label_load = dict(state["label_load"])
        # A column is missing when no partial's files had it (a partial lists those none of its files had).
        missing = set(state["missing_columns"])
        mon.missing_columns = mon.missing_columns & missing if mon._checked else missing
        mon._checked = True
        mon._has_prediction |= bool(state["has_prediction"])
        mon._has_label |= bool(state["has_label"])
    mon._checked = True


def _install(
    mon: Monitor,
    sections: Sequence[_Section],
    ints: np.ndarray,
    exact_sum: np.ndarray,
    overflow: dict[tuple[int, int], float],
    has_performance: bool,
) -> None:
    """Add the merged columns into the monitor's accumulators."""
    n = len(ints)
    if len(mon.rows) < n:
        mon.rows = np.concatenate([mon.rows, np.zeros(n - len(mon.rows), np.int64)])
    mon.rows[:n] += ints[:, 0]
    col, ecol = 1, 0
    for s in sections:
        skip = s.key == "performance" and not has_performance
        if not skip:
            s.acc.ensure(n, s.scalars, s.exact)
            s.acc.counts[:n] += ints[:, col : col + s.width]
        col += s.width
        for k in s.scalars:
            if not skip:
                s.acc.scalars[k][:n] += ints[:, col]
            col += 1
        for k in s.exact:
            if not skip:
                sums = s.acc.exact[k]
                sums.values[:n] = [
                    a + b for a, b in zip(sums.values[:n], exact_sum[:, ecol].tolist(), strict=True)
                ]
                for (g, j), v in overflow.items():
                    if j == ecol:
                        sums.mark_overflow(g, v)
            ecol += 1


def write(state: dict[str, Any], folder: str | Path, name: str) -> Path:
    """Write a partial as `<name>.partial.json`; a retried mini-batch rewrites the same file (never adds one)."""
    out = Path(folder) / f"{name}{PARTIAL_SUFFIX}"
    out.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: a timed-out mini-batch may be resubmitted while the first attempt still runs.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out.parent)
    try:
        # mkstemp creates 0600: the reduce step may read the mounted output as another user.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(state, separators=(",", ":")))
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def read_all(folder: str | Path) -> list[dict[str, Any]]:
    """Every partial under the folder (sorted by name, though the merge does not depend on order)."""
    files = sorted(Path(folder).rglob(f"*{PARTIAL_SUFFIX}"))
    if not files:
        raise PartialError(f"{folder}: no *{PARTIAL_SUFFIX} files (did the map step run?)")
    out = []
    for f in files:
        try:
            out.append(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise PartialError(f"{f}: unreadable partial ({exc})") from None
    return out


def batch_name(files: Iterable[str]) -> str:
    """A mini-batch's partial file name: a digest of its files, so a retry of the same mini-batch replaces its
    partial instead of adding a second one."""
    digest = hashlib.sha256("\n".join(sorted(str(f) for f in files)).encode("utf-8")).hexdigest()
    return f"part-{digest[:20]}"
