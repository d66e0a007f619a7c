"""Every component, pipeline, schedule and environment YAML loads and validates with azure-ai-ml, offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from amlops.validation import find_yaml, validate_file

ROOT = Path(__file__).resolve().parents[2]
FILES = find_yaml([ROOT / "components", ROOT / "pipelines"])


def test_there_is_something_to_validate() -> None:
    kinds = {validate_file(f)[0] for f in FILES}
    assert {"component", "pipeline", "environment"} <= kinds


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_yaml_is_valid(path: Path) -> None:
    kind, problem = validate_file(path)
    assert problem is None, f"{path.relative_to(ROOT)} ({kind}): {problem}"


COMPONENTS = [f for f in FILES if f.parent.name == "components"]


@pytest.mark.parametrize("path", COMPONENTS, ids=[f.name for f in COMPONENTS])
def test_components_follow_the_project_conventions(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    for key in ("$schema", "name", "version", "display_name", "description", "inputs", "outputs"):
        assert key in doc, f"{path.name}: missing {key}"
    code = doc.get("code") or doc.get("task", {}).get("code")
    env = doc.get("environment") or doc.get("task", {}).get("environment")
    assert code == "../src", f"{path.name}: code must point at ../src"
    # Parallel components run Azure ML's parallel driver, which needs its runtime packages in the environment
    # (components/environment/scoring); command components share the project's environment.
    expected = (
        "file:./environment/scoring/environment.yml"
        if doc.get("type") == "parallel"
        else "file:./environment/environment.yml"
    )
    assert env == expected, f"{path.name}: environment must be {expected}"
    for name, spec in {**doc["inputs"], **doc["outputs"]}.items():
        assert "type" in spec, f"{path.name}: {name} has no type"


@pytest.mark.parametrize("path", COMPONENTS, ids=[f.name for f in COMPONENTS])
def test_text_inputs_are_quoted_in_commands(path: Path) -> None:
    """Azure ML pastes input values into a command as they are: a text value with a space, a comma inside braces
    (JSON) or a `&` (a SAS URL) would be split or run by the shell. Parallel components' program_arguments are
    not run by a shell (Azure ML splits them itself and keeps quotes as characters), so only commands count."""
    doc = yaml.safe_load(path.read_text())
    if doc.get("type") != "command":
        return
    text = [name for name, spec in doc["inputs"].items() if spec.get("type") == "string"]
    command = doc["command"]
    for name in text:
        placeholder = "${{inputs." + name + "}}"
        if placeholder in command:
            assert f"'{placeholder}'" in command, f"{path.name}: quote {placeholder} as '{placeholder}'"


def test_validation_catches_a_broken_component(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "components", tmp_path / "components")
    target = next(iter(sorted((tmp_path / "components").glob("*.yml"))))
    target.write_text(target.read_text().replace("type: ", "type: not_a_type_", 1))
    _kind, problem = validate_file(target)
    assert problem is not None
