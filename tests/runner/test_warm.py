"""Warm step starts (amlops.runner.warm, amlops.runner.zygote): a `python -m` step forked from a process that has
already imported the steps' libraries is the same process, to the step, as one started cold by bash."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from amlops.config import Settings
from amlops.runner import warm
from amlops.runner.local import StepFailed, run_pipeline

pytestmark = pytest.mark.skipif(not warm.enabled(), reason="warm starts need Linux pidfds")

PROBE = '''
"""Reports what the step sees of its process, as JSON, to the file given as the first argument."""
import json, os, sys

import amlops

out, code = sys.argv[1], int(sys.argv[2])
fd0 = os.readlink("/proc/self/fd/0")
report = {
    "amlops_file": amlops.__file__,
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "path0": sys.path[0],
    "run_id": os.environ.get("AZUREML_RUN_ID"),
    "custom": os.environ.get("PROBE_VALUE"),
    "leader": os.getsid(0) == os.getpid(),
    "stdin": fd0,
    "main_names": sorted(k for k in globals() if not k.startswith("__")),
    "pwd": os.environ.get("PWD"),
    "underscore": os.environ.get("_"),
    "shlvl": os.environ.get("SHLVL"),
    "orig_argv": sys.orig_argv,
}
if os.environ.get("PROBE_MLFLOW"):
    report["mlflow_uri"] = __import__("mlflow").get_tracking_uri()
with open(out, "w") as f:
    json.dump(report, f)
print("probe says hello", flush=True)
if code == 99:
    raise ValueError("planted failure")
sys.exit(code)
'''


def _project(root: Path, jobs: int = 2, timeout: int | None = None, body: str = PROBE) -> Path:
    """A pipeline of `jobs` probe steps; the component's code folder holds its own `amlops` package."""
    src = root / "src"
    (src / "amlops").mkdir(parents=True)
    (src / "amlops" / "__init__.py").write_text("")
    (src / "amlops" / "probe.py").write_text(textwrap.dedent(body))
    limits = f"    limits:\n      timeout: {timeout}\n" if timeout else ""
    (root / "probe.yml").write_text(
        textwrap.dedent(
            """\
            $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
            name: probe
            version: "1"
            type: command
            inputs:
              tag: {type: string}
              code: {type: integer, default: 0}
            outputs:
              report: {type: uri_folder}
            code: ./src
            environment: azureml:AzureML-sklearn-1.5@latest
            command: >-
              python -m amlops.probe ${{outputs.report}}/r.json ${{inputs.code}} '${{inputs.tag}}'
            """
        )
    )
    job_lines = "".join(
        f"  j{i}:\n    type: command\n    component: ./probe.yml\n"
        + limits
        + f"    inputs:\n      tag: 'step {i}'\n      code: ${{{{parent.inputs.code}}}}\n"
        for i in range(jobs)
    )
    (root / "pipeline.yml").write_text(
        "$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json\n"
        "type: pipeline\nexperiment_name: warm-tests\ninputs:\n  code: 0\njobs:\n" + job_lines
    )
    return root / "pipeline.yml"


def _reports(result) -> list[dict]:
    return [json.loads((result.job_outputs[s.name]["report"] / "r.json").read_text()) for s in result.steps]


def _log(step) -> str:
    return Path(step.log).read_text(encoding="utf-8")


@pytest.fixture
def stdin_with_data() -> Iterator[None]:
    """The runner's stdin is a pipe with data in it (a terminal, a `cat x | amlops run`): no step may read it."""
    read, write = os.pipe()
    os.write(write, b"the runner's input\n")
    saved = os.dup(0)
    os.dup2(read, 0)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read, write):
            os.close(fd)


