"""Read-once floor: one streamed pass over the current Parquet summing each column (same reader as amlops)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds
from _common import measure, parse


def main() -> None:
    args = parse()
    columns = [*args.numeric, *args.categorical]

    def once() -> list[str]:
        fmt = pds.ParquetFileFormat(
            read_options=pds.ParquetReadOptions(dictionary_columns=set(args.categorical))
        )
        ds = pds.dataset(args.current, format=fmt)
        sums = dict.fromkeys(columns, 0.0)
        scanner = ds.scanner(columns=columns, batch_size=1_000_000, batch_readahead=1, fragment_readahead=1)
        for batch in scanner.to_batches():
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
