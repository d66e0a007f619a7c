"""The report's "estimated vs realized error" section: per window the MAE/RMSE estimated without labels (with its
95 % interval) beside the error measured from labels, where they exist. Self-contained (its own small SVG), so
the report module only calls `estimate_section(result)`."""

from __future__ import annotations

import html
import math

from amlops.drift.result import MonitorResult, WindowResult

_W, _H, _L, _B, _T, _R = 520, 200, 44, 30, 12, 10


def estimate_section(result: MonitorResult) -> str:
    """HTML for the label-free sections (estimated error, multivariate drift); "" when there is neither."""
    return _estimated(result) + _multivariate(result)


def _multivariate(result: MonitorResult) -> str:
    windows = [w for w in (result.windows or [result.overall]) if w.multivariate is not None]
    if not windows:
        return ""
    rows = "".join(
        f"<tr{' class=drift' if m.exceeded else ''}><td>{html.escape(w.window)}</td><td>{_n(m.count, 0)}</td>"
        f"<td>{_n(m.value)}</td><td>{_n(m.reference)}</td><td>{_n(m.threshold)}</td>"
        f"<td>{'drift' if m.exceeded else 'ok'}</td></tr>"
        for w in windows
        if (m := w.multivariate) is not None
    )
    return (
        "<h2 id='multivariate'>Multivariate drift (PCA reconstruction error)</h2>"
        "<p>The numeric features are projected on the reference's main components and back; a change in how "
        "they move together raises the reconstruction error even when every column's own distribution holds. "
        "Reported beside the per-feature drift; the verdict and the policy rest on the per-feature metrics.</p>"
        "<table><thead><tr><th>window</th><th>rows</th><th>error</th><th>reference</th><th>alarm above</th>"
        f"<th></th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _estimated(result: MonitorResult) -> str:
    windows = [w for w in (result.windows or [result.overall]) if w.estimated_performance is not None]
    if not windows:
        return ""
    est = windows[0].estimated_performance
    ref = (est.reference if est is not None else None) or {}
    figs = "".join(
        f"<figure data-plot='estimated-{metric}'><figcaption>{metric.upper()} per window: estimated "
        f"(line, 95 % band) vs measured (dots)</figcaption>{_svg(windows, metric)}</figure>"
        for metric in ("mae", "rmse")
    )
    rows = "".join(_row(w) for w in windows)
    level = ""
    if ref:
        level = (
            f"<p class='muted'>Estimator's level on the champion's holdout ({_n(ref.get('rows'), 0)} rows): "
            f"MAE realized {_n(ref.get('realized_mae'))}, estimated {_n(ref.get('estimated_mae'))}; RMSE "
            f"realized {_n(ref.get('realized_rmse'))}, estimated {_n(ref.get('estimated_rmse'))}.</p>"
        )
    return (
        "<h2 id='estimated-performance'>Estimated performance (before labels)</h2>"
        "<p>Direct loss estimation: a model fitted on labelled rows the champion did not train on (its holdout "
        "and, for smaller data, its training rows predicted out of fold) predicts each row's absolute and "
        "squared error from its features and prediction; a window's MAE/RMSE is estimated without labels. It "
        "follows covariate shift inside the region those rows covered; it cannot see concept drift nor the "
        "error in regions the model never saw. Labels, when they come, overrule it.</p>"
        f"{level}<div class='grid'>{figs}</div>"
        "<table><thead><tr><th>window</th><th>rows</th><th>estimated MAE (95 %)</th><th>measured MAE</th>"
        "<th>estimated RMSE (95 %)</th><th>measured RMSE</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _row(w: WindowResult) -> str:
    e = w.estimated_performance
    assert e is not None
    p = w.performance
    measured_mae = _n(p.mae) if p is not None and p.count else "—"
    measured_rmse = _n(p.rmse) if p is not None and p.count else "—"
    return (
        f"<tr><td>{html.escape(w.window)}</td><td>{_n(w.row_count, 0)}</td>"
        f"<td>{_n(e.mae)} ({_n(e.mae_low)}–{_n(e.mae_high)})</td><td>{measured_mae}</td>"
        f"<td>{_n(e.rmse)} ({_n(e.rmse_low)}–{_n(e.rmse_high)})</td><td>{measured_rmse}</td></tr>"
    )


def _n(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:,.0f}" if digits == 0 else f"{x:.{digits}g}"


def _svg(windows: list[WindowResult], metric: str) -> str:
    est = [w.estimated_performance for w in windows]
    mid = [getattr(e, metric) if e else None for e in est]
    low = [getattr(e, f"{metric}_low") if e else None for e in est]
    high = [getattr(e, f"{metric}_high") if e else None for e in est]
    measured = [
        getattr(w.performance, metric) if w.performance is not None and w.performance.count else None
        for w in windows
    ]
    values = [v for v in [*low, *high, *mid, *measured] if v is not None and math.isfinite(v)]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or max(abs(hi), 1.0)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    n = len(windows)

    def x(i: int) -> float:
        return _L + (_W - _L - _R) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return _T + (_H - _T - _B) * (1 - (v - lo) / (hi - lo))

    band_pts = [(x(i), y(v)) for i, v in enumerate(high) if v is not None]
    band_pts += [(x(i), y(v)) for i, v in reversed(list(enumerate(low))) if v is not None]
    parts = [f"<svg viewBox='0 0 {_W} {_H}' width='100%' role='img' xmlns='http://www.w3.org/2000/svg'>"]
    if band_pts:
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in band_pts)
        parts.append(f"<polygon points='{pts}' fill='#4c6ef5' fill-opacity='0.18' stroke='none'/>")
    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(mid) if v is not None)
    if line:
        parts.append(f"<polyline points='{line}' fill='none' stroke='#364fc7' stroke-width='1.8'/>")
    for i, v in enumerate(measured):
        if v is not None and math.isfinite(v):
            parts.append(
                f"<circle cx='{x(i):.1f}' cy='{y(v):.1f}' r='3' fill='#e8590c'>"
                f"<title>{html.escape(windows[i].window)}: measured {v:.4g}</title></circle>"
            )
    for v in (lo + 0.08 * span / 1.16, hi - 0.08 * span / 1.16):
        parts.append(f"<text x='2' y='{y(v) + 4:.1f}' font-size='10' fill='#495057'>{v:.3g}</text>")
    parts.append(
        f"<text x='{_L}' y='{_H - 8}' font-size='10' fill='#495057'>{html.escape(windows[0].window)}</text>"
    )
    if n > 1:
        parts.append(
            f"<text x='{_W - _R}' y='{_H - 8}' font-size='10' fill='#495057' text-anchor='end'>"
            f"{html.escape(windows[-1].window)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
