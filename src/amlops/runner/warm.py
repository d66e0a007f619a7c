"""Warm step starts: a step whose command is `python -m <module> <args>` is forked from a process that has already
imported the steps' libraries (amlops.runner.zygote), instead of starting an interpreter that imports them again.

The step is still its own process, in its own working folder and session, with exactly the environment, arguments
and output the cold start would give it, and the runner stops it, times it out and reads its exit code the same way.
What it skips is seconds of imports per step: numpy, pandas, pyarrow, scikit-learn and MLflow.

Used only when nothing can tell the two apart:
- the command is plain words bash would pass unchanged (`python -m`, a module, then words of safe characters or
  single-quoted strings; anything else, such as `$VAR`, `&&`, a glob or a newline, goes to bash as before);
- `python` resolves, on the step's PATH, to the interpreter the zygote runs;
- every environment variable a library could read at import is the same as the zygote's (the key); only the
  run-scoped variables below, which are read when MLflow or the step is *used*, may differ, and the zygote starts
  without them;
- not with `--isolated` (each step then has its own interpreter), and not when AMLOPS_WARM_STEPS=0.

A zygote is started while the first such step runs cold, when more are to come, and kept for the runner process's
life (the demo and a test session reuse it across pipelines); at most MAX_ZYGOTES are kept, the oldest closed.
Closing its socket ends it; its children are never touched by that, as a cold step outlives a killed runner.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

SWITCH = "AMLOPS_WARM_STEPS"
MAX_ZYGOTES = 2
READY_TIMEOUT_S = 300.0
START_TIMEOUT_S = 60.0
# Set by the runner for each run or step and read by the step (or MLflow) when it runs, never at import.
# tests/runner/test_warm.py checks that importing the zygote's PRELOAD reads none of them.
RUN_SCOPED = frozenset(
    {
        "AZUREML_RUN_ID",
        "AZUREML_ROOT_RUN_ID",
        "AMLOPS_RUN_DIR",
        "AMLOPS_GIT_COMMIT",
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        # Set or removed in the runner's own environment whenever MLflow (re)initialises its telemetry client
        # there (mlflow/telemetry/client.py _set_telemetry_client), so it changes during a runner's life; read only
        # when telemetry is on, which the steps' MLFLOW_DISABLE_TELEMETRY=true turns off (amlops.tracking.mlflow_env).
        "_MLFLOW_TELEMETRY_SESSION_ID",
    }
)
RUN_SCOPED_PREFIXES = ("AZUREML_SWEEP_",)
# Read at import for whether it is set, never for its value (MLflow's telemetry: mlflow/telemetry/utils.py
# `_is_ci_env_or_testing`, a set of CI and test markers checked with `in os.environ`); set to a new value for each
# test: the key holds whether it is set, and the zygote starts with it when the step has it.
PRESENCE_ONLY = frozenset({"PYTEST_CURRENT_TEST"})

# A word bash passes to the program unchanged: safe characters, or single-quoted text (literal in bash).
# One character or one quoted run per repetition: no nested quantifier, so a failed match is linear, not exponential.
_WORD = r"(?:[A-Za-z0-9_./:=,@%+-]|'[^']*')+"
_COMMAND = re.compile(rf"[ \t]*{_WORD}(?:[ \t]+{_WORD})*[ \t]*")
_WORDS = re.compile(_WORD)
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class ModuleCommand:
    python: str  # the interpreter `python` resolves to on the step's PATH
    module: str
    args: list[str]
    program: str = "python"  # the word as typed: bash passes it as argv[0] (sys.orig_argv[0])


def _calls_a_module(words: list[str]) -> bool:
    return len(words) >= 2 and words[0] in ("python", "python3") and words[1] == "-m"


def may_start_warm(template: str) -> bool:
    """Whether a step's command, before its placeholders are filled, can become one `module_command` takes."""
    return _calls_a_module(template.split())


def module_command(command: str, env: Mapping[str, str]) -> ModuleCommand | None:
    """The command as (interpreter, module, args) when bash would run exactly `python -m <module> <args>`."""
    if not _COMMAND.fullmatch(command):
        return None
    words = [w.replace("'", "") for w in _WORDS.findall(command)]
    if len(words) < 3 or not _calls_a_module(words):
        return None
    if not _MODULE.fullmatch(words[2]):
        return None
    python = shutil.which(words[0], path=env.get("PATH", ""))
    if python is None:
        return None
    return ModuleCommand(os.path.abspath(python), words[2], words[3:], words[0])


def bash_env(env: Mapping[str, str], cwd: str, python: str) -> dict[str, str]:
    """The environment `bash -c "python -m ..."` gives python: bash sets PWD to the folder it starts in (the
    physical path: the inherited PWD names another folder), `_` to the program's path, and SHLVL (incremented at
    start, decremented again as it execs the command: unchanged, or 0 when unset)."""
    shlvl = env.get("SHLVL", "")
    return {
        **env,
        "PWD": os.path.realpath(cwd),
        "SHLVL": shlvl if shlvl.isdigit() else "0",
        "_": python,
    }


