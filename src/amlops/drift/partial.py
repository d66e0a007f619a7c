"""Partial sufficient statistics of the monitor: what one mini-batch contributes, and their exact merge.

The monitor's state after a pass is a set of per-window sums: histogram counts on the reference edges, category
counts, null / type-error counts, label-join hits (integers) and float totals (moments, out-of-range distances,
error sums). A *partial* is that state for a subset of the files, written by the map step; the reduce step adds
partials together and scores the merged state with the same code as the single-process monitor.

Exactness: integers add exactly in any order. Float totals do not, so they are kept as exact sums: each chunk's
float total (numpy's sum of one streamed chunk, the same chunk in both paths: chunks never span files) is
converted to an integer multiple of 2**-SCALE (every finite double is one) and those integers add exactly; the
float is formed once, at scoring, by one correctly rounded division. Any order, any grouping, the same bits.
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
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from amlops.drift.monitor import Monitor

# The smallest positive double is 2**-1074; frexp gives it as 0.5 * 2**-1073, i.e. mantissa 2**52 scaled by
# 2**-1125: every finite double is an integer multiple of 2**-SCALE.
SCALE = 1126
PARTIAL_SCHEMA = "amlops.monitor.partial"
PARTIAL_VERSION = 1
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
    """`exact` for each element (vectorised split; the shift is per element, in Python ints)."""
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
    """Per-window exact float totals; windows grow as the monitor meets them."""

    def __init__(self) -> None:
        self.values: list[int] = []

    def ensure(self, n: int) -> None:
        if len(self.values) < n:
            self.values.extend([0] * (n - len(self.values)))

    def add(self, window: int, total: float, parts: np.ndarray | None = None) -> None:
        """Add a chunk's float total to a window; `parts` (the summed values) when the total is not finite."""
        if math.isfinite(total):
            self.values[window] += exact(total)
        elif parts is not None:
            self.values[window] += exact_sum_of(parts)

    def add_many(self, windows: np.ndarray, totals: np.ndarray) -> None:
        for g, v in zip(windows.tolist(), exact_array(totals), strict=True):
            self.values[g] += v

    def total(self, rows: Any) -> float:
        return to_float(self.raw(rows))

    def raw(self, rows: Any) -> int:
        if not self.values:
            return 0
        if isinstance(rows, int | np.integer):
            return self.values[int(rows)]
        if isinstance(rows, slice):
            return sum(self.values[rows])
        return sum(self.values[int(i)] for i in np.asarray(rows).ravel())


# ------------------------------------------------------------------------------------------ (de)serialising
def _b64(a: np.ndarray) -> str:
    """int64 counts, deflated (histograms are mostly small numbers and zeros: ~10x smaller, faster to read)."""
    raw = np.ascontiguousarray(a, dtype=np.int64).tobytes()
    return base64.b64encode(zlib.compress(raw, 1)).decode("ascii")


def _unb64(text: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.int64).reshape(shape)


def decode_ints(text: str) -> np.ndarray:
    return _unb64(text, (-1,))