def test_a_warm_step_sees_what_a_cold_one_sees(
    settings: Settings, tmp_path: Path, monkeypatch, stdin_with_data: None
) -> None:
    monkeypatch.setenv("PROBE_VALUE", "it's here")
    monkeypatch.setenv("PROBE_MLFLOW", "1")
    monkeypatch.setenv("PWD", "/somewhere/else")  # the runner's folder: bash sets the step's own
    result = run_pipeline(_project(tmp_path / "p"), {}, settings, quiet=True)
    cold, hot = _reports(result)
    assert "warm start" not in _log(result.steps[0])
    assert "# note: warm start: forked from" in _log(result.steps[1])  # the warm path was taken
    for step, report in zip(result.steps, (cold, hot), strict=True):
        wd = str(Path(str(step.log)).parent.parent / "wd")
        # amlops comes from the step's code snapshot, never from the process it was forked from
        assert report["amlops_file"] == os.path.join(wd, "amlops", "__init__.py")
        assert report["cwd"] == report["path0"] == wd
        assert report["run_id"].endswith("_" + step.name)
        assert report["argv"][1:] == ["0", f"step {step.name[1:]}"]
        assert report["custom"] == "it's here"
        assert report["leader"] is True
        assert report["mlflow_uri"] == settings.tracking_uri
        assert "probe says hello" in _log(step)
        # what bash sets in the environment it passes, and the words it passed
        assert report["pwd"] == os.path.realpath(wd)
        assert report["underscore"] == shutil.which("python", path=f"{Path(sys.executable).parent}:")
        assert report["orig_argv"][:3] == ["python", "-m", "amlops.probe"]
        assert report["stdin"] == "/dev/null"
    assert hot["shlvl"] == cold["shlvl"]
    # a new interpreter's __main__: nothing of the zygote's module leaks into the step's globals
    assert hot["main_names"] == cold["main_names"]
    assert hot["stdin"] == "/dev/null"


@pytest.mark.parametrize(("code", "status", "says"), [(3, 3, None), (99, 1, "ValueError: planted failure")])
def test_a_warm_step_fails_with_its_exit_code_and_traceback(
    settings: Settings, tmp_path: Path, code: int, status: int, says: str | None
) -> None:
    with pytest.raises(StepFailed) as info:
        run_pipeline(_project(tmp_path / "p", jobs=2), {"code": str(code)}, settings, quiet=True)
    assert info.value.result.steps[0].exit_code == status  # cold; a zygote starts meanwhile for the next one
    with pytest.raises(StepFailed) as again:
        run_pipeline(_project(tmp_path / "q", jobs=1), {"code": str(code)}, settings, quiet=True)
    step = again.value.result.steps[0]
    assert "# note: warm start: forked from" in _log(step)
    assert step.exit_code == status
    if says:
        assert says in _log(step)
        # the same traceback as the cold step's: no frame of the process it was forked from
        cold, hot = (_traceback(run.value.result.steps[0]) for run in (info, again))
        assert hot == cold
        assert not any("zygote" in line for line in hot)


def _traceback(step) -> list[str]:
    lines = _log(step).splitlines()
    shown = lines[lines.index("Traceback (most recent call last):") :]
    return [line.split("/wd/")[-1] for line in shown if not line.startswith(("error:", "#"))]


SLEEPER = """
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(120)
"""


