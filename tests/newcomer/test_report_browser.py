"""The monitor's HTML report in a real browser (headless Chromium): no console error, and what a user reads.

Key elements are read as rendered (`innerText`): the verdict, the cards that must agree with the tables, the
next steps, a distribution for every feature, y-axes on the line charts, the data-quality findings grouped per
feature, and in-page links that land somewhere. A planted console error proves the error check can fail.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from browser import BROWSER, render

from amlops.config import PolicySettings
from amlops.data.generate import GeneratorConfig, generate
from amlops.drift.kinds import with_comparison_kinds
from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.policy import record_policy
from amlops.drift.profile import build_profile
from amlops.drift.report import render_html
from amlops.drift.result import MonitorResult

pytestmark = pytest.mark.skipif(
    BROWSER is None and os.environ.get("AMLOPS_REQUIRE_BROWSER") != "1",
    reason="chromium is not installed: `make tools` installs it with apt-get (root); "
    "set AMLOPS_REQUIRE_BROWSER=1 to fail instead",
)

NUMERIC = ["price", "promotion", "temperature", "holiday"]
CATEGORICAL = ["store_id", "store_type", "product_id", "product_category"]
SELECTORS = {
    "verdict": "section.verdict",
    "cards": ".card",
    "next": "#next-steps",
    "feature_rows": "#features tbody tr",
    "prediction": "#prediction-drift",
    "distributions": "figure[data-plot=distribution] figcaption",
    "trend_axes": "figure[data-plot=trend] svg",
    "performance": "figure[data-plot=performance]",
    "quality_rows": "#quality-table tbody tr",
    "definitions": "#definitions",
    "policy": "#policy-decision",
    "holiday_row": "#features tr[data-feature=holiday]",
    "holiday_plot": "figure[data-plot=distribution][data-feature=holiday]",
    "price_labels": "figure[data-plot=distribution][data-feature=price] svg text",
}


def _result(drift: bool = True, min_window_rows: int = 500) -> MonitorResult:
    """A weekly monitor of eight weeks, with predictions, labels and the holdout error the model was accepted at."""
    full = generate(
        GeneratorConfig(
            days=245, drift_date=date(2024, 7, 1) if drift else None, drifts=("price_shift",) if drift else ()
        )
    )
    full["prediction"] = full["units_sold"] * 0.9 + 1.0
    ref = full[full["date"] < "2024-05-06"]
    current = full[full["date"] >= "2024-06-03"]
    profile = build_profile(
        ref,
        NUMERIC,
        CATEGORICAL,
        target="units_sold",
        prediction="prediction",
        metadata={
            "performance": {"mae": 2.5, "rmse": 3.5, "mape": 0.3},
            "feature_importance": {"price": 0.5},
        },
    )
    options = MonitorOptions(
        window="weekly",
        timestamp_column="date",
        label_column="units_sold",
        prediction_column="prediction",
        min_window_rows=min_window_rows,
    )
    # As the monitor step compares them (amlops.drift.kinds) and with the policy it records.
    result = run_monitor(
        [pa.Table.from_pandas(current, preserve_index=False)], with_comparison_kinds(profile), options
    )
    record_policy(result, PolicySettings())
    return result


@pytest.fixture(scope="module")
def drifted() -> MonitorResult:
    return _result()


def _cards(seen: list[str]) -> dict[str, str]:
    return dict(tuple(c.split("\n", 1)) for c in seen)  # type: ignore[misc]


def test_the_report_reads_right_in_a_browser(drifted: MonitorResult, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    page = render(render_html(drifted), SELECTORS, tmp_path, screenshot=shot)
    assert page.errors == [], page.errors
    assert page.broken_links == [], page.broken_links
    assert shot.stat().st_size > 10_000
    seen = page.text
    assert seen["verdict"][0].startswith("Drift detected") and "price (from 2024-W27)" in seen["verdict"][0]
    cards = _cards(seen["cards"])
    # Cards agree with the tables: drifted-feature count = drift badges, prediction card = prediction row.
    drift_rows = [r for r in seen["feature_rows"] if "\tdrift\t" in r]
    assert cards["Drifted features"] == f"{len(drift_rows)} / {len(seen['feature_rows'])}"
    assert ("drift" in seen["prediction"][0]) == (cards["Prediction drift"] == "yes")
    assert "price" in seen["next"][0] and "would decide" in seen["next"][0]
    # A distribution for every feature, and the prediction.
    captions = {c.split("\n")[0].replace("drift", "").strip() for c in seen["distributions"]}
    assert set(NUMERIC + CATEGORICAL) <= captions
    # Line charts carry a y-axis (tick labels) and performance charts the holdout level.
    assert all(t.strip() for t in seen["trend_axes"]), "a trend chart without axis labels"
    assert all("holdout" in p for p in seen["performance"]), seen["performance"]
    # Data quality: one row per feature and metric, not one per window.
    keys = [tuple(r.split("\t")[:2]) for r in seen["quality_rows"]]
    assert len(keys) == len(set(keys)) and len(keys) <= 2 * (len(NUMERIC) + len(CATEGORICAL))
    assert "normalized_wasserstein_distance" in seen["definitions"][0]
    assert "would decide" in seen["policy"][0] and "configured" in seen["policy"][0]
    # A 0/1 column: compared as categories, says so, and its rare value's share is written out (a 1.6 % bar
    # beside a 98 % one is a sliver); it drifts only in the week of 4 July.
    holiday = seen["holiday_row"][0]
    assert "categorical (number, 2 distinct values)" in holiday and "(2024-W27)" in holiday, holiday
    assert "1.6%" in seen["holiday_plot"][0], seen["holiday_plot"]
    # Prices (many values in cents) are drawn on a value axis with round ticks, not one label per bin.
    ticks = [t for t in seen["price_labels"] if t and not t.endswith("%") and t not in ("<min", ">max")]
    assert len(ticks) >= 3 and all(float(t) == round(float(t), 1) for t in ticks), seen["price_labels"]


def test_a_window_below_the_minimum_is_not_judged_never_ok(tmp_path: Path) -> None:
    result = _result(min_window_rows=5000)
    assert result.verdict.status == "insufficient_data"
    assert result.overall.drift_detected == result.verdict.drift_detected  # result.json agrees with itself
    page = render(render_html(result), SELECTORS, tmp_path)
    assert page.errors == []
    assert "--min-window-rows" in page.text["verdict"][0] and "1,400 < 5,000" in page.text["verdict"][0]
    assert _cards(page.text["cards"])["Prediction drift"] == "not judged"
    assert all("\tok\t" not in r for r in page.text["feature_rows"]), page.text["feature_rows"]
    assert "not judged" in page.text["next"][0] or "nothing was judged" in page.text["next"][0]


def test_a_planted_console_error_fails_the_check(drifted: MonitorResult, tmp_path: Path) -> None:
    html = render_html(drifted).replace("</main>", "<script>console.error('planted')</script></main>")
    html = html.replace("</main>", "<img src='missing-plot.png' alt=''></main>")
    page = render(html, SELECTORS, tmp_path)
    assert "planted" in page.errors and any("missing-plot.png" in e for e in page.errors), page.errors


def test_a_planted_broken_link_is_found(drifted: MonitorResult, tmp_path: Path) -> None:
    html = render_html(drifted).replace("</main>", "<a href='#nowhere'>x</a></main>")
    assert render(html, SELECTORS, tmp_path).broken_links == ["#nowhere"]


def test_the_report_of_the_data_frame_path_has_no_unknown_columns() -> None:
    """The report is rendered from the result alone: a stored result.json re-renders the same page."""
    result = _result(drift=False)
    again = MonitorResult.model_validate_json(result.to_json())
    assert render_html(again).replace(again.created_at, "") == render_html(result).replace(
        result.created_at, ""
    )
    assert isinstance(pd.Timestamp(result.created_at), pd.Timestamp)
