"""The HTML report a person reads: verdict, drifted features in the table, plots inline, nothing external."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pandas as pd
import pyarrow as pa

from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.profile import ReferenceProfile
from amlops.drift.report import render_html


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self.svgs = 0
        self.figures: list[dict[str, str]] = []
        self.external: list[str] = []
        self._in_table = False
        self._row: dict[str, str] | None = None
        self._cells: list[str] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table" and a.get("id") == "features":
            self._in_table = True
        if self._in_table and tag == "tr" and "data-feature" in a:
            self._row = a
            self._cells = []
        if self._row is not None and tag == "td":
            self._text = []
        if tag == "svg":
            self.svgs += 1
        if tag == "figure":
            self.figures.append(a)
        for key in ("src", "href"):
            if a.get(key) and not (tag == "a" and key == "href"):  # links are navigation, not resources
                self.external.append(a[key])

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._row is not None and tag == "td":
            self._cells.append("".join(self._text).strip())
        if self._row is not None and tag == "tr":
            self.rows.append(
                {
                    "feature": self._row["data-feature"],
                    "class": self._row.get("class", ""),
                    "cells": " | ".join(self._cells),
                }
            )
            self._row = None
        if tag == "table":
            self._in_table = False


def _render(frame: pd.DataFrame, profile: ReferenceProfile) -> tuple[dict, str, _Collect]:
    opts = MonitorOptions(window="weekly", timestamp_column="date", prediction_column="prediction")
    result = run_monitor([pa.Table.from_pandas(frame, preserve_index=False)], profile, opts)
    page = render_html(result)
    parsed = _Collect()
    parsed.feed(page)
    return result, page, parsed


def test_report_shows_the_drift(drifted_frame: pd.DataFrame, reference_profile: ReferenceProfile) -> None:
    result, page, parsed = _render(drifted_frame, reference_profile)
    assert "Drift detected" in page
    assert "(from 2024-W03)" in page  # when each drifted feature first drifted
    # The feature table lists every feature, drifted ones first and marked.
    order = [r["feature"] for r in parsed.rows]
    assert set(order) == set(result["overall"]["features"])
    drifted = set(result["verdict"]["drifted_features"])
    assert set(order[: len(drifted)]) == drifted == {"x1", "price", "promo"}
    for row in parsed.rows:
        assert ("drifted" in row["class"]) == (row["feature"] in drifted)
        assert ("drift" in row["cells"].split(" | ")[2]) == (row["feature"] in drifted)
    # Distribution plots for each drifted feature, a metric-per-window plot for each, all inline SVG.
    dist = {f["data-feature"] for f in parsed.figures if f.get("data-plot") == "distribution"}
    trend = {f["data-feature"] for f in parsed.figures if f.get("data-plot") == "trend"}
    assert drifted <= dist and drifted <= trend
    assert parsed.svgs >= len(dist) + len(trend)
    assert "Drift over time" in page and "2024-W04" in page


def test_report_for_clean_data(clean_frame: pd.DataFrame, reference_profile: ReferenceProfile) -> None:
    _, page, parsed = _render(clean_frame, reference_profile)
    assert "No drift detected" in page
    assert not any("drifted" in r["class"] for r in parsed.rows)
    assert any(f.get("data-plot") == "distribution" for f in parsed.figures)


def test_report_is_self_contained(drifted_frame: pd.DataFrame, reference_profile: ReferenceProfile) -> None:
    _, page, parsed = _render(drifted_frame, reference_profile)
    assert parsed.external == []  # no linked scripts, styles or images
    assert not re.search(r"<(script|link|img)\b", page)
    assert "http://www.w3.org/2000/svg" in page  # only the SVG namespace


def test_feature_names_are_escaped(reference_profile: ReferenceProfile) -> None:
    from amlops.drift.profile import build_profile

    frame = pd.DataFrame({"<b>x</b>": [1.0, 2.0, 3.0] * 300})
    profile = build_profile(frame, ["<b>x</b>"], [])
    result = run_monitor([pa.Table.from_pandas(frame)], profile, MonitorOptions())
    page = render_html(result)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
