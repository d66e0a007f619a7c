"""The map worker's share of a node: workers per node from the driver's arguments, Arrow threads, peak memory."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from amlops.runner.parallel import driver_argv
from amlops.steps import monitor_map


@pytest.fixture
def arrow_threads() -> Iterator[None]:
    before = pa.cpu_count()
    yield
    pa.set_cpu_count(before)


@pytest.mark.parametrize("workers", [1, 2, 16])
def test_workers_per_node_come_from_the_driver_arguments(workers: int) -> None:
    argv = driver_argv(
        {"entry_script": "e.py", "max_concurrency_per_instance": workers, "program_arguments": "--data d"}
    )
    assert monitor_map._workers_per_node(argv[1:]) == workers


def test_each_worker_decodes_with_its_share_of_the_cores(
    arrow_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monitor_map._share_cores(4)
    assert pa.cpu_count() == 2
    monitor_map._share_cores(16)  # more workers than cores: one thread each, never zero
    assert pa.cpu_count() == 1


def test_one_worker_keeps_arrows_default(arrow_threads: None) -> None:
    pa.set_cpu_count(3)
    monitor_map._share_cores(1)
    assert pa.cpu_count() == 3


def test_the_summary_line_reports_the_workers_peak_memory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    class Fake:
        def map_files(self, files: list[str]) -> tuple[object, int]:
            from pathlib import Path

            return Path("part-x.partial.json"), 7

    monkeypatch.setattr(monitor_map, "_mapper", Fake())
    (line,) = monitor_map.run(["a.parquet"])
    assert line.startswith("part-x.partial.json 7 rows 1 file(s) pid ")
    assert float(line.rsplit("peak_rss_mb ", 1)[1]) > 10  # a Python process holds more than 10 MB