def same_key(python: str, env: Mapping[str, str], other: Mapping[str, str]) -> bool:
    """Whether a step with environment `other` would be served by the zygote of a step with `env`."""
    return zygote_key(python, env) == zygote_key(python, other)


def is_run_scoped(name: str) -> bool:
    return name in RUN_SCOPED or name.startswith(RUN_SCOPED_PREFIXES)


def _local_mlflow(env: Mapping[str, str]) -> bool:
    from amlops.mlflow_local import is_local

    return env.get("AMLOPS_MLFLOW_PLUGINS") != "all" and all(
        is_local(env.get(v)) for v in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    )


def zygote_key(python: str, env: Mapping[str, str]) -> tuple[Any, ...]:
    """What a child's imports may depend on: the interpreter, every variable but the run-scoped ones (of
    PRESENCE_ONLY, whether it is set), and whether MLflow's Azure ML plugins are hidden (which the URIs decide,
    before MLflow is imported)."""
    kept = tuple(sorted((k, v) for k, v in env.items() if not is_run_scoped(k) and k not in PRESENCE_ONLY))
    return (python, _local_mlflow(env), kept, tuple(sorted(PRESENCE_ONLY & env.keys())))


class WarmUnavailable(Exception):
    """The zygote cannot start this step; the runner starts it cold and says why in the step's log."""


@dataclass
class WarmProcess:
    """A step forked by a zygote, with the part of subprocess.Popen's interface the runner uses."""

    pid: int = 0
    stdout: IO[str] | None = None
    returncode: int | None = None
    note: str | None = None
    # The zygote's pidfd for the child (SCM_RIGHTS): the child's end is seen even if the zygote dies.
    pidfd: int = -1
    _started: threading.Event = field(default_factory=threading.Event)
    _done: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def _finish(self, code: int, note: str | None = None) -> None:
        self.returncode = code
        self.note = note
        self._started.set()
        self._done.set()


