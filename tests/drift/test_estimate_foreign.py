"""Foreign data: a labelled, scored reference fits the error estimator on the fly; the report and the CLI table
show estimated vs measured error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amlops.drift.estimate import ESTIMATOR_FILE
from amlops.drift.report import render_html
from amlops.steps.monitor import monitor


def frame(n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, n)
    seg = rng.choice(["a", "b"], n)
    y = 2.0 * x1 + rng.normal(0.0, 0.3 + np.abs(x1) * np.where(seg == "a", 2.0, 1.0))
    return pd.DataFrame({"x1": x1, "seg": seg, "prediction": 2.0 * x1, "label": y})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("foreign")
    frame(8_000, 1, 0.0).to_parquet(root / "ref.parquet", index=False)
    current = pd.concat([frame(6_000, 2, 0.0), frame(6_000, 3, 1.5)], ignore_index=True)
    current.drop(columns=["label"]).to_parquet(root / "cur.parquet", index=False)
    monitor(
        str(root / "cur.parquet"),
        root / "out",
        reference_data=str(root / "ref.parquet"),
        window="6000",
        prediction_column="prediction",
        label_column="label",
    )
    return root, current


def test_a_labelled_reference_fits_the_estimator_on_the_fly(run: tuple[Path, pd.DataFrame]) -> None:
    root, current = run
    assert (root / "out" / ESTIMATOR_FILE).is_file()
    result = json.loads((root / "out" / "result.json").read_text())
    windows = result["windows"]
    assert len(windows) == 2
    for i, w in enumerate(windows):
        rows = current.iloc[i * 6000 : (i + 1) * 6000]
        realized = float(np.mean(np.abs(rows["label"] - rows["prediction"])))
        assert w["estimated_performance"]["mae"] == pytest.approx(realized, rel=0.10)
    assert windows[1]["estimated_performance"]["mae"] > 1.3 * windows[0]["estimated_performance"]["mae"]


def test_the_report_shows_estimated_vs_measured(run: tuple[Path, pd.DataFrame]) -> None:
    from amlops.drift.result import MonitorResult

    root, _ = run
    result = MonitorResult.read(root / "out")
    page = render_html(result)
    assert "Estimated performance (before labels)" in page
    assert page.count("data-plot='estimated-") == 2
    # Without the estimate the section is absent, not empty.
    bare = result.model_copy(
        update={
            "windows": [w.model_copy(update={"estimated_performance": None}) for w in result.windows],
            "overall": result.overall.model_copy(update={"estimated_performance": None}),
        }
    )
    assert "Estimated performance" not in render_html(bare)


def test_the_cli_table_lists_the_estimate(
    run: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    from amlops.commands.monitor import print_summary
    from amlops.drift.result import MonitorResult

    root, _ = run
    print_summary(MonitorResult.read(root / "out"), root / "out" / "report.html")
    text = capsys.readouterr().out
    assert "estimated without labels" in text
    assert "rows 0-5999" in text


def test_a_reference_without_labels_gives_no_estimate(tmp_path: Path) -> None:
    frame(3_000, 1, 0.0).drop(columns=["label"]).to_parquet(tmp_path / "ref.parquet", index=False)
    frame(3_000, 2, 0.0).drop(columns=["label"]).to_parquet(tmp_path / "cur.parquet", index=False)
    result = monitor(
        str(tmp_path / "cur.parquet"),
        tmp_path / "out",
        reference_data=str(tmp_path / "ref.parquet"),
        prediction_column="prediction",
        label_column="label",
    )
    assert result.overall.estimated_performance is None
    assert not (tmp_path / "out" / ESTIMATOR_FILE).exists()
