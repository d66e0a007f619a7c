"""NannyML UnivariateDriftCalculator (runs in bench/.venv-nannyml): Wasserstein for numeric, Jensen-Shannon
for categorical columns, NannyML's default thresholds (from the spread over 10 reference chunks); a column
counts as drifted when any of the 10 analysis chunks alerts."""

from __future__ import annotations

import os

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import nannyml as nml
import pandas as pd
from _common import measure, parse


def main() -> None:
    args = parse()
    columns = [*args.numeric, *args.categorical]

    def once() -> list[str]:
        ref = pd.read_parquet(args.reference, columns=columns)
        cur = pd.read_parquet(args.current, columns=columns)
        calc = nml.UnivariateDriftCalculator(
            column_names=columns,
            treat_as_categorical=args.categorical,
            continuous_methods=["wasserstein"],
            categorical_methods=["jensen_shannon"],
            chunk_number=10,
        )
        calc.fit(ref)
        frame = calc.calculate(cur).filter(period="analysis").to_df()
        drifted = []
        for c in columns:
            method = "jensen_shannon" if c in args.categorical else "wasserstein"
            if frame[(c, method, "alert")].astype(bool).any():
                drifted.append(c)
        return drifted

    measure("nannyml", args.runs, once)


if __name__ == "__main__":
    main()
