"""A warm step starter: imports the libraries the steps use once, then forks a child per `python -m <module>` step.

Run by amlops.runner.warm as `python -m amlops.runner.zygote` with the step interpreter, and never imported by
anything else. Every step of a pipeline is its own process in its own working folder, as on Azure ML; what this
saves is each step importing numpy, pandas, pyarrow, scikit-learn and MLflow again (seconds per step: most of a
training pipeline's fixed cost). The child is what `python -m <module> <args>` in the step's folder would be:

- its environment is the step's, exactly (os.environ cleared and filled; C-level getenv sees it too);
- its working folder is the step's, and `sys.path[0]` is that folder, as `-m` makes it;
- no amlops module survives from here: the step imports amlops from its own code snapshot (the component's
  `code:` copy), not the one this process was started from;
- its own session (a timeout or Ctrl-C stops its process group), signals as a new interpreter has them;
- stdout and stderr go to the descriptor the runner passed; stdin is /dev/null;
- it ends through the interpreter's own exit (atexit, non-daemon threads, flushing).

Only variables that are read when a library is *used*, never when it is imported, may differ between this process
and the child (amlops.runner.warm.RUN_SCOPED); every other variable is part of the zygote's key, so a child never
inherits an import made under another environment.

Protocol on the inherited SOCK_SEQPACKET socket (fd given by --fd), one JSON object per message: the runner sends
{"id", "module", "args", "cwd", "env"} with the step's output descriptor attached (SCM_RIGHTS); the zygote answers
{"ready": ...} once, {"id", "pid"} when a child starts and {"id", "status"} when it ends.
The zygote never starts a thread (a fork copies only the calling thread); it waits on the socket and on each
child's pidfd with select.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

# What the steps import (amlops/steps/*.py), heaviest first. Importing more than a step needs costs the child
# nothing: the pages are shared with this process.
PRELOAD = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "pyarrow.compute",
    "scipy.special",
    "scipy.stats",
    "threadpoolctl",
    "sklearn.ensemble",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.metrics",
    "sklearn.isotonic",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.pyfunc",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.store.model_registry.sqlalchemy_store",
)


MAX_MESSAGE = 1 << 20


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _recv_request(sock: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    body, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 1)
    if not body:
        for fd in fds:
            os.close(fd)
        return None
    return json.loads(body), list(fds)


def preload(local_mlflow: bool) -> dict[str, Any]:
    """Import PRELOAD (skipping what this interpreter lacks); MLflow's Azure ML plugins hidden when the steps'
    stores are local, as each step does before it imports MLflow (amlops.mlflow_local.skip_azureml_plugins)."""
    if local_mlflow:
        from amlops.mlflow_local import skip_azureml_plugins

        skip_azureml_plugins("sqlite:///")
    loaded, missing = [], []
    for name in PRELOAD:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except ImportError:
            missing.append(name)
    return {"loaded": loaded, "missing": missing, "threads": threading.active_count()}


def _forget_amlops() -> None:
    """The step imports amlops from its own folder, as a fresh `python -m` there would."""
    for name in [m for m in sys.modules if m == "amlops" or m.startswith("amlops.")]:
        del sys.modules[name]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()


def _become_step(request: dict[str, Any], out_fd: int, keep_closed: list[int]) -> str:
    """In the forked child: turn this process into the step; return the module to run."""
    for fd in keep_closed:
        os.close(fd)
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as CPython sets it at start-up
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    _forget_amlops()
    sys.path[0] = request["cwd"]
    sys.argv = ["-m", *request["args"]]
    # What the step's own interpreter would have been given (the words bash passed), not this process's.
    sys.orig_argv = list(request.get("orig_argv") or sys.orig_argv)
    if "numpy" in sys.modules:
        # Python's `random` reseeds itself in a forked child; numpy's global generator does not.
        import numpy

        numpy.random.seed()
    return str(request["module"])


def _run_child(module: str) -> None:
    import runpy
    import types

    # A new interpreter's __main__, not this file's globals (runpy runs the module in __main__'s namespace).
    sys.modules["__main__"] = types.ModuleType("__main__")

    sys.excepthook = _from_the_step_on(sys.excepthook)
    # What `python -m` itself calls (Modules/main.c: pymain_run_module -> runpy._run_module_as_main).
    runpy._run_module_as_main(module, alter_argv=True)  # type: ignore[attr-defined]


def _from_the_step_on(hook: Callable[..., Any]) -> Callable[..., Any]:
    """The step's uncaught exception printed as a new interpreter prints it: the frames from runpy on, not this
    process's own (its start-up runpy, this file) above them."""

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        frame = tb
        while frame is not None:
            if frame.tb_frame.f_code is _run_child.__code__:
                tb = frame.tb_next
                break
            frame = frame.tb_next
        # The interpreter's hook prints the exception's own __traceback__ when it has one, not its argument.
        hook(kind, value.with_traceback(tb), tb)

    return excepthook


def serve(sock: socket.socket) -> str | None:
    """Answer requests until the runner closes the socket; in a forked child, return the module to run."""
    children: dict[int, tuple[str, int]] = {}  # pidfd -> (request id, pid)
    own = sock.fileno()
    while True:
        readable, _, _ = select.select([own, *children], [], [])
        for fd in readable:
            if fd == own:
                got = _recv_request(sock)
                if got is None:
                    return None
                request, fds = got
                out_fd = fds[0]
                pid = os.fork()
                if pid == 0:
                    module = _become_step(request, out_fd, [own, *children])
                    sock.detach()
                    return module
                os.close(out_fd)
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (request["id"], pid)
                # The runner gets its own copy of the pidfd: should this process die, it still sees the step end.
                socket.send_fds(sock, [json.dumps({"id": request["id"], "pid": pid}).encode()], [pidfd])
            else:
                rid, pid = children.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                _send(sock, {"id": rid, "status": os.waitstatus_to_exitcode(status)})


def main() -> None:
    fd = int(sys.argv[sys.argv.index("--fd") + 1])
    local_mlflow = "--local-mlflow" in sys.argv
    sock = socket.socket(fileno=fd)
    info = preload(local_mlflow)
    # Everything imported so far lives as long as any child does: kept out of the cyclic collector (Python docs,
    # gc.freeze: "If a process will fork() without exec(), avoiding unnecessary copy-on-write in child processes
    # will maximize memory sharing"). Without it each child's collections walked, and so copied, the whole
    # preloaded heap: a step that does nothing took 1.2 s, 0.25 s with it.
    gc.freeze()
    _send(sock, {"ready": info})
    module = serve(sock)
    if module is None:
        return
    _run_child(module)


if __name__ == "__main__":
    main()
