"""Distributed command jobs on this machine: `distribution` + `resources.instance_count` launch one local process
per rank with the environment each framework expects (runner/launch.py starts and waits for them).

What Azure ML sets, from Microsoft Learn "Distributed training with Azure Machine Learning" (how-to-train-distributed-
gpu) and "CLI (v2) command job YAML schema" (reference-yaml-job-command: distribution, resources.instance_count):
- pytorch: process_count_per_instance processes per node; MASTER_ADDR, MASTER_PORT, WORLD_SIZE, NODE_RANK, RANK,
  LOCAL_RANK (and LOCAL_WORLD_SIZE) per process.
- mpi: process_count_per_instance processes per node; OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE and
  OMPI_COMM_WORLD_NODE_RANK. No mpirun runs here: the ranks see the variables, not an MPI communicator.
- tensorflow: worker_count workers (default instance_count) and parameter_server_count parameter servers, each with
  TF_CONFIG {"cluster": {"worker": [...], "ps": [...]}, "task": {"type", "index"}}.
Every "node" is this machine: MASTER_ADDR and the TF_CONFIG hosts are 127.0.0.1 with free ports.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import socket
import sys
from typing import TYPE_CHECKING, Any

from amlops.errors import UserError
from amlops.runner.command import render
from amlops.runner.plan import StepPlan

if TYPE_CHECKING:
    from amlops.runner.context import RunContext
    from amlops.runner.local import LocalRunner, StepResult

MAX_LOCAL_PROCESSES = 16


def is_distributed(step: StepPlan) -> bool:
    return step.kind == "command" and (step.distribution is not None or step.instance_count > 1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rank_environments(distribution: dict[str, Any] | None, instance_count: int) -> list[dict[str, str]]:
    """One environment per process, in rank order."""
    dist = distribution or {"type": "pytorch"}  # instance_count alone: one process per node
    kind = str(dist.get("type") or "").lower()
    nodes = max(1, int(instance_count or 1))
    if kind in {"pytorch", "mpi"}:
        per_node = max(1, int(dist.get("process_count_per_instance") or 1))
        world = nodes * per_node
        port = str(_free_port())
        envs = []
        for rank in range(world):
            node, local = divmod(rank, per_node)
            if kind == "pytorch":
                env = {
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": port,
                    "WORLD_SIZE": str(world),
                    "NODE_RANK": str(node),
                    "RANK": str(rank),
                    "LOCAL_RANK": str(local),
                    "LOCAL_WORLD_SIZE": str(per_node),
                }
            else:
                env = {
                    "OMPI_COMM_WORLD_RANK": str(rank),
                    "OMPI_COMM_WORLD_SIZE": str(world),
                    "OMPI_COMM_WORLD_LOCAL_RANK": str(local),
                    "OMPI_COMM_WORLD_LOCAL_SIZE": str(per_node),
                    "OMPI_COMM_WORLD_NODE_RANK": str(node),
                }
            envs.append(env)
        return envs
    if kind == "tensorflow":
        workers = int(dist.get("worker_count") or nodes)
        ps = int(dist.get("parameter_server_count") or 0)
        cluster: dict[str, list[str]] = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(workers)]}
        if ps:
            cluster["ps"] = [f"127.0.0.1:{_free_port()}" for _ in range(ps)]
        tasks = [("worker", i) for i in range(workers)] + [("ps", i) for i in range(ps)]
        return [
            {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": t, "index": i}})} for t, i in tasks
        ]
    raise UserError(f"distribution type {kind!r} is not one Azure ML defines (pytorch, mpi, tensorflow)")


def run_distributed(runner: LocalRunner, ctx: RunContext, step: StepPlan, label: str) -> StepResult:
    envs = rank_environments(step.distribution, step.instance_count)
    what = f"{ctx.plan.source.name}: job {step.name!r}"
    if len(envs) > MAX_LOCAL_PROCESSES:
        raise UserError(
            f"{what}: {len(envs)} processes is more than this machine runs for one step "
            f"({MAX_LOCAL_PROCESSES}); lower resources.instance_count / process_count_per_instance, or use "
            f"--target azure"
        )
    inputs = runner._resolve_inputs(ctx, step)
    outputs = {name: str(runner._output_path(ctx.run_dir, step, name)) for name in step.outputs}
    command = render(step.command or "", inputs, outputs, what, step.literal_inputs())
    spec_path = ctx.step_dir(step.name) / "distribution.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps({"command": command, "ranks": envs}, indent=2), encoding="utf-8")
    # The launcher stands in for the rendered command; the step keeps its outputs, folders and log.
    launcher = dataclasses.replace(
        step,
        # This interpreter, not the step's `python`: under --isolated the step's venv need not hold amlops.
        command=f"{shlex.quote(sys.executable)} -m amlops.runner.launch {shlex.quote(str(spec_path))}",
        inputs={},
        input_types={},
        optional_inputs=set(),
    )
    return runner._run_step(ctx, launcher, f"{label} ×{len(envs)}")
