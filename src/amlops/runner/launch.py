"""Start one process per rank of a distributed step (spec written by runner/distributed.py) and wait for all.

Each rank runs the step's rendered command with its own variables; its lines are prefixed `[rank N]` in the step
log. The launcher exits with the first non-zero exit code, and stops the other ranks when one fails or when it is
itself stopped (limits.timeout, Ctrl-C), as Azure ML fails a distributed job when a process fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType


def _pump(rank: int, proc: subprocess.Popen[str], lock: threading.Lock) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        with lock:
            sys.stdout.write(f"[rank {rank}] {line}")
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    command, ranks = spec["command"], spec["ranks"]
    lock = threading.Lock()
    procs: list[subprocess.Popen[str]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        raise SystemExit(128 + signum)

    print(f"# {len(ranks)} processes run: {command}", flush=True)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    pumps = []
    for rank, env in enumerate(ranks):
        proc = subprocess.Popen(
            ["bash", "-c", command],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        pump = threading.Thread(target=_pump, args=(rank, proc, lock), daemon=True)
        pump.start()
        pumps.append(pump)
    first_failure = 0
    remaining = set(range(len(procs)))
    while remaining:
        for rank in sorted(remaining):
            code = procs[rank].poll()
            if code is None:
                continue
            remaining.discard(rank)
            if code != 0 and not first_failure:
                first_failure = code
                print(f"error: rank {rank} exited with code {code}; stopping the other ranks", flush=True)
                for other in procs:
                    if other.poll() is None:
                        other.terminate()
        if remaining:
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[min(remaining)].wait(timeout=0.2)
    for pump in pumps:
        pump.join(timeout=5)
    return first_failure


if __name__ == "__main__":
    raise SystemExit(main())
