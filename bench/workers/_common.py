"""Shared by the bench workers (each runs in its own interpreter and venv): arguments and the JSON answer."""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--reference", required=True)
    p.add_argument("--current", required=True)
    p.add_argument("--numeric", required=True)
    p.add_argument("--categorical", required=True)
    p.add_argument("--profile")
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args()
    args.numeric = [c for c in args.numeric.split(",") if c]
    args.categorical = [c for c in args.categorical.split(",") if c]
    return args


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: ru_maxrss survives exec, so a worker would inherit the
    high-water mark of the (big) orchestrator that forked it."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(tool: str, runs: int, once: Callable[[], list[str]]) -> None:
    """Run `once` (returns the drifted columns) `runs` times; print one JSON line with wall/CPU seconds."""
    walls: list[float] = []
    cpus: list[float] = []
    drifted: list[str] = []
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        drifted = once()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    answer: dict[str, Any] = {
        "tool": tool,
        "seconds": statistics.median(walls),
        "cpu_seconds": statistics.median(cpus),
        "all_seconds": walls,
        "drifted": sorted(drifted),
        "peak_rss_mb": peak_rss_mb(),
    }
    sys.stdout.write(json.dumps(answer) + "\n")
