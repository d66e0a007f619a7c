"""Whole-command benchmark: what a user waits for, process start to exit, next to a baseline source tree.

Rows (issue 20): `amlops monitor` on 1M x 25 with the profile built on the fly and with a stored profile;
`build_profile` on 1M x 25 in process; `amlops run` of a two-step pipeline whose steps only `echo`; `amlops
demo`; and the monitor core against the read-once floor. Each command runs as a fresh process from its tree's
folder (its amlops.yaml, pipelines/ and state), with the project's .venv and that tree's `src/` first on
PYTHONPATH, so two trees compare on the same interpreter and libraries.

Absolute times on a shared machine are noise: the trees run interleaved (now, baseline, now, baseline, ...)
so load hits both alike, and the table gives the ratio now/baseline and the CPU seconds (the process and its
children, less load-sensitive than wall time). The targets are judged on the median wall time of this tree.

Correctness (kept beside the timings): the monitor finds the 7 injected columns and nothing on the clean copy,
and the fast profile build (a sampled first chunk) flags exactly what the sorted build flags, with its
normalized Wasserstein distances within the scipy cross-check tolerance (0.01 + 3%).

Environment: BENCH_WHOLE_BASELINE (a source tree to compare with, e.g. a `git worktree` of main; unset: this
tree alone), BENCH_WHOLE_RUNS (3), BENCH_WHOLE_DEMO_RUNS (1; 0 skips the demo rows), BENCH_WHOLE_ROWS (a
comma-separated subset of the rows, e.g. `monitor_fly,monitor_profile`; default: all).
Results: a table on stdout and bench/results/whole-<time>.json.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import monitor_bench as mb  # the same data and worker protocol as the monitor bench

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
N = 1_000_000
TARGETS = {  # seconds (wall, this tree, idle machine); the last is a ratio
    "monitor_fly": 2.0,
    "monitor_profile": 1.5,
    "build_profile": 0.5,
    "run_echo": 1.0,
    "demo": 25.0,
    "core_vs_floor": 2.0,
}
# Side by side, no target of their own: the training pipeline (four `python -m` steps) with warm step starts, the
# default, and with every step in a new interpreter (AMLOPS_WARM_STEPS=0; docs/runner.md "Warm step starts").
COMPARE = {
    "train_warm": "amlops train 24k rows, warm step starts",
    "train_cold": "amlops train 24k rows, AMLOPS_WARM_STEPS=0",
}
LABELS = {
    "monitor_fly": "amlops monitor 1M x 25, profile built on the fly",
    "monitor_profile": "amlops monitor 1M x 25, stored profile",
    "build_profile": "build_profile 1M x 25, in process",
    "run_echo": "amlops run, two-step echo pipeline",
    "demo": "amlops demo (venv ready)",
    "core_vs_floor": "monitor core vs read-once floor, 1M (ratio)",
    **COMPARE,
}

ECHO_COMPONENT = """\
$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
type: command
name: echo_{name}
version: "1"
inputs:
  message:
    type: string
    default: hello
outputs:
  out:
    type: uri_folder
command: echo ${{{{inputs.message}}}} > ${{{{outputs.out}}}}/said.txt
environment: azureml:AzureML-sklearn-1.5@latest
"""
ECHO_PIPELINE = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
display_name: echo twice
jobs:
  first:
    type: command
    component: ./first.yml
  second:
    type: command
    component: ./second.yml
    inputs:
      message: done
"""


