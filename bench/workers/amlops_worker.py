"""amlops monitor: stream the current Parquet against a precomputed profile (runs in the project's .venv)."""

from __future__ import annotations

from _common import measure, parse

from amlops.drift.monitor import MonitorOptions, run_monitor
from amlops.drift.profile import ReferenceProfile


def main() -> None:
    args = parse()

    def once() -> list[str]:
        profile = ReferenceProfile.from_json(args.profile)
        result = run_monitor(args.current, profile, MonitorOptions(window="all"))
        return list(result["verdict"]["drifted_features"])

    measure("amlops", args.runs, once)


if __name__ == "__main__":
    main()
