"""Error estimation before labels (direct loss estimation) and multivariate drift: accuracy, calibration, cost.

Data: 8 numeric + 2 categorical features; the label's noise grows with |n0| and is doubled in one category of c0,
so a covariate shift of n0 (or of c0's mix) moves the model's error up or down while P(y|x) stays. The model (a
HistGradientBoostingRegressor) is trained on 60k rows; the error estimator and the PCA are fitted on a 20k-row
holdout / the training rows, as the train step does.

Measured (targets from issue 18):
1. drifted windows (5,000 and 20,000 rows): estimated vs realized MAE; within 10 % of realized, and right about the
   direction where the constant holdout MAE is off by more than 15 %;
2. undrifted windows: the realized MAE inside the estimate's 95 % interval; multivariate false alarms no more than
   the univariate metrics' at the same window size; a correlation flip (marginals unchanged) seen by it;
3. cost: the monitor at 1M rows (one window, and 10 windows of 100k) alone, with the estimate, with multivariate
   drift and with both (CPU time, medians of BENCH_RUNS interleaved runs): both together at most +25 %.

Environment: BENCH_RUNS (5), BENCH_ROWS (1000000). Results: a table on stdout, bench/results/estimate-<time>.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from amlops.drift.estimate import fit_error_estimator
from amlops.drift.monitor import MonitorOptions, estimate_extra, multivariate_extra, run_monitor
from amlops.drift.multivariate import fit_pca
from amlops.drift.profile import build_profile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "bench" / "data"
NUMERIC = [f"n{i}" for i in range(8)]
CATEGORICAL = ["c0", "c1"]
TARGETS = {"within": 0.10, "constant_off": 0.15, "coverage": 0.90, "cost_added": 0.25}


def make(n: int, seed: int, shift: float = 0.0, c0_noisy: float = 0.25, rho: float = 0.8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n0 = rng.normal(shift, 1.0, n)
    n1 = rho * n0 + np.sqrt(1 - rho * rho) * rng.normal(0, 1, n) - rho * shift  # corr(n0, n1) = rho
    cols = {"n0": n0, "n1": n1}
    for i in range(2, 8):
        cols[f"n{i}"] = rng.normal(0, 1, n)
    c0 = np.where(rng.random(n) < c0_noisy, "noisy", rng.choice(["p", "q", "r"], n))
    c1 = rng.choice([f"k{i}" for i in range(12)], n)
    signal = 3 * n0 + 2 * np.sin(cols["n2"]) + cols["n3"] * cols["n4"] + (c1 == "k1") * 2.0
    noise = (0.4 + np.abs(n0)) * np.where(c0 == "noisy", 2.5, 1.0)
    y = signal + rng.normal(0, noise)
    return pd.DataFrame({**cols, "c0": c0, "c1": c1, "y": y})


def model_input(df: pd.DataFrame) -> pd.DataFrame:
    out = df[NUMERIC].copy()
    for c in CATEGORICAL:
        out[c] = df[c].astype("category")
    return out


def fit() -> tuple[Any, Any, Any, pd.DataFrame, float]:
    from sklearn.ensemble import HistGradientBoostingRegressor

    train, hold = make(60_000, seed=1), make(20_000, seed=2)
    model = HistGradientBoostingRegressor(max_iter=200, categorical_features="from_dtype", random_state=0)
    model.fit(model_input(train), train["y"])
    hold_pred = model.predict(model_input(hold))
    t = time.perf_counter()
    est = fit_error_estimator(hold, hold_pred, hold["y"].to_numpy(), NUMERIC, CATEGORICAL, seed=0)
    fit_seconds = time.perf_counter() - t
    pca = fit_pca(train, NUMERIC)
    return model, est, pca, train, fit_seconds


def scored(model: Any, df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(prediction=model.predict(model_input(df)))


def accuracy(model: Any, est: Any) -> list[dict[str, Any]]:
    holdout_mae = est.reference["realized_mae"]
    rows = []
    cases = [("n0 shift", s, 0.25) for s in (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)]
    cases += [("c0 noisy share", 0.0, p) for p in (0.05, 0.5)]
    for size in (5_000, 20_000):
        for i, (kind, shift, noisy) in enumerate(cases):
            df = scored(model, make(size, seed=1000 + 17 * i + size, shift=shift, c0_noisy=noisy))
            realized = float(np.mean(np.abs(df["y"] - df["prediction"])))
            e = est.estimate_frame(df, df["prediction"].to_numpy())
            constant_off = holdout_mae / realized - 1
            rows.append(
                {
                    "rows": size,
                    "change": f"{kind} {shift if kind == 'n0 shift' else noisy:+g}",
                    "realized_mae": realized,
                    "estimated_mae": e["mae"],
                    "low": e["mae_low"],
                    "high": e["mae_high"],
                    "estimate_off": e["mae"] / realized - 1,
                    "constant_off": constant_off,
                    "direction_ok": abs(constant_off) <= TARGETS["constant_off"]
                    or np.sign(e["mae"] - holdout_mae) == np.sign(realized - holdout_mae),
                }
            )
    return rows


def calibration(model: Any, est: Any, trials: int = 40) -> dict[str, Any]:
    inside = 0
    offs = []
    for i in range(trials):
        df = scored(model, make(5_000, seed=5_000 + i))
        realized = float(np.mean(np.abs(df["y"] - df["prediction"])))
        e = est.estimate_frame(df, df["prediction"].to_numpy())
        inside += e["mae_low"] <= realized <= e["mae_high"]
        offs.append(e["mae"] / realized - 1)
    return {"windows": trials, "inside_interval": inside / trials, "max_abs_off": max(abs(o) for o in offs)}


def false_alarms(model: Any, pca: Any, train: pd.DataFrame) -> list[dict[str, Any]]:
    profile = build_profile(scored(model, train), NUMERIC, CATEGORICAL, prediction="prediction")
    out = []
    for size in (1_000, 5_000):
        windows = 40
        frame = scored(model, make(size * windows, seed=77 + size))
        table = pa.Table.from_pandas(frame.drop(columns=["y"]), preserve_index=False)
        options = MonitorOptions(window=str(size), prediction_column="prediction", min_window_rows=size // 2)
        res = run_monitor(table.to_batches(50_000), profile, options, extras=[multivariate_extra(pca)])
        flipped = scored(model, make(size * 5, seed=99 + size, rho=-0.8))
        flip = run_monitor(
            pa.Table.from_pandas(flipped.drop(columns=["y"]), preserve_index=False).to_batches(50_000),
            profile,
            options,
            extras=[multivariate_extra(pca)],
        )
        out.append(
            {
                "rows": size,
                "undrifted_windows": len(res.windows),
                "univariate_false_alarms": sum(w.drift_detected for w in res.windows),
                "multivariate_false_alarms": sum(
                    bool(w.multivariate and w.multivariate.exceeded) for w in res.windows
                ),
                "flip_windows": len(flip.windows),
                "flip_seen_multivariate": sum(
                    bool(w.multivariate and w.multivariate.exceeded) for w in flip.windows
                ),
                "flip_seen_univariate": sum(w.drift_detected for w in flip.windows),
            }
        )
    return out


def cost(model: Any, est: Any, pca: Any, train: pd.DataFrame, rows: int, runs: int) -> list[dict[str, Any]]:
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"estimate-current-{rows}.parquet"
    if not path.exists():
        parts = [
            scored(model, make(200_000, seed=300 + i, shift=0.3)) for i in range(max(rows // 200_000, 1))
        ]
        pq.write_table(pa.Table.from_pandas(pd.concat(parts, ignore_index=True).drop(columns=["y"])), path)
    profile = build_profile(scored(model, train), NUMERIC, CATEGORICAL, prediction="prediction")
    out = []
    variants = {
        "plain": lambda: [],
        "estimate": lambda: [estimate_extra(est)],
        "multivariate": lambda: [multivariate_extra(pca)],
        "both": lambda: [estimate_extra(est), multivariate_extra(pca)],
    }
    for window, spec in (("1 window", "all"), (f"{max(rows // 100_000, 1)} x 100,000", "100000")):
        options = MonitorOptions(window=spec, prediction_column="prediction")
        # Interleaved runs, medians; CPU seconds (all threads) beside wall seconds: on a shared machine the wall
        # clock moves with other load, the CPU time much less. Only the ratios mean something here.
        wall: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(runs):
            for name, extras in variants.items():
                t0, c0 = time.perf_counter(), time.process_time()
                run_monitor(str(path), profile, options, extras=extras())
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        w = {k: statistics.median(v) for k, v in wall.items()}
        c = {k: statistics.median(v) for k, v in cpu.items()}
        row: dict[str, Any] = {
            "rows": rows,
            "window": window,
            "monitor_s": w["plain"],
            "monitor_cpu_s": c["plain"],
        }
        for name in ("estimate", "multivariate", "both"):
            key = name if name != "both" else "estimate_and_multivariate"
            row[f"with_{key}_s"] = w[name]
            row[f"with_{key}_cpu_s"] = c[name]
            row[f"{key}_added"] = w[name] / w["plain"] - 1
            row[f"{key}_added_cpu"] = c[name] / c["plain"] - 1
        out.append(row)
    return out


def main() -> int:
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    rows = int(os.environ.get("BENCH_ROWS", "1000000"))
    model, est, pca, train, fit_seconds = fit()
    acc = accuracy(model, est)
    cal = calibration(model, est)
    fa = false_alarms(model, pca, train)
    cst = cost(model, est, pca, train, rows, runs)
    print(
        f"\nerror estimator: fitted on {int(est.reference['rows']):,} holdout rows in {fit_seconds:.1f} s; holdout "
        f"MAE realized {est.reference['realized_mae']:.3f}, estimated {est.reference['estimated_mae']:.3f}"
    )
    print(
        f"{'rows':>7} {'change':<22} {'realized':>9} {'estimated':>9} {'95% interval':>17} {'est off':>8} "
        f"{'const off':>9} {'dir':>4}"
    )
    for r in acc:
        print(
            f"{r['rows']:>7,} {r['change']:<22} {r['realized_mae']:>9.3f} {r['estimated_mae']:>9.3f} "
            f"{r['low']:>8.3f}-{r['high']:<8.3f} {r['estimate_off']:>+8.1%} {r['constant_off']:>+9.1%} "
            f"{'ok' if r['direction_ok'] else 'NO':>4}"
        )
    worst = max(abs(r["estimate_off"]) for r in acc)
    moved = [r for r in acc if abs(r["constant_off"]) > TARGETS["constant_off"]]
    followed = sum(abs(r["estimate_off"]) <= TARGETS["within"] and r["direction_ok"] for r in moved)
    print(
        f"worst |estimated/realized - 1| = {worst:.1%} (target <= 10 %); windows where the constant is off > 15 %: "
        f"{len(moved)}, estimate within 10 % and right direction on {followed}"
    )
    print(
        f"undrifted, 5,000-row windows: realized MAE inside the 95 % interval in {cal['inside_interval']:.0%} of "
        f"{cal['windows']} (max |off| {cal['max_abs_off']:.1%})"
    )
    for f in fa:
        print(
            f"false alarms on {f['undrifted_windows']} undrifted windows of {f['rows']:,} rows: univariate "
            f"{f['univariate_false_alarms']}, multivariate {f['multivariate_false_alarms']}; correlation flip "
            f"seen in {f['flip_seen_multivariate']}/{f['flip_windows']} windows "
            f"(univariate {f['flip_seen_univariate']})"
        )
    print(
        f"cost at {rows:,} rows: CPU time (all threads; wall in the JSON) as a ratio to the monitor alone, medians "
        f"of {runs} interleaved runs (target: estimate + multivariate <= x{1 + TARGETS['cost_added']:.2f})"
    )
    print(f"{'windows':<16} {'monitor':>8} {'+estimate':>10} {'+multivariate':>14} {'+both':>7}")
    for c in cst:
        print(
            f"{c['window']:<16} {1.0:>8.2f} {1 + c['estimate_added_cpu']:>10.2f} "
            f"{1 + c['multivariate_added_cpu']:>14.2f} {1 + c['estimate_and_multivariate_added_cpu']:>7.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"estimate-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "targets": TARGETS,
                "fit_seconds": fit_seconds,
                "reference": est.reference,
                "accuracy": acc,
                "calibration": cal,
                "false_alarms": fa,
                "cost": cst,
            },
            indent=1,
            default=lambda o: o.item() if hasattr(o, "item") else str(o),
        ),
        encoding="utf-8",
    )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