# ------------------------------------------------------------------------------------------ fixtures
def echo_pipeline(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("first", "second"):
        (folder / f"{name}.yml").write_text(ECHO_COMPONENT.format(name=name), encoding="utf-8")
    (folder / "echo.yml").write_text(ECHO_PIPELINE, encoding="utf-8")
    return folder / "echo.yml"


def stored_profile(reference: Path) -> Path:
    path = mb.DATA / f"{N}" / "whole_profile.json"
    if not path.exists():
        shutil.copy(mb.build_profile(reference, N)[0], path)
    return path


# ------------------------------------------------------------------------------------------ measuring
def tree_env(tree: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true", **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree / "src"), env.get("PYTHONPATH", "")) if p)
    env.pop("AMLOPS_PLAN_CACHE", None)
    return env


def timed(
    cmd: list[str], tree: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd or tree, env=tree_env(tree, env), capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res: dict[str, Any] = {"seconds": wall, "cpu_seconds": cpu, "exit": proc.returncode}
    if proc.returncode != 0:
        res["error"] = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    res["stdout"] = proc.stdout
    return res


def cli(*args: str) -> list[str]:
    return [str(PYTHON), "-m", "amlops.cli", *args]


BUILD_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from amlops.drift.monitor import iter_batches, open_dataset
    from amlops.drift.profile import build_profile_from_batches
    num = [f"n{i:02d}" for i in range(20)]; cat = [f"c{i}" for i in range(5)]
    best = None
    for _ in range(3):
        w, c = time.perf_counter(), time.process_time()
        ds = open_dataset(sys.argv[1])
        build_profile_from_batches(iter_batches(ds, num + cat, 1_000_000), num, cat)
        run = (time.perf_counter() - w, time.process_time() - c)
        best = run if best is None or run[0] < best[0] else best
    print(json.dumps({"seconds": best[0], "cpu_seconds": best[1]}))
    """
)


def train(tree: Path, data: Path, scratch: Path, warm: bool) -> dict[str, Any]:
    """`amlops train` into a new state folder (the first model of its registry), as a user's first training."""
    state = Path(tempfile.mkdtemp(prefix="train-", dir=scratch))
    env = {"AMLOPS_STATE_DIR": str(state / "state"), "AMLOPS_RUNS_DIR": str(state / "runs")}
    env["AMLOPS_WARM_STEPS"] = "1" if warm else "0"
    res = timed(cli("train", "--data", str(data)), tree, env=env)
    shutil.rmtree(state, ignore_errors=True)
    return res


def training_data(scratch: Path) -> Path:
    path = scratch / "train.parquet"
    subprocess.run(
        cli("data", "generate", "--out", str(path), "--days", "120"), check=True, capture_output=True
    )
    return path


def build_in_process(tree: Path, reference: Path) -> dict[str, Any]:
    res = timed([str(PYTHON), "-c", BUILD_SCRIPT, str(reference)], tree)
    if "error" in res:
        return res
    return {**json.loads(res["stdout"].strip().splitlines()[-1]), "exit": 0}


def core_ratio(tree: Path, files: dict[str, Path], profile: Path, runs: int) -> dict[str, Any]:
    """The monitor worker against the floor worker, same file, same process layout (monitor_bench's)."""
    out: dict[str, Any] = {}
    for tool in ("amlops", "floor"):
        cmd = [str(PYTHON), str(mb.WORKERS / f"{tool}_worker.py")]
        cmd += ["--reference", str(files["reference"]), "--current", str(files["drift"])]
        cmd += ["--numeric", ",".join(mb.NUMERIC), "--categorical", ",".join(mb.CATEGORICAL)]
        cmd += ["--runs", str(runs), "--profile", str(profile)]
        env = tree_env(tree)
        env["PYTHONPATH"] = os.pathsep.join([str(mb.WORKERS), env["PYTHONPATH"]])
        proc = subprocess.run(cmd, env=env, cwd=mb.WORKERS, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            return {"error": f"{tool}: {(proc.stderr or proc.stdout).strip()[-300:]}"}
        out[tool] = json.loads(lines[-1])
    return {
        "seconds": out["amlops"]["seconds"] / out["floor"]["seconds"],
        "cpu_seconds": out["amlops"]["cpu_seconds"] / max(out["floor"]["cpu_seconds"], 1e-9),
        "drifted": out["amlops"]["drifted"],
    }


# ------------------------------------------------------------------------------------------ correctness
FAST_CHECK = textwrap.dedent(
    """
    import json, sys
    from amlops.drift.monitor import MonitorOptions, iter_batches, open_dataset, run_monitor
    from amlops.drift.profile import ProfileBuilder
    num = [f"n{i:02d}" for i in range(20)]; cat = [f"c{i}" for i in range(5)]
    def build(sample_above):
        b = ProfileBuilder(num, cat, sample_above=sample_above)
        for batch in iter_batches(open_dataset(sys.argv[1]), num + cat, 1_000_000):
            b.update(batch)
        return b.finalize()
    exact, fast = build(10**12), build(1)
    out = {}
    for case in ("drift", "clean"):
        a = run_monitor(sys.argv[2 if case == "drift" else 3], exact, MonitorOptions(window="all"))
        b = run_monitor(sys.argv[2 if case == "drift" else 3], fast, MonitorOptions(window="all"))
        worst = 0.0
        for name in num:
            wa = a["overall"]["features"][name]["metrics"]["normalized_wasserstein_distance"]["value"]
            wb = b["overall"]["features"][name]["metrics"]["normalized_wasserstein_distance"]["value"]
            worst = max(worst, abs(wa - wb) - (0.01 + 0.03 * wa))
        out[case] = {"exact": sorted(a["verdict"]["drifted_features"]),
                     "fast": sorted(b["verdict"]["drifted_features"]), "excess": worst}
    print(json.dumps(out))
    """
)


def fast_build_check(files: dict[str, Path]) -> dict[str, Any]:
    res = timed(
        [str(PYTHON), "-c", FAST_CHECK, *(str(files[k]) for k in ("reference", "drift", "clean"))], ROOT
    )
    if "error" in res:
        return {"error": res["error"]}
    return dict(json.loads(res["stdout"].strip().splitlines()[-1]))


# ------------------------------------------------------------------------------------------ main
def main() -> int:
    runs = int(os.environ.get("BENCH_WHOLE_RUNS", "3"))
    demo_runs = int(os.environ.get("BENCH_WHOLE_DEMO_RUNS", "1"))
    trees = {"now": ROOT}
    if os.environ.get("BENCH_WHOLE_BASELINE"):
        trees["baseline"] = Path(os.environ["BENCH_WHOLE_BASELINE"]).resolve()
    print(
        f"whole-command bench · {os.cpu_count()} cores · load {os.getloadavg()[0]:.1f} · trees "
        + ", ".join(f"{k}={v}" for k, v in trees.items())
        + f" · median of {runs} (demo: {demo_runs})"
    )
    files = mb.dataset(N)
    profile = stored_profile(files["reference"])
    scratch = Path(tempfile.mkdtemp(prefix="amlops-whole-"))
    echo = echo_pipeline(scratch / "echo")
    ref, cur = str(files["reference"]), str(files["drift"])
    commands: dict[str, Any] = {
        "monitor_fly": lambda t: timed(
            cli("monitor", "--reference", ref, "--current", cur, "--window", "all", "--json"), t
        ),
        "monitor_profile": lambda t: timed(
            cli("monitor", "--profile", str(profile), "--current", cur, "--window", "all", "--json"), t
        ),
        "build_profile": lambda t: build_in_process(t, files["reference"]),
        "run_echo": lambda t: timed(cli("run", str(echo)), t),
    }
    data = training_data(scratch)
    for row, warm in (("train_warm", True), ("train_cold", False)):
        commands[row] = lambda t, warm=warm: train(t, data, scratch, warm)
    only = {r.strip() for r in os.environ.get("BENCH_WHOLE_ROWS", "").split(",") if r.strip()}
    if only:
        commands = {row: fn for row, fn in commands.items() if row in only}
        demo_runs = demo_runs if "demo" in only else 0
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    # Each row on its own, except the rows compared side by side, which alternate run by run.
    groups = [[row] for row in commands if row not in COMPARE] + [[row for row in commands if row in COMPARE]]
    for group in filter(None, groups):
        for row in group:
            for tree in trees.values():  # one warm-up each: plan caches, bytecode, page cache
                commands[row](tree)
        for _ in range(runs):
            for row in group:
                for name, tree in trees.items():
                    results.setdefault(row, {}).setdefault(name, []).append(commands[row](tree))
        for row in group:
            print(f"  {row}: " + "  ".join(f"{n} {_median(r)}" for n, r in results[row].items()), flush=True)
    for _ in range(demo_runs):
        for name, tree in trees.items():
            out_dir = scratch / f"demo-{name}"
            shutil.rmtree(out_dir, ignore_errors=True)
            results.setdefault("demo", {}).setdefault(name, []).append(
                timed(cli("demo", "--out", str(out_dir)), tree)
            )
    if demo_runs:
        print("  demo: " + "  ".join(f"{n} {_median(r)}" for n, r in results["demo"].items()), flush=True)
    if not only or "core_vs_floor" in only:
        for name, tree in trees.items():
            results.setdefault("core_vs_floor", {})[name] = [core_ratio(tree, files, profile, max(runs, 3))]
    check = fast_build_check(files) if not only or "build_profile" in only else {"skipped": True}
    print_table(results, trees, check)
    shutil.rmtree(scratch, ignore_errors=True)
    mb.RESULTS.mkdir(parents=True, exist_ok=True)
    path = mb.RESULTS / f"whole-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    for per_tree in results.values():
        for rows in per_tree.values():
            for r in rows:
                r.pop("stdout", None)
    path.write_text(
        json.dumps({"load_average": os.getloadavg(), "results": results, "fast_build": check}, indent=1)
        + "\n",
        encoding="utf-8",
    )
    print(f"results: {path}")
    return 0


def _flagged(rows: list[dict[str, Any]]) -> list[str] | None:
    """The drifted features of the last successful `--json` run, None when there is none to read."""
    for r in reversed(rows):
        try:
            return list(json.loads(r.get("stdout") or "")["verdict"]["drifted_features"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _stat(rows: list[dict[str, Any]], key: str) -> float | None:
    ok = [r[key] for r in rows if "error" not in r and r.get("exit", 0) == 0]
    return statistics.median(ok) if ok else None


def _median(rows: list[dict[str, Any]]) -> str:
    wall, cpu = _stat(rows, "seconds"), _stat(rows, "cpu_seconds")
    if wall is None:
        return "error: " + next((r.get("error", "") for r in rows if "error" in r), "")
    return f"{wall:.2f} s (cpu {cpu:.2f})"


def print_table(results: dict[str, Any], trees: dict[str, Path], check: dict[str, Any]) -> None:
    base = "baseline" if "baseline" in trees else None
    print()
    head = f"{'what':48} {'target':>7} {'now':>18} " + (f"{'baseline':>18} {'now/base':>9}" if base else "")
    print(head + "  holds")
    print("-" * (len(head) + 7))
    for row, label in LABELS.items():
        if row not in results:
            continue
        now_rows = results[row]["now"]
        wall, cpu = _stat(now_rows, "seconds"), _stat(now_rows, "cpu_seconds")
        unit = "x" if row == "core_vs_floor" else " s"
        now_text = f"{wall:.2f}{unit} ({cpu:.2f})" if wall is not None else "error"
        target = f"{TARGETS[row]:>6.1f}{unit.strip() or 's'}" if row in TARGETS else f"{'-':>7}"
        line = f"{label:48} {target} {now_text:>18} "
        if base:
            b_wall, b_cpu = _stat(results[row][base], "seconds"), _stat(results[row][base], "cpu_seconds")
            b_text = f"{b_wall:.2f}{unit} ({b_cpu:.2f})" if b_wall is not None else "error"
            ratio = f"{wall / b_wall:.2f}" if wall is not None and b_wall else "-"
            line += f"{b_text:>18} {ratio:>9}"
        if row not in TARGETS:
            print(line)
            continue
        holds = "PASS" if wall is not None and wall <= TARGETS[row] else "MISS"
        print(f"{line}  {holds}")
    warm_rows, cold_rows = results.get("train_warm", {}).get("now"), results.get("train_cold", {}).get("now")
    if warm_rows and cold_rows:
        w, c = _stat(warm_rows, "seconds"), _stat(cold_rows, "seconds")
        wc, cc = _stat(warm_rows, "cpu_seconds"), _stat(cold_rows, "cpu_seconds")
        if w and c and wc and cc:
            print(
                f"  warm/cold step starts, amlops train: wall {w / c:.2f}, CPU {wc / cc:.2f} (same run, interleaved)"
            )
    print("  (seconds: median wall; in brackets the CPU seconds of the process and its children; ratio rows:")
    print(
        "   wall ratio, in brackets the CPU ratio. Targets hold on an idle machine: read the ratios under load.)"
    )
    for row in ("monitor_fly", "monitor_profile"):
        for r in results.get(row, {}).get("now", []):
            if "error" in r:
                print(f"  MISS  {row} failed: {r['error']}")
                break
        flagged = _flagged(results.get(row, {}).get("now", []))
        if flagged is not None:  # the whole command's verdict, not only the core's
            ok = set(flagged) == mb.DRIFTED
            print(f"  {'PASS' if ok else 'MISS'}  {row}: the command's verdict flags {sorted(flagged)}")
    found = results.get("core_vs_floor", {}).get("now", [{}])[0].get("drifted")
    if found is not None:
        ok = set(found) >= mb.DRIFTED and not (set(found) - mb.DRIFTED)
        print(f"  {'PASS' if ok else 'MISS'}  monitor flags exactly the 7 injected columns: {sorted(found)}")
    if "error" in check:
        print(f"  MISS  fast profile build check failed: {check['error']}")
        return
    if check.get("skipped"):
        return
    for case in ("drift", "clean"):
        c = check[case]
        same = c["exact"] == c["fast"]
        within = c["excess"] <= 0
        expect = sorted(mb.DRIFTED) if case == "drift" else []
        print(
            f"  {'PASS' if same and within and c['fast'] == expect else 'MISS'}  fast (sampled) profile build, "
            f"{case}: flags {len(c['fast'])} as the sorted build does ({len(c['exact'])}); normalized "
            f"Wasserstein within 0.01 + 3% of it (worst excess {c['excess']:+.4f})"
        )


if __name__ == "__main__":
    sys.exit(main())