class Zygote:
    def __init__(self, python: str, env: Mapping[str, str], local_mlflow: bool) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [python, "-m", "amlops.runner.zygote", "--fd", str(theirs.fileno())]
        try:
            self.proc = subprocess.Popen(
                argv + (["--local-mlflow"] if local_mlflow else []),
                pass_fds=(theirs.fileno(),),
                env={k: v for k, v in env.items() if not is_run_scoped(k)},
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Out of the terminal's process group: Ctrl-C is the runner's to handle.
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.sock = ours
        self.python = python
        self.info: dict[str, Any] = {}
        self.failure: str | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._children: dict[str, WarmProcess] = {}
        self._retired = False  # being closed as idle: start() refuses (retire)
        threading.Thread(target=self._read, name="amlops-zygote-reader", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.sock, 1 << 16, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                break
            message = json.loads(data)
            if "ready" in message:
                self.info = message["ready"]
                if self.info.get("threads", 1) != 1:
                    self.failure = f"the starter had {self.info['threads']} threads after its imports"
                self._ready.set()
                continue
            with self._lock:
                child = self._children.get(message["id"])
            if child is None or "pid" not in message:
                for fd in fds:
                    os.close(fd)
            if child is None:
                continue
            if "pid" in message:
                child.pidfd = fds[0] if fds else -1
                child.pid = int(message["pid"])
                child._started.set()
            else:
                with self._lock:
                    self._children.pop(message["id"], None)
                _close_pidfd(child)
                child._finish(int(message["status"]))
        code = self.proc.poll()
        self.failure = self.failure or f"the starter exited (code {code})"
        self._ready.set()
        with self._lock:
            orphans, self._children = list(self._children.values()), {}
        # A step outlives its starter (it has its own session): it is over when it ends, not when the starter does;
        # the runner must not go on (or report it) while it still runs and writes its outputs.
        note = "the warm starter ended while the step ran: its exit code is unknown"
        waiting = []
        for child in orphans:
            if child.pidfd < 0:
                child._finish(1, note)  # never started: the runner starts it cold
            else:
                waiting.append(child)
        while waiting:
            ended, _, _ = select.select([c.pidfd for c in waiting], [], [])
            for child in [c for c in waiting if c.pidfd in ended]:
                waiting.remove(child)
                _close_pidfd(child)
                child._finish(1, note)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        if not self._ready.wait(timeout):
            self.failure = f"the starter was not ready within {timeout:g}s"
        if self.failure:
            raise WarmUnavailable(self.failure)

    def start(self, command: ModuleCommand, cwd: str, env: Mapping[str, str], out_fd: int) -> WarmProcess:
        self.wait_ready()
        rid = uuid.uuid4().hex
        child = WarmProcess()
        with self._lock:
            if self._retired:
                raise WarmUnavailable("the starter was closed as idle")
            self._children[rid] = child
        request = {
            "id": rid,
            "module": command.module,
            "args": command.args,
            "cwd": cwd,
            "env": bash_env(env, cwd, command.python),
            "orig_argv": [command.program, "-m", command.module, *command.args],
        }
        try:
            socket.send_fds(self.sock, [json.dumps(request).encode()], [out_fd])
        except OSError as exc:
            with self._lock:
                self._children.pop(rid, None)
            raise WarmUnavailable(f"the starter did not take the step: {exc}") from None
        try:
            started = child._started.wait(START_TIMEOUT_S)
        except BaseException:
            # Ctrl-C or SIGTERM while the step is being forked: the runner stops its step's process group on
            # the way out, and this one has none yet; it must not run on (nor be forked later) without the runner.
            self._stop_starting(child)
            if child.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
            raise
        if not started:
            # The runner is about to start the step cold: this process must not fork it as well, later.
            self._stop_starting(child)
        if child.pid == 0:
            raise WarmUnavailable(self.failure or "the starter did not start the step")
        return child

    def retire(self) -> bool:
        """Whether it is idle, and if so refuse steps from now on: the pool hands a zygote out (WarmPool.zygote)
        before its step is registered (start), so a thread closing idle ones must not close one another thread
        is about to start a step in. Checked and marked under one lock: that step either counts as busy here or
        starts cold, never forked by a zygote being closed (run twice, or its exit code lost)."""
        with self._lock:
            if self._children:
                return False
            self._retired = True
            return True

    def _stop_starting(self, child: WarmProcess) -> None:
        """Kill this zygote, then wait until the reader has seen the pid it sent before it died, or its end."""
        self.proc.kill()
        self.proc.wait()
        child._started.wait()

    def close(self) -> None:
        """End the zygote without delaying the runner's exit: one still importing would read its closed socket only
        once its imports are done (seconds), so it is killed (it has no children yet); a ready one exits when its
        socket closes. Its children are in their own sessions and never touched."""
        if not self._ready.is_set():
            self.proc.kill()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _close_pidfd(child: WarmProcess) -> None:
    if child.pidfd >= 0:
        os.close(child.pidfd)
        child.pidfd = -1


class WarmPool:
    def __init__(self, limit: int = MAX_ZYGOTES) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._zygotes: OrderedDict[tuple[Any, ...], Zygote] = OrderedDict()
        self._broken: set[tuple[Any, ...]] = set()  # keys whose zygote failed: not started again

    def zygote(self, command: ModuleCommand, env: Mapping[str, str], start: bool) -> Zygote | None:
        """The zygote for this step's key (waiting for its imports if it is still starting); None when there is
        none, after starting one when `start` (more steps are to come)."""
        key = zygote_key(command.python, env)
        with self._lock:
            found = self._zygotes.get(key)
            if found is not None and found.failure is not None:
                del self._zygotes[key]
                self._broken.add(key)
                found.close()
                found = None
            if found is not None:
                self._zygotes.move_to_end(key)
                return found
            if not start or key in self._broken:
                return None
            self._zygotes[key] = Zygote(command.python, env, _local_mlflow(env))
            # The oldest idle ones go; one with a step still running keeps it (its exit code comes through it).
            for old_key in [k for k in self._zygotes if k != key]:
                if len(self._zygotes) <= self._limit:
                    break
                if self._zygotes[old_key].retire():
                    self._zygotes.pop(old_key).close()
            return None

    def close(self) -> None:
        with self._lock:
            zygotes, self._zygotes = list(self._zygotes.values()), OrderedDict()
        for z in zygotes:
            z.close()

    def close_idle(self) -> int:
        """Close every zygote with no step running (a busy one reports its step's exit code); how many closed."""
        with self._lock:
            idle = [k for k, z in self._zygotes.items() if z.retire()]
            zygotes = [self._zygotes.pop(k) for k in idle]
        for z in zygotes:
            z.close()
        return len(zygotes)


_pool: WarmPool | None = None


def enabled() -> bool:
    return (
        os.environ.get(SWITCH, "1") != "0"
        and sys.platform == "linux"
        and hasattr(os, "pidfd_open")
        and hasattr(socket, "send_fds")
    )


def release_idle() -> int:
    """Close this process's idle zygotes (none started: nothing to do). A long-running runner calls it before a
    long wait (`amlops loop --every`): a zygote holds its preloaded libraries' memory while it waits, and one
    started afresh afterwards imports the libraries as they are then installed."""
    return _pool.close_idle() if _pool is not None else 0


def pool() -> WarmPool:
    global _pool
    if _pool is None:
        _pool = WarmPool()
        atexit.register(_pool.close)
    return _pool
