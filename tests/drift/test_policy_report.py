"""The report's "what to do next" decides with the configured policy, the one `amlops loop` applies.

The setting travels as the loop's do: amlops.yaml `policy:` → job_inputs.monitoring_inputs (both targets) → the
monitor component's `policy_*` inputs → the step's `--policy-*` flags → result.json `settings.policy` → the
report. Three weekly windows of which the last two drift: the default policy (2 of the last 3 windows) says
retrain; a policy that needs 3 of 3 says no retrain, and the report says which rule it applied.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from amlops.config import PolicySettings, Settings
from amlops.drift.policy import REPORT_FIELDS, decide_on_result, recorded_policy, window_signals
from amlops.drift.report import render_html
from amlops.drift.result import MonitorResult
from amlops.job_inputs import Target, monitoring_inputs
from amlops.steps import monitor as step

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("policy")
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"day": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(6_000) % 70, unit="D")}
    ).assign(x=rng.normal(0, 1, 6_000))
    day = np.arange(3 * 7 * 300) // 300
    current = pd.DataFrame({"day": pd.Timestamp("2024-06-03") + pd.to_timedelta(day, unit="D")})
    current["x"] = rng.normal(0, 1, len(current)) + np.where(day >= 7, 1.0, 0.0)  # weeks 2 and 3 drift
    reference.to_parquet(folder / "reference.parquet", index=False)
    current.to_parquet(folder / "current.parquet", index=False)
    return folder / "reference.parquet", folder / "current.parquet"


def _run(data: tuple[Path, Path], out: Path, *flags: str) -> str:
    reference, current = data
    argv = [
        "--current",
        str(current),
        "--reference-data",
        str(reference),
        "--window",
        "weekly",
        "--timestamp-column",
        "day",
        "--output",
        str(out),
        *flags,
    ]
    assert step.main(argv) == 0
    return (out / "report.html").read_text(encoding="utf-8")


def _decision_text(html: str) -> str:
    found = re.search(r"<span id='policy-decision'>(.*?)</span>", html)
    assert found, "no policy decision in the report"
    return re.sub(r"<[^>]+>", "", found.group(1))


def test_a_configured_policy_changes_the_reports_decision(data: tuple[Path, Path], tmp_path: Path) -> None:
    default = _decision_text(_run(data, tmp_path / "default"))
    assert default.endswith("would decide: retrain.") and "default" not in default
    strict_html = _run(
        data, tmp_path / "strict", "--policy-drift-windows-n", "3", "--policy-drift-windows-m", "3"
    )
    strict = _decision_text(strict_html)
    assert strict.endswith("would decide: no retrain."), strict
    assert "2 of the last 3 windows alarmed; the policy needs 3" in strict_html
    assert "3 of the last 3 windows must alarm" in strict_html
    result = MonitorResult.read(tmp_path / "strict" / "result.json")
    policy, configured = recorded_policy(result)
    assert configured and policy.drift_windows_n == 3
    # Re-rendered from the stored result alone: the same decision.
    assert _decision_text(render_html(result)) == strict


def test_a_result_without_a_recorded_policy_says_it_used_the_defaults(
    data: tuple[Path, Path], tmp_path: Path
) -> None:
    _run(data, tmp_path / "old")
    result = MonitorResult.read(tmp_path / "old" / "result.json")
    assert result.settings.model_extra is not None
    result.settings.model_extra.pop("policy")  # as a result written before the step received the policy
    assert "default settings" in _decision_text(render_html(result))


def test_a_refused_policy_value_is_one_line_naming_the_flag(
    data: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = data
    argv = ["--current", str(current), "--reference-data", str(reference), "--output", str(tmp_path)]
    assert step.main([*argv, "--policy-min-drift-importance-share", "1.5"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --policy-min-drift-importance-share:") and "\n" not in err


def test_the_policy_settings_reach_the_monitor_inputs_on_both_targets(tmp_path: Path) -> None:
    settings = Settings(base_dir=REPO)
    settings.policy = PolicySettings(drift_windows_n=3, drift_windows_m=4, confirm_drift_with_labels=False)
    data = tmp_path / "new.csv"
    data.write_text("date,price\n2026-01-01,1\n")
    local, _ = monitoring_inputs(settings, str(data), model="m@champion")
    azure, _ = monitoring_inputs(settings, None, model="azureml:m:3", target=Target.azure)
    for inputs in (local, azure):
        assert inputs["policy_drift_windows_n"] == "3" and inputs["policy_drift_windows_m"] == "4"
        assert inputs["policy_confirm_drift_with_labels"] == "false"
        assert {f"policy_{f}" for f in REPORT_FIELDS} <= set(inputs)
    assert set(step._POLICY_ARGS) == set(REPORT_FIELDS)
    # The step parses what the inputs carry back into the same settings.
    parser_args = [
        a for k, v in local.items() if k.startswith("policy_") for a in (f"--{k.replace('_', '-')}", v)
    ]
    parsed = step.policy_from_arguments(_parse(parser_args))
    assert parsed.model_dump(include=set(REPORT_FIELDS)) == settings.policy.model_dump(
        include=set(REPORT_FIELDS)
    )


def _parse(argv: list[str]):  # type: ignore[no-untyped-def]
    import argparse

    p = argparse.ArgumentParser()
    step.add_policy_arguments(p)
    return p.parse_args(argv)


def test_the_report_reads_windows_as_the_loop_does(data: tuple[Path, Path], tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from amlops import loop

    _run(data, tmp_path / "r")
    result = MonitorResult.read(tmp_path / "r" / "result.json")
    assert (
        loop.window_signals is window_signals
    )  # one reading of a result, not two copies that can drift apart
    decision = decide_on_result(result, datetime.now(UTC))
    assert decision is not None and decision.retrain
