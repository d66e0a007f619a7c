"""The package's layers point down only: cli/commands → application → domain → adapters (README, "Layers").

commands/ parses arguments and prints; the application modules (job inputs, training, scoring, monitoring, loop,
retrain, demo) hold the work; the domain (steps, data, drift, registry) and the adapters never reach up. Checked
on the import statements of every module (including imports inside functions), so a lazy import cannot hide a
back-edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "amlops"
COMMANDS = ("amlops.cli", "amlops.commands")
APPLICATION = (
    "amlops.job_inputs",
    "amlops.training",
    "amlops.scoring",
    "amlops.monitoring",
    "amlops.loop",
    "amlops.retrain",
    "amlops.demo",
    # Schedules turn settings into scheduled jobs, as the loop turns them into submitted ones.
    "amlops.azure.schedules",
)
DOMAIN = ("amlops.steps", "amlops.data", "amlops.drift", "amlops.registry")


def module_name(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def back_edges(name: str, source: str) -> list[str]:
    """Imports of module `name` that point up a layer."""
    if _under(name, COMMANDS):
        return []
    up = COMMANDS if _under(name, APPLICATION) else COMMANDS + APPLICATION
    return sorted(i for i in imports(source) if _under(i, up))


def test_no_module_reaches_up_a_layer() -> None:
    found = {
        module_name(p): edges
        for p in sorted(SRC.rglob("*.py"))
        if (edges := back_edges(module_name(p), p.read_text(encoding="utf-8")))
    }
    assert found == {}


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("amlops.loop", "def f():\n    from amlops.commands.train import training_inputs\n"),
        ("amlops.steps.monitor", "import amlops.loop\n"),
        ("amlops.registry", "from amlops import retrain\n"),
        ("amlops.drift.policy", "from amlops.job_inputs import Target\n"),
    ],
)
def test_the_check_sees_a_planted_back_edge(module: str, source: str) -> None:
    assert back_edges(module, source)