def _ints(a: np.ndarray, n: int) -> list[int]:
    return [int(v) for v in np.asarray(a[:n]).round()]


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
    }
    text = json.dumps(shape, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _feature_state(acc: Any, n: int, scalars: Iterable[str], exact_names: Iterable[str]) -> dict[str, Any]:
    acc.ensure(n, tuple(scalars), tuple(exact_names))
    return {
        "counts": _b64(acc.counts[:n]),
        "width": int(acc.width),
        "scalars": {k: _ints(acc.scalars[k], n) for k in scalars},
        # Exact totals as hex integers: exact in JSON, and parsed in linear time (decimal parsing is not).
        "exact": {k: [format(v, "x") for v in acc.exact[k].values[:n]] for k in exact_names},
    }


def dump(mon: Monitor, source: str | None = None, files: Iterable[str] | None = None) -> dict[str, Any]:
    """The monitor's accumulated state as a partial (JSON-ready). `files`: the data files it counted (default:
    those of the partials a merged monitor absorbed), so a merge can refuse a file counted twice."""
    from amlops.drift import monitor as m

    n = len(mon.windows.keys)
    features: dict[str, Any] = {}
    for name, num in mon.numeric.items():
        features[name] = _feature_state(num.acc, n, m.NUM_COUNTS, m.NUM_EXACT)
    for name, cat in mon.categorical.items():
        features[name] = _feature_state(cat.acc, n, ("errors",), ())
    state: dict[str, Any] = {
        "schema": PARTIAL_SCHEMA,
        "schema_version": PARTIAL_VERSION,
        "fingerprint": fingerprint(mon),
        "source": source,
        "files": sorted(files) if files is not None else sorted(getattr(mon, "partial_files", [])),
        "options": dataclasses.asdict(mon.options),
        "keys": list(mon.windows.keys),
        "rows": _ints(mon.rows, n) if len(mon.rows) else [0] * n,
        "features": features,
        "prediction": (
            _feature_state(mon.prediction.acc, n, m.NUM_COUNTS, m.NUM_EXACT)
            if mon.prediction is not None
            else None
        ),
        # Only when labels met predictions: a monitor without any reports no performance at all.
        "performance": (
            _feature_state(mon.performance.acc, n, m.PERF_COUNTS, m.PERF_EXACT)
            if mon.performance.acc.scalars
            else None
        ),
        "label_hits": _b64(mon._label_hits),
        "label_load": mon._label_load,
        "rows_joined": int(mon._rows_joined),
        "missing_columns": sorted(mon.missing_columns),
        "has_prediction": mon._has_prediction,
        "has_label": mon._has_label,
    }
    return state


def _absorb_feature(acc: Any, state: dict[str, Any], glob: np.ndarray, n_new: int) -> None:
    scalars, exact_names = tuple(state["scalars"]), tuple(state["exact"])
    acc.ensure(n_new, scalars, exact_names)
    if int(state["width"]) != acc.width:
        raise PartialError("a partial's histogram width differs from the profile's: another profile")
    # A partial's window keys are distinct, so fancy-index += adds each row once.
    acc.counts[glob] += _unb64(state["counts"], (len(glob), acc.width))
    for k, values in state["scalars"].items():
        acc.scalars[k][glob] += np.asarray(values, dtype=np.float64)
    for k, values in state["exact"].items():
        target = acc.exact[k].values
        for g, v in zip(glob.tolist(), values, strict=True):
            if v != "0":
                target[g] += int(v, 16)


def absorb(mon: Monitor, state: dict[str, Any], expect: str | None = None) -> None:
    """Add a partial's statistics into the monitor (integer additions only: any order gives the same state)."""
    if state.get("schema") != PARTIAL_SCHEMA or state.get("schema_version") != PARTIAL_VERSION:
        raise PartialError(
            f"not a monitor partial (schema {state.get('schema')!r} {state.get('schema_version')})"
        )
    want = expect or fingerprint(mon)
    if state["fingerprint"] != want:
        raise PartialError(
            "a partial was computed with other settings or another reference profile than the rest; "
            "re-run the map step over every file with the same inputs"
        )
    keys = list(state["keys"])
    if not keys:
        return
    glob = mon.windows._ids(keys)
    n = len(mon.windows.keys)
    if len(mon.rows) < n:
        mon.rows = np.concatenate([mon.rows, np.zeros(n - len(mon.rows), np.int64)])
    mon.rows[glob] += np.asarray(state["rows"], dtype=np.int64)
    for name, feature in state["features"].items():
        target = mon.numeric.get(name) or mon.categorical.get(name)
        if target is None:
            raise PartialError(f"a partial holds feature {name!r}, which the profile lacks")
        _absorb_feature(target.acc, feature, glob, n)
    if state["prediction"] is not None and mon.prediction is not None:
        _absorb_feature(mon.prediction.acc, state["prediction"], glob, n)
    if state["performance"] is not None:
        _absorb_feature(mon.performance.acc, state["performance"], glob, n)
    hits = _unb64(state["label_hits"], (-1,))
    if len(hits) != len(mon._label_hits):
        raise PartialError("partials joined different label files")
    mon._label_hits += hits
    mon._rows_joined += int(state["rows_joined"])
    if state.get("label_load") is not None:
        mon._label_load = dict(state["label_load"])
    mon.missing_columns |= set(state["missing_columns"])
    mon._has_prediction |= bool(state["has_prediction"])
    mon._has_label |= bool(state["has_label"])
    mon._checked = True


def write(state: dict[str, Any], folder: str | Path, name: str) -> Path:
    """Write a partial as `<name>.partial.json`; a retried mini-batch rewrites the same file (never adds one)."""
    out = Path(folder) / f"{name}{PARTIAL_SUFFIX}"
    out.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: a timed-out mini-batch may be resubmitted while the first attempt still runs.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out.parent)
    try:
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
