"""`amlops loop`: the command the monitor workflow runs. Its flags, its interval parsing, its GitHub handover."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from amlops.cli import app
from amlops.drift.policy import Decision
from amlops.errors import UsageError, UserError
from amlops.loop import parse_every, write_github_output


def loop(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["loop", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90.0), ("15m", 900.0), (" 1.5h ", 5400.0), ("1d", 86400.0)]
)
def test_every_parses_units(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"), [("10", "expected a number with s, m, h or d"), ("5s", "at least 60s")]
)
def test_every_refuses_nonsense_and_busy_loops(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_every(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of --once or --every INTERVAL"),
        (("--once", "--every", "1h"), "give exactly one of --once or --every INTERVAL"),
        (("--once",), "--current is required for --target local"),
        (("--once", "--current", "x", "--retrain-via", "github"), "--target local retrains locally"),
        (("--once", "--target", "azure", "--retrain-via", "local"), "--target azure retrains on Azure ML"),
        (("--every", "1s", "--current", "x"), "at least 60s between cycles"),
    ],
)
def test_contradictory_flags_are_usage_errors(
    args: tuple[str, ...], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, output = loop(*args)
    assert code == 2 and message in output


def test_github_output_is_one_line_per_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out"
    monkeypatch.setenv("GITHUB_OUTPUT", str(target))
    decision = Decision("retrain", ["2 of 3 windows alarmed:\nprice drift\r\n and loss"], "v3-w1-w2")
    write_github_output(decision)
    lines = target.read_text().splitlines()
    assert lines == [
        "retrain=true",
        "reason=2 of 3 windows alarmed: price drift and loss",
        "dedupe_key=v3-w1-w2",
    ]
    write_github_output(Decision("none", [], "k"))  # appends, as GitHub expects
    assert target.read_text().splitlines()[3:5] == ["retrain=false", "reason="]


def test_github_handover_outside_actions_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    with pytest.raises(UsageError, match=r"needs \$GITHUB_OUTPUT"):
        write_github_output(Decision("retrain", ["x"], "k"))


def demo_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["demo", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_demo_weeks_has_an_upper_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--weeks 100000` is refused by typer's range check in one line, before any data is generated; the
    limit itself is accepted (the demo is replaced: only what reaches it matters)."""
    import amlops.demo

    reached: list[int] = []

    def no_demo(_base: object, _folder: Path, cfg: amlops.demo.DemoConfig, **_kw: object) -> None:
        reached.append(cfg.weeks)
        raise UserError("the test stops the demo here")

    monkeypatch.setattr(amlops.demo, "run_demo", no_demo)
    monkeypatch.chdir(tmp_path)
    code, output = demo_cli("--weeks", "100000", "--out", str(tmp_path / "demo"))
    assert code == 2 and reached == []
    [line] = [x for x in output.splitlines() if "Invalid value for '--weeks'" in x]
    assert "156" in line  # the limit, in typer's own words (they differ between typer/click versions)
    code, output = demo_cli("--weeks", "156", "--out", str(tmp_path / "demo"))
    assert reached == [156] and "the test stops the demo here" in output
