"""The self-contained HTML report of a monitor result: verdict, feature table, plots (inline SVG, no assets).

Rendered from the result alone (the JSON written next to it), so a report can be re-rendered from any stored
result: `render_html(MonitorResult.read("result.json"))`. Metric labels, columns and definitions come from the
metric registry (amlops.drift.metrics).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from amlops.drift import metrics as M
from amlops.drift.kinds import METADATA_KEY as COMPARED_AS_CATEGORIES
from amlops.drift.report_estimate import estimate_section
from amlops.drift.result import (
    CategoricalDistribution,
    FeatureResult,
    MonitorResult,
    NumericDistribution,
    QualityEntry,
    Verdict,
    WindowResult,
    not_judged,
)

MAX_DISTRIBUTION_PLOTS = 60
MAX_TREND_PLOTS = 8
# A discrete numeric distribution with at most this many values is drawn as bars per value.
VALUE_BARS_UP_TO = 12
# Categorical plots with at most this many bars per side write each share above its bar.
SHARE_LABELS_UP_TO = 4
# The metric names and default thresholds follow this page (also cited in amlops.drift.metrics).
AML_MONITORING_DOC = "https://learn.microsoft.com/azure/machine-learning/how-to-monitor-model-performance"
_REF_COLOR = "#6b7280"
_CUR_COLOR = "#2563eb"
_BAD = "#dc2626"
_OK = "#16a34a"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111827;
  background:#f9fafb}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 10px} .muted{color:#6b7280}
.verdict{border-radius:10px;padding:16px 20px;margin:16px 0;color:#fff}
.verdict.drift{background:#b91c1c}.verdict.no_drift{background:#15803d}
.verdict.insufficient_data{background:#6b7280}
.verdict .big{font-size:20px;font-weight:700}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:18px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb}
th,td{padding:6px 8px;border-bottom:1px solid #f1f5f9;text-align:right;white-space:nowrap}
th{background:#f3f4f6;font-weight:600;position:sticky;top:0} td.l,th.l{text-align:left}
tr.drifted td{background:#fef2f2}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.badge.yes{background:#dc2626}.badge.no{background:#16a34a}.badge.na{background:#9ca3af}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:8px}
figcaption{font-weight:600;margin:0 0 4px} .legend span{margin-right:12px}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
.heat td{text-align:center;min-width:28px;padding:4px} .heat td.l{text-align:left}
.scroll{overflow-x:auto}
code{background:#f3f4f6;padding:1px 4px;border-radius:4px}
"""


