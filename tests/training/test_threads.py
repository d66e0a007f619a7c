"""The thread count of the train and evaluate steps is a speed choice only: one OpenMP thread or two give the
same model and the same predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from amlops.data.features import build_pipeline, model_input
from amlops.steps._threads import SMALL_DATA_ROWS, openmp_threads_for


def test_one_thread_or_two_fit_the_same_model() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    df = pd.DataFrame(
        {
            "date": pd.Timestamp("2025-01-06") + pd.to_timedelta(rng.integers(0, 90, n), unit="D"),
            "price": rng.uniform(1, 5, n),
            "store_id": rng.choice(["S001", "S002", "S003"], n),
        }
    )
    y = rng.poisson(3 + df["price"].to_numpy())
    X = model_input(df, ["price"], ["store_id"], "date")
    predictions = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            model = build_pipeline(["price"], ["store_id"], "date", {"max_iter": 20}, 7).fit(X, y)
            predictions.append(model.predict(X))
    assert np.array_equal(predictions[0], predictions[1])


def test_small_data_fits_on_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadpoolctl import threadpool_info

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with openmp_threads_for(SMALL_DATA_ROWS - 1):
        # scikit-learn's libgomp is loaded: the list is never empty
        pools = [p for p in threadpool_info() if p["user_api"] == "openmp"]
        assert pools and all(p["num_threads"] == 1 for p in pools)