def test_a_warm_step_past_its_timeout_is_stopped(settings: Settings, tmp_path: Path) -> None:
    run_pipeline(_project(tmp_path / "warmup", jobs=2), {}, settings, quiet=True)  # a zygote is ready
    with pytest.raises(StepFailed) as info:
        run_pipeline(_project(tmp_path / "p", jobs=1, timeout=3, body=SLEEPER), {}, settings, quiet=True)
    step = info.value.result.steps[0]
    assert "# note: warm start: forked from" in _log(step)
    assert step.exit_code != 0 and step.seconds < 60
    assert "limits.timeout" in _log(step)
    pid = int(next(info.value.result.run_dir.rglob("r.json")).read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_switched_off_every_step_starts_cold(settings: Settings, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(warm.SWITCH, "0")
    result = run_pipeline(_project(tmp_path / "p", jobs=2), {}, settings, quiet=True)
    assert not any("warm start" in _log(s) for s in result.steps)


@pytest.mark.parametrize(
    "command",
    [
        "python -m amlops.steps.prep --raw /a/b.parquet --share 0.05",
        "python -m m --data-uri '/tmp/a b/c.parquet' --x=1,2 --y a@b:c%d+e",
        "python -m m '' 'x'y'z' --flag",
        "  python -m m\t--tab  two  ",
    ],
)
def test_the_words_are_the_ones_bash_passes(command: str) -> None:
    parsed = warm.module_command(command, {"PATH": os.environ["PATH"]})
    assert parsed is not None
    # bash, running the same command with `python` a function that prints its arguments, passes exactly these
    shown = subprocess.run(
        ["bash", "-c", "python() { printf '%s\\0' \"$@\"; }\n" + command], capture_output=True, check=True
    ).stdout.split(b"\0")[:-1]
    assert [w.encode() for w in ["-m", parsed.module, *parsed.args]] == shown


@pytest.mark.parametrize(
    "command",
    [
        "python -m m $HOME",
        "python -m m && rm -rf x",
        "python -m m a*b",
        "python -m m ~/x",
        "python -m m 'it'\"'\"'s'",
        "python -m m \\x",
        "python -m m\npython -m n",
        "python -m m # comment",
        "python -m m {a,b}",
        "python -m m > out",
        "python -c 'print(1)'",
        "python -u -m m",
        "FOO=1 python -m m",
        "python script.py",
        "python -m 'a b'",
    ],
)
def test_anything_bash_would_interpret_goes_to_bash(command: str) -> None:
    assert warm.module_command(command, {"PATH": os.environ["PATH"]}) is None


def test_the_key_ignores_only_run_scoped_variables() -> None:
    base = {"PATH": "/bin", "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": "sqlite:///a.db"}
    same = {
        **base,
        "AZUREML_RUN_ID": "x_1",
        "MLFLOW_TRACKING_URI": "sqlite:///b.db",
        "AZUREML_SWEEP_lr": "1",
        # the runner's MLflow sets it once it imports MLflow: a zygote started before must still serve
        "_MLFLOW_TELEMETRY_SESSION_ID": "1f2e",
    }
    assert warm.zygote_key("/py", base) == warm.zygote_key("/py", same)
    testing = {**base, "PYTEST_CURRENT_TEST": "a.py::t (call)"}
    assert warm.zygote_key("/py", testing) == warm.zygote_key("/py", {**testing, "PYTEST_CURRENT_TEST": "b"})
    assert warm.zygote_key("/py", testing) != warm.zygote_key("/py", base)
    assert warm.zygote_key("/py", base) != warm.zygote_key("/py", {**base, "OMP_NUM_THREADS": "2"})
    assert warm.zygote_key("/py", base) != warm.zygote_key("/other", base)
    # an Azure ML store keeps MLflow's Azure ML plugins, so it needs a zygote that imported MLflow with them
    remote = {**base, "MLFLOW_TRACKING_URI": "azureml://eastus.api.azureml.ms/mlflow/v1.0/x"}
    assert warm.zygote_key("/py", base) != warm.zygote_key("/py", remote)


def test_importing_the_preload_reads_no_run_scoped_variable() -> None:
    """The zygote starts without the run-scoped variables: a library reading one at import would differ."""
    script = textwrap.dedent(
        """
        import json, os, sys
        seen = set()
        original = os._Environ.__getitem__
        def recording(self, key):
            caller = sys._getframe(1).f_code
            # a lookup by name, not a walk over every variable (tqdm reads its TQDM_* options by iterating) nor a
            # removal (MLflow with telemetry off pops _MLFLOW_TELEMETRY_SESSION_ID, whatever its value)
            if not (caller.co_name in ("__iter__", "pop") and "_collections_abc" in caller.co_filename):
                seen.add(key)
            return original(self, key)
        os._Environ.__getitem__ = recording
        from amlops.runner import zygote
        zygote.preload(local_mlflow=True)
        print(json.dumps(sorted(k if isinstance(k, str) else k.decode() for k in seen)))
        """
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": "sqlite:///x.db",
        "AZUREML_RUN_ID": "r_1",
        "_MLFLOW_TELEMETRY_SESSION_ID": "1f2e",
        "MLFLOW_DISABLE_TELEMETRY": "true",  # as every step has it (amlops.tracking.mlflow_env)
    }
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    seen = set(json.loads(done.stdout.splitlines()[-1]))
    assert seen  # the recorder works: the imports read variables
    assert {k for k in seen if warm.is_run_scoped(k)} == set()


def test_a_long_command_that_bash_must_read_is_refused_at_once() -> None:
    """One long word then shell syntax: the parser backs off linearly (a nested quantifier once hung a run here)."""
    command = "python -m m --path " + "a" * 5000 + " $HOME"
    assert warm.module_command(command, {"PATH": os.environ["PATH"]}) is None


class _FakeZygote:
    def __init__(self, python: str, env: dict[str, str], local_mlflow: bool) -> None:
        self.env, self.busy, self.failure, self.closed = env, False, None, False

    def close(self) -> None:
        self.closed = True

    def retire(self) -> bool:
        return not self.busy


def test_the_pool_closes_the_oldest_idle_zygote_never_a_busy_one(monkeypatch) -> None:
    monkeypatch.setattr(warm, "Zygote", _FakeZygote)
    pool = warm.WarmPool(limit=1)
    command = warm.ModuleCommand("/py", "m", [])
    assert pool.zygote(command, {"K": "a"}, start=True) is None  # started, not handed out before it is used
    first = pool.zygote(command, {"K": "a"}, start=False)
    assert isinstance(first, _FakeZygote)
    first.busy = True  # a step is running in it
    pool.zygote(command, {"K": "b"}, start=True)
    assert not first.closed  # over the limit, but its step's exit code comes through it
    second = pool.zygote(command, {"K": "b"}, start=False)
    first.busy = False
    pool.zygote(command, {"K": "c"}, start=True)
    assert first.closed and second.closed  # the idle ones go, oldest first, down to the limit


def test_before_a_long_wait_the_idle_zygotes_close_and_a_busy_one_stays(monkeypatch) -> None:
    """`amlops loop --every 1h`: between cycles an idle zygote would hold its preloaded libraries for the hour
    and serve the next cycle libraries since upgraded; a short wait keeps it (a new one imports for seconds)."""
    from amlops.loop import WARM_KEEP_SECONDS, wait_for_next_cycle

    monkeypatch.setattr(warm, "Zygote", _FakeZygote)
    monkeypatch.setattr(warm, "_pool", warm.WarmPool())
    command = warm.ModuleCommand("/py", "m", [])
    for k in ("a", "b"):
        warm.pool().zygote(command, {"K": k}, start=True)
    idle = warm.pool().zygote(command, {"K": "a"}, start=False)
    busy = warm.pool().zygote(command, {"K": "b"}, start=False)
    assert isinstance(idle, _FakeZygote) and isinstance(busy, _FakeZygote)
    busy.busy = True
    slept: list[float] = []
    wait_for_next_cycle(WARM_KEEP_SECONDS, sleep=slept.append)
    assert not idle.closed
    wait_for_next_cycle(WARM_KEEP_SECONDS + 1, sleep=slept.append)
    assert idle.closed and not busy.closed
    assert warm.pool().zygote(command, {"K": "a"}, start=False) is None  # the next cycle starts a new one
    assert warm.pool().zygote(command, {"K": "b"}, start=False) is busy
    assert slept == [WARM_KEEP_SECONDS, WARM_KEEP_SECONDS + 1]
    monkeypatch.setattr(warm, "_pool", None)
    assert warm.release_idle() == 0  # a runner that never started one: nothing to close


def test_closing_a_zygote_still_importing_does_not_wait_for_it(tmp_path: Path) -> None:
    zygote = warm.Zygote(sys.executable, dict(os.environ), local_mlflow=True)
    zygote.close()  # at once: it would read its socket only after seconds of imports
    assert zygote.proc.returncode == -9
    assert zygote.info == {}  # killed before its imports were done


@pytest.fixture
def own_pool(monkeypatch) -> Iterator[None]:
    """A pool of this test's own: a zygote it kills, or one it counts, is not another test's."""
    monkeypatch.setattr(warm, "_pool", None)
    try:
        yield
    finally:
        warm.pool().close()


def test_a_step_whose_starter_dies_is_waited_for_and_the_log_says_why(
    settings: Settings, tmp_path: Path, own_pool: None
) -> None:
    """kill -9 of the zygote while its step runs: the step (its own session) goes on, so the runner waits for it
    rather than reporting it ended and starting what follows while it still writes its outputs."""
    run_pipeline(_project(tmp_path / "warmup", jobs=2), {}, settings, quiet=True)  # a zygote is ready
    body = SLEEPER.replace("time.sleep(120)", "time.sleep(6)\nopen(sys.argv[1] + '.done', 'w').write('ok')")

    def kill_the_starter_once_the_step_runs() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for path in tmp_path.rglob("r.json"):
                pid = path.read_text()
                if pid.isdigit():  # the sleeper's report (the warm-up's reports are JSON)
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    os.kill(int(stat.rsplit(")", 1)[1].split()[1]), signal.SIGKILL)  # its parent: the zygote
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=kill_the_starter_once_the_step_runs, daemon=True)
    thread.start()
    with pytest.raises(StepFailed) as info:
        run_pipeline(_project(tmp_path / "p", jobs=1, body=body), {}, settings, quiet=True)
    thread.join()
    step = info.value.result.steps[0]
    log = _log(step)
    assert "# note: warm start: forked from" in log
    report = next(info.value.result.run_dir.rglob("r.json"))
    assert Path(str(report) + ".done").exists()  # the step had ended when the runner reported it
    assert step.exit_code == 1
    assert "error: the warm starter ended while the step ran: its exit code is unknown" in log


def test_no_starter_is_started_that_no_later_step_can_use(
    settings: Settings, tmp_path: Path, monkeypatch, own_pool: None
) -> None:
    """Steps with their own environment_variables each need their own zygote: none is started for them (each
    would import numpy, pandas, scikit-learn and MLflow for nothing, on the steps' CPUs)."""
    started: list[str] = []
    real = warm.Zygote

    def counting(python: str, env, local_mlflow: bool):  # type: ignore[no-untyped-def]
        started.append(env.get("STEP_SETTING", ""))
        return real(python, env, local_mlflow)

    monkeypatch.setattr(warm, "Zygote", counting)
    pipeline = _project(tmp_path / "p", jobs=3)
    text = pipeline.read_text()
    for i in range(3):
        text = text.replace(
            f"  j{i}:\n    type: command\n",
            f"  j{i}:\n    type: command\n    environment_variables:\n      STEP_SETTING: v{i}\n",
        )
    pipeline.write_text(text)
    result = run_pipeline(pipeline, {}, settings, quiet=True)
    assert [s.status for s in result.steps] == ["completed"] * 3
    assert started == []


def _zygote_for(
    folder: Path, module: str, body: str
) -> tuple[warm.ModuleCommand, dict[str, str], warm.Zygote]:
    """A module `folder/<module>.py` holding `body`, its `python -m` command, and a zygote (starting) for it."""
    (folder / f"{module}.py").write_text(body)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = warm.module_command(f"python -m {module}", env)
    assert command is not None
    return command, env, warm.Zygote(command.python, env, local_mlflow=True)


def test_a_step_the_starter_is_too_slow_to_start_is_not_started_twice(tmp_path: Path, monkeypatch) -> None:
    """A zygote that does not answer in time (stopped, swapping): the step starts cold, and the zygote must not
    fork it as well once it wakes up."""
    command, env, zygote = _zygote_for(
        tmp_path, "once", "import os\nopen(f'ran.{os.getpid()}', 'w').close()\n"
    )
    try:
        zygote.wait_ready()
        monkeypatch.setattr(warm, "START_TIMEOUT_S", 1.0)
        os.kill(zygote.proc.pid, signal.SIGSTOP)
        with open(os.devnull, "w") as out, pytest.raises(warm.WarmUnavailable):
            zygote.start(command, str(tmp_path), env, out.fileno())
        with contextlib.suppress(ProcessLookupError):
            os.kill(zygote.proc.pid, signal.SIGCONT)
        time.sleep(2)
        assert list(tmp_path.glob("ran.*")) == []  # only the cold start (the runner's) will run it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(zygote.proc.pid, signal.SIGCONT)
        zygote.close()


def test_a_zygote_closed_as_idle_never_forks_a_step_another_thread_was_handed_it_for(
    tmp_path: Path, monkeypatch
) -> None:
    """One thread closes the idle zygotes (release_idle, or the pool over its limit) while another has just been
    handed one (WarmPool.zygote) and not yet asked it for its step: asked after the idle check, the zygote must
    refuse (the step starts cold), not fork the step while it is being closed (run twice, or its exit code lost)."""
    command, env, zygote = _zygote_for(
        tmp_path, "once", "import os\nopen(f'ran.{os.getpid()}', 'w').close()\n"
    )
    real_close = zygote.close
    outcome: list[str] = []

    def the_other_thread_asks_then_close() -> None:
        # Between close_idle's look at the zygote and its close: the other thread's start().
        with open(os.devnull, "w") as out:
            try:
                zygote.start(command, str(tmp_path), env, out.fileno())
                outcome.append("forked")
            except warm.WarmUnavailable:
                outcome.append("cold")
        real_close()

    pool = warm.WarmPool()
    try:
        zygote.wait_ready()
        pool._zygotes[("key",)] = zygote
        monkeypatch.setattr(zygote, "close", the_other_thread_asks_then_close)
        assert pool.close_idle() == 1
        time.sleep(1)
        assert outcome == ["cold"] and list(tmp_path.glob("ran.*")) == []
    finally:
        real_close()


def test_ctrl_c_while_a_step_is_being_forked_leaves_no_step_running(tmp_path: Path) -> None:
    """Ctrl-C reaches the runner after it asked the zygote for the step and before it knows the step's pid (here
    the zygote is stopped, to widen that window): no step may run on, or start later, without the runner."""
    command, env, zygote = _zygote_for(
        tmp_path, "once", "import os\nopen(f'ran.{os.getpid()}', 'w').close()\n"
    )
    # Ctrl-C as the CLI has it (KeyboardInterrupt), whatever handler an earlier test left in this worker.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        zygote.wait_ready()
        os.kill(zygote.proc.pid, signal.SIGSTOP)
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        with open(os.devnull, "w") as out, pytest.raises(KeyboardInterrupt):
            zygote.start(command, str(tmp_path), env, out.fileno())
        with contextlib.suppress(ProcessLookupError):
            os.kill(zygote.proc.pid, signal.SIGCONT)
        time.sleep(2)
        assert list(tmp_path.glob("ran.*")) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(zygote.proc.pid, signal.SIGCONT)
        zygote.close()
        signal.signal(signal.SIGINT, previous)


def test_a_warm_step_finds_the_preloaded_heap_out_of_the_collectors_reach(tmp_path: Path) -> None:
    """The child inherits thousands of preloaded modules; its collections, and the last one at its exit, must not
    walk them all (copying every page they sit on): that once added over a second to every warm step, more than a
    cold start costs. Checked by what the child sees, not by a clock."""
    command, env, zygote = _zygote_for(
        tmp_path, "little", "import gc\nprint(gc.get_freeze_count(), flush=True)\n"
    )
    try:
        zygote.wait_ready()
        read, write = os.pipe()
        try:
            child = zygote.start(command, str(tmp_path), env, write)
        finally:
            os.close(write)
        with os.fdopen(read) as out:
            frozen = int(out.readline())
        assert child.wait(timeout=60) == 0
    finally:
        zygote.close()
    assert frozen > 100_000  # numpy, pandas, scikit-learn and MLflow's objects: ~10^6 here
