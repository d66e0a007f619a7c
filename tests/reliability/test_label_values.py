"""Session 4 hostile pass: late labels that are empty or infinite. The monitor leaves them out of the
performance figures, but said nothing: the label report counted them as joined rows (`rows_joined` 600,
`rows_without_label` 0) while the MAE rested on fewer rows, and no warning named them. Issue 15 asks that labels
which cannot be used are "a warning in the result, not silence"."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from amlops.drift.monitor import MonitorOptions, load_labels, run_monitor
from amlops.drift.profile import ReferenceProfile, build_profile

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from drift.conftest import CATEGORICAL, NUMERIC, make_frame  # noqa: E402


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    return build_profile(
        make_frame(5_000, seed=1), NUMERIC, CATEGORICAL, target="units_sold", prediction="prediction"
    )


@pytest.mark.parametrize(("value", "shown"), [(np.inf, "inf"), (np.nan, "")], ids=["infinite", "empty"])
def test_unusable_label_values_are_a_warning(
    tmp_path: Path, profile: ReferenceProfile, value: float, shown: str
) -> None:
    current = make_frame(1_000, seed=2)
    labels = current[["row_id", "units_sold"]].astype({"units_sold": "float64"})
    labels.loc[labels.index[:40], "units_sold"] = value
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False, na_rep=shown)
    before = path.read_bytes()

    series = load_labels(str(path), "row_id", "units_sold")
    table = pa.Table.from_pandas(current.drop(columns=["units_sold"]), preserve_index=False)
    opts = MonitorOptions(  # type: ignore[arg-type]
        window="all", id_column="row_id", prediction_column="prediction", label_column="units_sold"
    )
    result = run_monitor([table], profile, opts, labels=series)

    assert result.verdict.performance is not None
    assert result.verdict.performance.count == 960  # the 40 unusable labels are not measured
    extra = result.model_extra or {}
    report = extra["labels"]
    assert report["rows_joined"] == 960, report  # rows with a usable label, as the count says
    warnings = extra["warnings"]
    assert any("40 label value(s)" in w for w in warnings), warnings
    assert path.read_bytes() == before
