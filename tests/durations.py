"""Write tests/durations.json (seconds per test file) from a pytest --junitxml report: the order in which the test
workers take the files (tests/conftest.py, longest first). Refresh it when files are added or get much slower:

    .venv/bin/pytest -n auto --junitxml=/tmp/junit.xml ... && .venv/bin/python tests/durations.py /tmp/junit.xml

A stale file only makes the order less good, never a result wrong. `--top N` prints the N heaviest files."""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def seconds_by_file(junit: Path) -> tuple[Counter[str], Counter[str]]:
    """(seconds, tests) per test file; a junit classname is the module's dotted path (plus a class, if any)."""
    seconds: Counter[str] = Counter()
    tests: Counter[str] = Counter()
    for case in ET.parse(junit).getroot().iter("testcase"):
        file = _file_of(case.get("classname", ""))
        seconds[file] += float(case.get("time", 0.0))
        tests[file] += 1
    return seconds, tests


def _file_of(classname: str) -> str:
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        candidate = "/".join(parts[:end]) + ".py"
        if (REPO / candidate).is_file():
            return candidate
    return classname


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("junit", type=Path)
    parser.add_argument("--top", type=int, default=0, help="print the N heaviest files instead of writing")
    args = parser.parse_args()
    seconds, tests = seconds_by_file(args.junit)
    if args.top:
        total = sum(seconds.values())
        print(f"{sum(tests.values())} tests, {total:.0f} s in tests ({total / 2:.0f} s on 2 workers)")
        for file, s in seconds.most_common(args.top):
            print(f"{s:7.1f} s {tests[file]:4d} tests  {file}")
        return
    ordered = {file: round(s, 1) for file, s in sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0]))}
    (REPO / "tests" / "durations.json").write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