def render_html(result: MonitorResult | Mapping[str, Any]) -> str:
    if not isinstance(result, MonitorResult):
        result = MonitorResult.model_validate(result)
    v = result.verdict
    overall = result.overall
    windows = result.windows
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>Monitor report — {_e(_verdict_title(v))}</title><style>{_CSS}</style></head><body><main>",
        "<h1>amlops monitor report</h1>",
        f"<div class='muted'>Created {_e(result.created_at)} · current rows "
        f"{_int(result.current.row_count)} · reference rows {_int(result.reference.row_count)} · "
        f"window <code>{_e(result.settings.window)}</code></div>",
        _verdict(v, overall, windows),
        _next_steps(result),
        _feature_table(result),
    ]
    if windows:
        parts.append(_trend_section(result))
    parts.append(_distribution_section(result))
    parts.append(_quality_section(v))
    if windows and any(w.performance for w in windows):
        parts.append(_performance_section(windows))
    parts.append(estimate_section(result))
    parts.append(_footer(result))
    parts.append(_definitions())
    parts.append("</main></body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------------------ sections
def _verdict_title(v: Verdict) -> str:
    return {
        "drift": "Drift detected",
        "no_drift": "No drift detected",
        "insufficient_data": "Not enough data",
    }.get(v.status, v.status)


def _verdict(v: Verdict, overall: WindowResult, windows: list[WindowResult]) -> str:
    n_features = len(overall.features)
    judged = v.evaluated_window_count > 0 or (not windows and overall.judged)
    cards = [
        ("Drifted features", f"{len(v.drifted_features)} / {n_features}"),
        ("Drifted windows", f"{v.drifted_window_count} / {v.evaluated_window_count} judged"),
        ("First drifted window", v.first_drifted_window or "—"),
        ("Data-quality findings", f"{len(v.data_quality_findings)} in {_quality_features(v)} feature(s)"),
        (
            "Prediction drift",
            "n/a"
            if not overall.prediction_drift
            else "not judged"
            if not judged
            else "yes"
            if v.prediction_drift
            else "no",
        ),
    ]
    perf = v.performance
    if perf and perf.count:
        cards.append(("MAE / RMSE", f"{_fmt(perf.mae)} / {_fmt(perf.rmse)}"))
        cards.append(("MAPE", _pct(perf.mape)))
    card_html = "".join(
        f"<div class='card'><span class='muted'>{_e(k)}</span><b>{_e(val)}</b></div>" for k, val in cards
    )
    return (
        f"<section class='verdict {_e(v.status)}'><div class='big'>{_e(_verdict_title(v))}</div>"
        f"<div>{_e(v.summary)}</div></section><div class='cards'>{card_html}</div>"
    )


def _feature_table(result: MonitorResult) -> str:
    overall = result.overall
    windows = result.windows
    importance = result.reference.metadata.get("feature_importance") or {}
    drift_counts = {f: sum(1 for w in windows if f in w.drifted_features) for f in overall.features}
    evaluated = sum(1 for w in windows if w.judged)
    # One column per registered metric that some feature of the table has, in registry order.
    shown = [m for m in M.DRIFT_METRICS if any(m.name in f.metrics for f in overall.features.values())]
    head = ["Feature", "Type", "Drifted", "Deciding metric", "Threshold"]
    if windows:
        head += ["Worst window", "Windows drifted"]
    head.append("Value (all rows)")
    head += [m.label for m in shown]
    head += ["Null rate", "Out-of-bounds", "Reference → current"]
    if importance:
        head.append("Importance")
    judged = evaluated > 0 if windows else overall.judged
    as_categories = result.reference.metadata.get(COMPARED_AS_CATEGORIES) or {}
    rows = []
    missing = " <span class=muted>(missing)</span>"
    for name, f in overall.features.items():
        dec = f.deciding
        dq = f.data_quality
        s = f.summary
        if f.type == "numeric":
            shift = f"{_fmt(s.reference_mean)} → {_fmt(s.mean)} (mean)"
        else:
            shift = f"{_int(s.unseen_count or 0)} unseen values"
        cells = [
            f"<td class='l'>{_e(name)}{missing if f.missing_column else ''}</td>",
            f"<td class='l'>{_kind(name, f.type, as_categories)}</td>",
            f"<td class='l'>{_badge(f.drifted if judged else None)}</td>",
            f"<td class='l'>{_metric_link(f.deciding_metric)}</td>",
            f"<td>{_fmt(dec.threshold)}</td>",
        ]
        if windows:
            cells.append(f"<td class='worst'>{_worst_window(windows, name)}</td>")
            cells.append(f"<td>{drift_counts.get(name, 0)} / {evaluated}</td>")
        cells.append(f"<td>{_fmt(dec.value)}</td>")
        cells += [f"<td>{_fmt(f.metrics[m.name].value if m.name in f.metrics else None)}</td>" for m in shown]
        cells += [
            f"<td{_flag(dq['null_value_rate'])}>{_pct(dq['null_value_rate'].value)}</td>",
            f"<td{_flag(dq['out_of_bounds_rate'])}>{_pct(dq['out_of_bounds_rate'].value)}</td>",
            f"<td class='l'>{_e(shift)}</td>",
        ]
        if importance:
            cells.append(f"<td>{_fmt(importance.get(name))}</td>")
        rows.append(
            f"<tr class='{'drifted' if f.drifted else ''}' data-feature='{_e(name)}'>{''.join(cells)}</tr>"
        )
    pred = overall.prediction_drift
    pred_html = ""
    if pred:
        dec = pred.deciding
        pred_html = (
            f"<p id='prediction-drift'>Prediction drift (model output vs the reference's "
            f"{_e(pred.reference_role)}): {_badge(pred.drifted if judged else None)} "
            f"{_metric_link(pred.deciding_metric)} = {_fmt(dec.value)} (threshold {_fmt(dec.threshold)}).</p>"
        )
    header = "".join(
        f"<th class='l'>{_e(h)}</th>" if i < 4 else f"<th>{_e(h)}</th>" for i, h in enumerate(head)
    )
    return (
        "<h2>Features, most drifted first</h2><p class='muted'>"
        + (
            "Drifted: the feature crossed its threshold in at least one judged window (the verdict). Worst "
            "window: the judged window furthest from the reference; value (all rows): the whole current data "
            "against the reference. Numbers with at most 5 distinct values are compared as categories "
            "(<a href='#column-kinds'>why</a>)."
            if windows
            else "The whole current data against the reference. A feature is drifted when its deciding metric "
            "crosses the threshold."
        )
        + "</p>"
        f"<div class='scroll'><table id='features'><thead><tr>{header}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>{pred_html}"
    )


def _kind(name: str, kind: str, as_categories: Mapping[str, str]) -> str:
    """The feature's comparison kind; a number compared as categories says so, and why (amlops.drift.kinds)."""
    if name not in as_categories:
        return _e(kind)
    why = as_categories[name]
    return (
        f"{_e(kind)} <span class='muted' title='a number compared as the share of each value: {_e(why)} "
        f"(docs/monitor.md, Column kinds)'>(number, {_e(why)})</span>"
    )


def _worst_window(windows: list[WindowResult], name: str) -> str:
    """The judged window whose deciding metric is furthest past (or nearest to) its threshold, and its value."""
    judged = [
        (r, w)
        for w in windows
        if w.judged and name in w.features
        if (r := _ratio(w.features[name])) is not None
    ]
    if not judged:
        return "–"
    _, worst = max(judged, key=lambda rw: rw[0])
    return f"{_fmt(worst.features[name].deciding.value)} <span class='muted'>({_e(worst.window)})</span>"


def _trend_section(result: MonitorResult) -> str:
    windows = result.windows
    features = list(result.overall.features)
    # The heat table: every feature x window, shaded by metric / threshold.
    head = "".join(
        f"<th title='{_e(w.window)}'>{_e(_short(w.window, i))}</th>" for i, w in enumerate(windows)
    )
    body = []
    for name in features:
        cells = []
        for w in windows:
            f = w.features.get(name)
            if f is None:
                cells.append("<td></td>")
                continue
            color = _heat(_ratio(f), f.drifted, w.judged)
            title = f"{w.window}: {f.deciding_metric} = {_fmt(f.deciding.value)}"
            mark = "●" if f.drifted else ""
            cells.append(f"<td style='background:{color}' title='{_e(title)}'>{mark}</td>")
        body.append(f"<tr><td class='l'>{_e(name)}</td>{''.join(cells)}</tr>")
    legend = "".join(
        f"<tr><td>{i + 1}</td><td class='l'>{_e(w.window)}</td><td>{_int(w.row_count)}</td>"
        f"<td class='l'>{_e(_window_status(w, result.settings.min_window_rows))}</td>"
        f"<td class='l'>{_e(', '.join(w.drifted_features) or '—')}</td></tr>"
        for i, w in enumerate(windows)
    )
    drifted = [f for f in features if any(f in w.drifted_features for w in windows)]
    plots = []
    for name in (drifted or features)[:MAX_TREND_PLOTS]:
        xs: list[str] = []
        ys: list[float | None] = []
        thr: float | None = None
        metric: str | None = None
        for w in windows:
            f = w.features.get(name)
            if f is None:
                continue
            metric, thr = f.deciding_metric, f.deciding.threshold
            xs.append(w.window)
            ys.append(f.deciding.value)
        plots.append(
            f"<figure data-plot='trend' data-feature='{_e(name)}'>"
            f"<figcaption>{_e(name)} — {_e(metric or '')} "
            f"per window</figcaption>{_line_svg(xs, ys, thr, _is_p_value(metric), level_label='threshold')}"
            "</figure>"
        )
    return (
        "<h2>Drift over time</h2><p class='muted'>Each cell is one window; colour is the deciding metric "
        "relative to its threshold (● = drifted; grey = too few rows to judge).</p>"
        f"<div class='scroll'><table class='heat'><thead><tr><th class='l'>Feature</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
        "<details><summary>Windows</summary><table><thead><tr><th>#</th><th class='l'>Window</th>"
        "<th>Rows</th><th class='l'>Status</th><th class='l'>Drifted features</th></tr></thead>"
        f"<tbody>{legend}</tbody></table>"
        f"</details><div class='grid' style='margin-top:12px'>{''.join(plots)}</div>"
    )


def _distribution_section(result: MonitorResult) -> str:
    overall = result.overall
    names = list(overall.features)  # most drifted first
    title = "Distributions: reference vs current, every feature"
    figs = []
    for name in names[:MAX_DISTRIBUTION_PLOTS]:
        d = overall.features[name].distribution
        if d is None:
            continue
        svg = _numeric_svg(d) if isinstance(d, NumericDistribution) else _categorical_svg(d)
        mark = " " + _badge(True) if overall.features[name].drifted else ""
        figs.append(
            f"<figure data-plot='distribution' data-feature='{_e(name)}'><figcaption>{_e(name)}{mark}"
            f"</figcaption>{svg}</figure>"
        )
    pred = overall.prediction_drift
    if pred and isinstance(pred.distribution, NumericDistribution):
        figs.append(
            f"<figure data-plot='distribution' data-feature='prediction'><figcaption>model output "
            f"(vs reference {_e(pred.reference_role or '')})</figcaption>"
            f"{_numeric_svg(pred.distribution)}</figure>"
        )
    legend = (
        f"<div class='legend'><span><i class='sw' style='background:{_REF_COLOR}'></i>reference</span>"
        f"<span><i class='sw' style='background:{_CUR_COLOR}'></i>current</span></div>"
    )
    more = (
        f"<p class='muted'>{len(names) - MAX_DISTRIBUTION_PLOTS} more features in result.json.</p>"
        if len(names) > MAX_DISTRIBUTION_PLOTS
        else ""
    )
    return f"<h2 id='distributions'>{_e(title)}</h2>{legend}<div class='grid'>{''.join(figs)}</div>{more}"


def _quality_features(v: Verdict) -> int:
    return len({f.feature for f in v.data_quality_findings})


def _quality_section(v: Verdict) -> str:
    """Findings grouped per feature and metric: how many windows, the worst rate and where, the reference."""
    findings = v.data_quality_findings
    if not findings:
        return (
            "<h2 id='quality'>Data quality</h2><p>No data-quality findings (nulls, type errors, out-of-range "
            "values).</p>"
        )
    groups: dict[tuple[str, str], list[Any]] = {}
    for f in findings:
        groups.setdefault((f.feature, f.metric), []).append(f)
    rows = []
    for (feature, metric), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        worst = max(items, key=lambda f: f.value if f.value is not None else -1.0)
        windows = ", ".join(_e(f.window) for f in items)
        rows.append(
            f"<tr data-feature='{_e(feature)}'><td class='l'>{_e(feature)}</td>"
            f"<td class='l'>{_metric_link(metric)}</td><td>{len(items)}</td>"
            f"<td>{_pct(worst.value)} <span class='muted'>({_e(worst.window)})</span></td>"
            f"<td>{_pct(worst.reference)}</td><td>{_pct(worst.threshold)}</td>"
            f"<td class='l'><details><summary>{len(items)} window(s)</summary>{windows}</details></td></tr>"
        )
    return (
        "<h2 id='quality'>Data quality</h2><p class='muted'>A finding when a window's rate exceeds the "
        f"reference's rate by more than the threshold: {len(findings)} finding(s) in {len(groups)} "
        "feature/metric pair(s).</p><table id='quality-table'><thead><tr><th class='l'>Feature</th>"
        "<th class='l'>Metric</th><th>Windows</th><th>Worst rate</th><th>Reference</th><th>Threshold</th>"
        f"<th class='l'>Where</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _performance_section(windows: list[WindowResult]) -> str:
    """Error per window against the model's own holdout error (the level it was accepted at)."""
    xs = [w.window for w in windows if w.performance]
    reference = next(
        (w.performance.reference for w in windows if w.performance and w.performance.reference), None
    )
    figs = []
    for metric in ("mae", "rmse", "mape"):
        ys = [getattr(w.performance, metric) for w in windows if w.performance]
        level = (reference or {}).get(metric)
        figs.append(
            f"<figure data-plot='performance' data-metric='{metric}'><figcaption>{metric.upper()} per window"
            f"</figcaption>{_line_svg(xs, ys, level, level_label='holdout', level_is_threshold=False)}</figure>"
        )
    note = (
        "The dashed line is the model's error on its own holdout at training time."
        if reference
        else "No holdout error was stored with the model: no reference level."
    )
    return (
        "<h2 id='performance'>Model performance (labelled rows)</h2>"
        f"<p class='muted'>{note}</p><div class='grid'>{''.join(figs)}</div>"
    )


def _window_status(w: WindowResult, min_rows: int) -> str:
    return "judged" if w.judged else not_judged(w.row_count, min_rows)


def _next_steps(result: MonitorResult) -> str:
    """What the retrain policy would decide on these windows (default policy settings) and what to do next."""
    v = result.verdict
    s = result.settings
    items: list[str] = []
    if v.status == "insufficient_data":
        items.append(
            f"No window had {_int(s.min_window_rows)} rows, so nothing was judged. Monitor a longer window "
            "(<code>--window all</code> or <code>weekly</code> instead of <code>daily</code>) or lower the "
            "minimum (<code>--min-window-rows</code>, <code>monitor.min_window_rows</code>)."
        )
    decision = _policy_decision(result)
    if decision is not None:
        items.append(_decision_item(result, decision))
    if v.drifted_features:
        first = {
            f: next((w.window for w in result.windows if f in w.drifted_features), "overall")
            for f in v.drifted_features
        }
        listed = ", ".join(f"<b>{_e(f)}</b> (from {_e(first[f])})" for f in v.drifted_features)
        items.append(
            f"Drifted: {listed}. Compare their <a href='#distributions'>distributions</a>; a feature that "
            "drifts with the season or the calendar is expected, one that changed its meaning (new "
            "categories, a unit change, a broken feed) is not. Check <a href='#quality'>data quality</a> first."
        )
    if v.performance and v.performance.count:
        items.append(
            "Labels have arrived: the <a href='#performance'>error per window</a> against the holdout level "
            "tells whether the drift costs accuracy — the policy trusts it over the drift flags."
        )
    if not items:
        items.append("Nothing to do: no drift, no data-quality finding.")
    return (
        "<h2 id='next'>What to do next</h2><ul id='next-steps'>"
        + "".join(f"<li>{i}</li>" for i in items)
        + "</ul>"
    )


def _decision_item(result: MonitorResult, decision: Any) -> str:
    """The policy's decision, its reasons and the settings it used (configured, or the defaults for a result
    written before the monitor received the policy)."""
    from amlops.drift.policy import recorded_policy

    policy, configured = recorded_policy(result)
    action = "retrain" if decision.retrain else "no retrain"
    reasons = "".join(f"<li>{_e(r)}</li>" for r in decision.reasons)
    labels = (
        "drift counts only when the error rose too" if policy.confirm_drift_with_labels else "drift alone"
    )
    rule = (
        f"{policy.drift_windows_n} of the last {policy.drift_windows_m} windows must alarm; an error rise "
        f"above {policy.performance_degradation:.0%} is a loss; drifted features must carry "
        f"{policy.min_drift_importance_share:.0%} of the feature importance; with labels, {labels}"
    )
    source = "the configured <code>policy:</code> settings" if configured else "default settings"
    return (
        f"<span id='policy-decision'>The retrain policy (<code>amlops loop</code>, {source}) would decide: "
        f"<b>{action}</b>.</span><ul>{reasons}</ul><div class='muted' id='policy-rule'>Policy: {_e(rule)}. "
        "The loop also honours the cooldown since the last retrain and windows of earlier runs.</div>"
    )


def _policy_decision(result: MonitorResult) -> Any:
    """The decision of the policy recorded in the result (the configured one) on its windows, or None."""
    from datetime import UTC, datetime

    from amlops.drift.policy import decide_on_result

    return decide_on_result(result, datetime.now(UTC))


def _metric_link(name: str) -> str:
    return f"<a href='#metric-{_e(name)}'>{_e(name)}</a>"


def _footer(result: MonitorResult) -> str:
    s = result.settings
    items = "".join(f"<li><code>{_e(k)}</code>: {_fmt(v)}</li>" for k, v in s.thresholds.items())
    return (
        "<h2 id='settings'>Settings</h2>"
        f"<p>Deciding metrics: numeric {_metric_link(s.numeric_metric)}, categorical "
        f"{_metric_link(s.categorical_metric)}. Windows with fewer than {_int(s.min_window_rows)} rows are "
        "reported but not judged. p-value metrics flag drift below their threshold, all others above.</p>"
        f"<details><summary>Thresholds</summary><ul>{items}</ul></details>"
    )


def _definitions() -> str:
    """Every metric's definition, each with an anchor the tables link to (shown, not folded: a link into a
    closed <details> lands on nothing)."""
    drift = "".join(
        f"<dt id='metric-{_e(m.name)}'><code>{_e(m.name)}</code> ({_e(m.label)}; drift "
        f"{'below' if m.p_value else 'above'} the threshold)</dt><dd>{_e(m.definition)}</dd>"
        for m in M.DRIFT_METRICS
    )
    quality = "".join(
        f"<dt id='metric-{_e(q.name)}'><code>{_e(q.name)}</code></dt><dd>{_e(q.definition)}</dd>"
        for q in M.QUALITY_METRICS
    )
    kinds = (
        "<p id='column-kinds'><b>Column kinds.</b> A number column with at most 5 distinct values in the reference "
        "(a 0/1 flag) is compared as categories, the share of each value, with the categorical metric: normalized "
        "Wasserstein divides by the reference's standard deviation, which for a rare flag is tiny, so a window "
        "with none of a 1.6 % flag scores 0.127 and drifts. A schema's <code>monitor_as: numeric | "
        "categorical</code> overrides the rule (docs/monitor.md, Column kinds).</p>"
    )
    return (
        f"<section id='definitions'><h2>Metric definitions</h2><dl>{drift}{quality}</dl>{kinds}"
        f"<p class='muted'>The names and defaults are Azure ML model monitoring's (<a href='{AML_MONITORING_DOC}'>"
        "Azure ML: model monitoring</a>). Generated by amlops.</p></section>"
    )


# ------------------------------------------------------------------------------------------ SVG plots
_W, _H, _PAD_L, _PAD_B, _PAD_T, _PAD_R = 360, 180, 30, 28, 14, 10


def _numeric_svg(d: NumericDistribution) -> str:
    """Reference vs current shares per equal-width bin; the current's out-of-range shares as side bars."""
    edges = d.edges
    ref, cur = d.reference, d.current
    if len(edges) < 2:
        return "<p class='muted'>no values</p>"
    below, above = d.current_below, d.current_above
    # A few values (a flag, a count of doors) read as bars per value; a discrete column with many values (prices
    # in cents, temperatures in tenths) is summarised on equal-width bins: a value axis with round ticks.
    if d.discrete and len(edges) - 1 <= VALUE_BARS_UP_TO:
        labels = [f"{e:.3g}" for e in edges[:-1]]
        if below:
            labels, ref, cur = ["<min", *labels], [0.0, *ref], [below, *cur]
        if above:
            labels, ref, cur = [*labels, ">max"], [*ref, 0.0], [*cur, above]
        return _categorical_svg(CategoricalDistribution(categories=labels, reference=ref, current=cur))
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0
    side = 34
    plot_w = _W - _PAD_L - _PAD_R - 2 * side
    top = _nice_top(max([*ref, *cur, below, above, 1e-12]))

    def sx(x: float) -> float:
        return _PAD_L + side + (x - lo) / span * plot_w

    def sy(val: float) -> float:
        return _H - _PAD_B - val / top * (_H - _PAD_B - _PAD_T)

    share_fmt = _share_format(top)
    out = [_svg_open(), _y_axis(top, _PAD_L, share_fmt)]
    for shares, color in ((ref, _REF_COLOR), (cur, _CUR_COLOR)):
        for a, b, val in zip(edges[:-1], edges[1:], shares, strict=False):
            x0, x1 = sx(a), sx(b)
            out.append(
                f"<rect x='{x0:.1f}' y='{sy(val):.1f}' width='{max(x1 - x0, 0.6):.1f}' "
                f"height='{_H - _PAD_B - sy(val):.1f}' fill='{color}' fill-opacity='0.35'/>"
            )
        pts = []
        for a, b, val in zip(edges[:-1], edges[1:], shares, strict=False):
            pts += [f"{sx(a):.1f},{sy(val):.1f}", f"{sx(b):.1f},{sy(val):.1f}"]
        out.append(f"<polyline points='{' '.join(pts)}' fill='none' stroke='{color}' stroke-width='1.5'/>")
    # Out-of-range shares of the current data, on the same scale, at the sides.
    for share, mean, x, label in (
        (below, d.current_below_mean, _PAD_L + 3, "<min"),
        (above, d.current_above_mean, _W - _PAD_R - side + 5, ">max"),
    ):
        h = share / top * (_H - _PAD_B - _PAD_T)
        tip = f"{share:.2%} of current values {'below' if label == '<min' else 'above'} the reference range"
        if mean is not None:
            tip += f" (mean {_fmt(mean)})"
        out.append(
            f"<rect x='{x}' y='{_H - _PAD_B - h:.1f}' width='{side - 8}' height='{h:.1f}' fill='{_BAD}' "
            f"fill-opacity='0.75'><title>{_e(tip)}</title></rect>"
        )
        out.append(
            f"<text x='{x + (side - 8) / 2:.1f}' y='{_H - _PAD_B + 11}' font-size='9' text-anchor='middle'>"
            f"{_e(label)}</text>"
        )
        if share >= 0.0005:
            out.append(
                f"<text x='{x + (side - 8) / 2:.1f}' y='{max(_H - _PAD_B - h - 3, _PAD_T + 8):.1f}' "
                f"font-size='9' text-anchor='middle' fill='{_BAD}'>{share:.1%}</text>"
            )
    ticks = _nice_ticks(lo, hi)
    out.append(_x_labels([(sx(t), _fmt(t)) for t in ticks]))
    out.append("</svg>")
    return "".join(out)


def _categorical_svg(d: CategoricalDistribution) -> str:
    cats, ref, cur = d.categories, d.reference, d.current
    n = len(cats)
    if n == 0:
        return "<p class='muted'>no values</p>"
    top = _nice_top(max([*ref, *cur, 1e-12]))
    plot_w = _W - _PAD_L - _PAD_R
    group = plot_w / n
    bar = max(group * 0.38, 1.0)
    # As many labels as fit (about 8 characters each); every bar keeps its name in its tooltip.
    labelled = set(_tick_indices(n, most=max(2, int(plot_w // 44))))
    out = [_svg_open(), _y_axis(top, _PAD_L, _share_format(top))]
    for i, (name, r, c) in enumerate(zip(cats, ref, cur, strict=False)):
        x = _PAD_L + i * group + group * 0.1
        for j, (val, color) in enumerate(((r, _REF_COLOR), (c, _CUR_COLOR))):
            h = val / top * (_H - _PAD_B - _PAD_T)
            out.append(
                f"<rect x='{x + j * bar:.1f}' y='{_H - _PAD_B - h:.1f}' width='{bar:.1f}' height='{h:.1f}' "
                f"fill='{color}'><title>{_e(name)}: {'reference' if j == 0 else 'current'} {val:.1%}</title>"
                "</rect>"
            )
            if n <= SHARE_LABELS_UP_TO:
                # A rare value (a flag's 1) is a sliver beside its 98 % partner: its share is written out.
                out.append(
                    f"<text class='share' x='{x + (j + 0.5) * bar:.1f}' y='{_H - _PAD_B - h - 3:.1f}' "
                    f"font-size='8' text-anchor='middle' fill='{color}'>{_share_label(val)}</text>"
                )
        if i not in labelled:
            continue
        label = name if len(name) <= 8 else name[:7] + "…"
        out.append(
            f"<text x='{x + bar:.1f}' y='{_H - _PAD_B + 12}' font-size='9' text-anchor='middle'>{_e(label)}"
            "</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _share_label(share: float) -> str:
    if share <= 0:
        return "0"
    if share < 0.001:
        return "<0.1%"
    return f"{share:.1%}" if share < 0.1 else f"{share:.0%}"


def _line_svg(
    xs: list[str],
    ys: list[float | None],
    threshold: float | None,
    below_is_bad: bool = False,
    *,
    level_label: str = "threshold",
    level_is_threshold: bool = True,
) -> str:
    """A value per window with a y-axis and a dashed level line: the drift threshold (points on its drift side,
    below it for a p-value, in red) or a reference level such as the holdout error (drawn, not judged)."""
    vals = [y for y in ys if y is not None and math.isfinite(y)]
    if not vals:
        return "<p class='muted'>no values</p>"
    level = threshold if threshold is not None and math.isfinite(threshold) else None
    top = _nice_top(max([*vals, level or 0.0]) * 1.05)
    n = len(xs)
    left = _PAD_L + 14
    plot_w = _W - left - _PAD_R

    def sx(i: int) -> float:
        return left + (i / (n - 1) if n > 1 else 0.5) * plot_w

    def sy(val: float) -> float:
        return _H - _PAD_B - val / top * (_H - _PAD_B - _PAD_T)

    out = [_svg_open(), _y_axis(top, left, lambda v: _fmt(v))]
    if level is not None:
        color = _BAD if level_is_threshold else _REF_COLOR
        out.append(
            f"<line x1='{left}' x2='{_W - _PAD_R}' y1='{sy(level):.1f}' y2='{sy(level):.1f}' stroke='{color}' "
            f"stroke-dasharray='4 3'><title>{_e(level_label)} {_fmt(level)}</title></line>"
            f"<text x='{_W - _PAD_R}' y='{sy(level) - 3:.1f}' font-size='9' text-anchor='end' fill='{color}'>"
            f"{_e(level_label)} {_fmt(level)}</text>"
        )
    pts = [(sx(i), sy(y), xs[i], y) for i, y in enumerate(ys) if y is not None and math.isfinite(y)]
    out.append(
        f"<polyline points='{' '.join(f'{x:.1f},{y:.1f}' for x, y, _, _ in pts)}' fill='none' "
        f"stroke='{_CUR_COLOR}' stroke-width='1.8'/>"
    )
    for x, y, label, val in pts:
        bad = level_is_threshold and level is not None and (val < level if below_is_bad else val > level)
        color = _BAD if bad else _CUR_COLOR
        out.append(
            f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.6' fill='{color}'><title>{_e(label)}: {_fmt(val)}"
            "</title></circle>"
        )
    out.append(_x_labels([(sx(i), _short(xs[i], i)) for i in _tick_indices(n)]))
    out.append("</svg>")
    return "".join(out)


def _share_format(top: float) -> Any:
    return (lambda v: f"{v:.0%}") if top >= 0.05 else (lambda v: f"{v:.1%}")


def _tick_indices(n: int, most: int = 5) -> list[int]:
    """First, last and evenly spaced windows between: at most `most` labels, never overlapping."""
    if n <= most:
        return list(range(n))
    step = (n - 1) / (most - 1)
    return sorted({round(i * step) for i in range(most)})


def _nice_top(x: float) -> float:
    """The smallest 1/2/2.5/5 x 10^k at or above x: round axis ends people can read."""
    if x <= 0 or not math.isfinite(x):
        return 1.0
    exp = math.floor(math.log10(x))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10**exp >= x * 0.999:
            return m * 10**exp
    return 10.0 ** (exp + 1)


def _nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round tick values inside [lo, hi] (at most `most`)."""
    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo]
    raw = span / (most - 1)
    exp = math.floor(math.log10(raw))
    step = next(m * 10**exp for m in (1, 2, 2.5, 5, 10) if m * 10**exp >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _y_axis(top: float, left: float, fmt: Any) -> str:
    """The y-axis with three labelled ticks (0, half, top) and light grid lines."""
    y0 = _H - _PAD_B
    out = [f"<line x1='{left}' x2='{left}' y1='{_PAD_T}' y2='{y0}' stroke='#9ca3af'/>"]
    for frac in (0.0, 0.5, 1.0):
        y = y0 - frac * (y0 - _PAD_T)
        out.append(
            f"<line x1='{left}' x2='{_W - _PAD_R}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eef0f3'/>"
            f"<text x='{left - 3}' y='{y + 3:.1f}' font-size='9' text-anchor='end' fill='#374151'>"
            f"{_e(fmt(top * frac))}</text>"
        )
    out.append(f"<line x1='{left}' x2='{_W - _PAD_R}' y1='{y0}' y2='{y0}' stroke='#9ca3af'/>")
    return "".join(out)


def _x_labels(ticks: list[tuple[float, str]]) -> str:
    return "".join(
        f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{_H - _PAD_B}' y2='{_H - _PAD_B + 3}' stroke='#9ca3af'/>"
        f"<text x='{x:.1f}' y='{_H - _PAD_B + 13}' font-size='9' text-anchor='middle' fill='#374151'>"
        f"{_e(label)}</text>"
        for x, label in ticks
    )


def _svg_open() -> str:
    return f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {_W} {_H}' width='100%' role='img'>"


# ------------------------------------------------------------------------------------------ formatting
def _short(window: str, i: int) -> str:
    """A column label for a window: 2024-W05 -> W05, 2024-01-29 -> 01-29, row blocks by number."""
    return window.split("-", 1)[1] if window[:4].isdigit() and "-" in window else str(i + 1)


def _is_p_value(metric: str | None) -> bool:
    return metric is not None and M.drift_metric(metric).p_value


def _ratio(f: FeatureResult) -> float | None:
    v, t = f.deciding.value, f.deciding.threshold
    if v is None or not t:
        return None
    if M.drift_metric(f.deciding_metric).p_value:
        return t / v if v > 0 else 10.0
    return float(v) / float(t)


def _heat(ratio: float | None, drifted: bool, judged: bool) -> str:
    if ratio is None or not judged:
        return "#e5e7eb"
    r = max(0.0, min(ratio, 2.0)) / 2.0  # 0 .. threshold .. 2x threshold
    if drifted:
        return f"rgba(220,38,38,{0.35 + 0.6 * r:.2f})"
    return f"rgba(37,99,235,{0.08 + 0.4 * r:.2f})"


def _badge(drifted: bool | None) -> str:
    if drifted is None:
        return "<span class='badge na'>n/a</span>"
    return "<span class='badge yes'>drift</span>" if drifted else "<span class='badge no'>ok</span>"


def _flag(entry: QualityEntry) -> str:
    return f" style='color:{_BAD};font-weight:600'" if entry.exceeded else ""


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, int | float):
        if not math.isfinite(x):
            return "—"
        if x == 0:
            return "0"
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.3g}"
        return f"{x:.4g}"
    return str(x)


def _pct(x: Any) -> str:
    if x is None or not isinstance(x, int | float) or not math.isfinite(x):
        return "—"
    return f"{x:.2%}" if x >= 0.0001 or x == 0 else f"{x:.4%}"


def _int(x: Any) -> str:
    return f"{int(x):,}" if isinstance(x, int | float) else "—"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)
