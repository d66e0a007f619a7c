"""How many OpenMP threads a step's gradient-boosted trees get: train and evaluate (SMALL_DATA_ROWS), and the
score step (amlops.steps.score, its own SMALL_FILE_ROWS; it also slices large files across threads).

Below the limit: one. Measured on this 2-core machine while another process kept one core busy
(2026-11-30): the demo's 52k-row retrain fitted in 1.3 s on one thread against 2.2-16.6 s on two, 207k rows in
1.8-2.0 s against 4.0-16.9 s, and predicting a 2,700-row holdout took 35-45 ms against 290-760 ms: libgomp's
threads spin at each parallel region's barrier waiting for a core that is taken, and a tree ensemble opens one
region per tree. A step that owns its node (Azure ML) with more rows than this keeps the default. Results are the
same either way (histograms are summed per feature and each row's prediction is its own; tests/training/
test_threads.py).
"""

from __future__ import annotations

import functools
import os
from contextlib import AbstractContextManager, nullcontext
from typing import Any

SMALL_DATA_ROWS = 500_000


@functools.cache
def openmp_controller() -> Any:
    """threadpoolctl's view of the loaded thread pools, made once (it scans the loaded libraries: 2-13 ms). Call
    it after scikit-learn is imported, or it will not see its OpenMP runtime."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def openmp_threads_for(rows: int, below: int = SMALL_DATA_ROWS) -> AbstractContextManager[Any]:
    """One OpenMP thread below `below` rows unless OMP_NUM_THREADS says otherwise; else no limit."""
    if os.environ.get("OMP_NUM_THREADS") or rows >= below:
        return nullcontext()
    return openmp_controller().limit(limits=1, user_api="openmp")  # type: ignore[no-any-return]
