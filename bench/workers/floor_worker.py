"""Read-once floor: one streamed pass over the current Parquet summing each column, with the very reader the
amlops monitor uses (same projection, dictionary-encoded categoricals, chunk size), and nothing else."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _common import measure, parse

from amlops.drift.monitor import MonitorOptions, iter_batches, open_dataset


def main() -> None:
    args = parse()
    columns = [*args.numeric, *args.categorical]

    def once() -> list[str]:
        ds = open_dataset(args.current, dictionary_columns=args.categorical)
        sums = dict.fromkeys(columns, 0.0)
        for batch in iter_batches(ds, columns, MonitorOptions().chunk_rows):
            for name in args.numeric:
                sums[name] += float(np.nansum(batch.column(name).to_numpy(zero_copy_only=False)))
            for name in args.categorical:
                col = batch.column(name)
                idx = col.indices if pa.types.is_dictionary(col.type) else pc.dictionary_encode(col).indices
                sums[name] += float(idx.to_numpy(zero_copy_only=False).sum())
        return []

    measure("floor", args.runs, once)


if __name__ == "__main__":
    main()
