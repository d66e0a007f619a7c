"""Evidently DataDriftPreset (runs in bench/.venv-evidently): read both Parquet files, report drifted
columns."""

from __future__ import annotations

import os

os.environ.setdefault("DO_NOT_TRACK", "1")

import pandas as pd
from _common import measure, parse
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    args = parse()

    def once() -> list[str]:
        ref = pd.read_parquet(args.reference, columns=[*args.numeric, *args.categorical])
        cur = pd.read_parquet(args.current, columns=[*args.numeric, *args.categorical])
        definition = DataDefinition(numerical_columns=args.numeric, categorical_columns=args.categorical)
        snapshot = Report([DataDriftPreset()]).run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
        drifted = []
        for metric in snapshot.dict()["metrics"]:
            config = metric.get("config", {})
            if config.get("type", "").endswith("ValueDrift") and metric["value"] >= config["threshold"]:
                drifted.append(config["column"])
        return drifted

    measure("evidently", args.runs, once)


if __name__ == "__main__":
    main()
