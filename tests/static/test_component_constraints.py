"""Component inputs state the enums, limits and defaults that Python declares once (amlops.config and the drift
metric registry): a step given a value through Azure ML is held to the same rules as `amlops.yaml`.

The components are parsed with azure-ai-ml's `load_component`, as Azure ML reads them. Its `min` / `max` are
inclusive: `Input._validate_parameter` refuses `value < self.min` and `value > self.max`
(azure-ai-ml 1.35, azure/ai/ml/entities/_inputs_outputs/input.py). So a Python `ge` / `le` is the YAML bound
itself, an integer's `gt=a` is `min: a + 1`, and a number's exclusive bound cannot be stated in YAML (the
component leaves it out and the step checks it).
"""

from __future__ import annotations

import shutil
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import annotated_types as at
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from amlops.config import DataSettings, GateSettings, MonitorSettings, PolicySettings, TrainSettings
from amlops.drift import metrics as M
from amlops.drift.policy import REPORT_FIELDS

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"

# (component, input) -> (settings model, field): the Python declaration each constrained input follows.
DECLARED: dict[tuple[str, str], tuple[type[BaseModel], str]] = {
    ("evaluate", "metric"): (GateSettings, "metric"),
    ("evaluate", "min_improvement"): (GateSettings, "min_improvement"),
    ("evaluate", "bootstrap_samples"): (GateSettings, "bootstrap_samples"),
    ("evaluate", "confidence"): (GateSettings, "confidence"),
    ("evaluate", "require_confident"): (GateSettings, "require_confident"),
    ("evaluate", "seed"): (TrainSettings, "seed"),
    ("evaluate", "holdout_days"): (TrainSettings, "holdout_days"),
    ("evaluate", "min_holdout_rows"): (GateSettings, "min_holdout_rows"),
    ("evaluate", "min_holdout_days"): (GateSettings, "min_holdout_days"),
    ("train", "seed"): (TrainSettings, "seed"),
    ("train", "holdout_days"): (TrainSettings, "holdout_days"),
    ("register", "auto_promote"): (GateSettings, "auto_promote"),
    ("prep", "max_bad_row_share"): (DataSettings, "max_bad_row_share"),
    ("monitor", "window"): (MonitorSettings, "window"),
    ("monitor", "min_window_rows"): (MonitorSettings, "min_window_rows"),
    ("monitor", "chunk_rows"): (MonitorSettings, "chunk_rows"),
    ("monitor", "numeric_metric"): (MonitorSettings, "numeric_metric"),
    ("monitor", "categorical_metric"): (MonitorSettings, "categorical_metric"),
    # The report's "what to do next" decides with the configured policy (amlops.job_inputs.policy_inputs).
    **{
        (step, f"policy_{f}"): (PolicySettings, f)
        for f in REPORT_FIELDS
        for step in ("monitor", "monitor_reduce")
    },
    ("score", "id_column"): (MonitorSettings, "id_column"),
    ("score", "prediction_column"): (MonitorSettings, "prediction_column"),
}
# Fields whose choices the settings check against the metric registry rather than a Literal.
REGISTRY_ENUMS: dict[tuple[type[BaseModel], str], Callable[[], tuple[str, ...]]] = {
    (MonitorSettings, "numeric_metric"): lambda: M.metric_names("numeric"),
    (MonitorSettings, "categorical_metric"): lambda: M.metric_names("categorical"),
}
# A component default that differs from the settings' on purpose (it must still be a valid value).
OWN_DEFAULTS = {("monitor", "window"): "the step's `auto`: weekly when the timestamp column exists"}
# Constrained inputs no setting carries: the step alone reads them, with the reason.
STEP_ONLY = {("score", "threads_per_worker"): "per-worker threads of the parallel step; 0 means one per core"}


def _load(path: Path) -> Any:
    from azure.ai.ml import load_component

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_component(str(path))


def _python_enum(model: type[BaseModel], field: str) -> tuple[Any, ...] | None:
    if (model, field) in REGISTRY_ENUMS:
        return REGISTRY_ENUMS[model, field]()
    annotation = model.model_fields[field].annotation
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    return None


def _python_bounds(model: type[BaseModel], field: str, integer: bool) -> tuple[Any, Any]:
    """(min, max) as an inclusive YAML bound, "unstatable" for a number's exclusive bound, None for none."""
    low: Any = None
    high: Any = None
    for item in model.model_fields[field].metadata:
        if isinstance(item, at.Ge):
            low = item.ge
        elif isinstance(item, at.Gt):
            low = item.gt + 1 if integer else "unstatable"
        elif isinstance(item, at.Le):
            high = item.le
        elif isinstance(item, at.Lt):
            high = item.lt - 1 if integer else "unstatable"
    return low, high


def _accepts(model: type[BaseModel], field: str, value: Any) -> bool:
    try:
        model.__pydantic_validator__.validate_assignment(model.model_construct(), field, value)
    except ValidationError:
        return False
    return True


def disagreements(path: Path) -> list[str]:
    """Every way the component's inputs disagree with the Python declarations, one line each."""
    component = _load(path)
    name = path.stem
    found: list[str] = []
    for input_name, spec in component.inputs.items():
        where = f"{path.name}: inputs.{input_name}"
        enum, low, high = getattr(spec, "enum", None), getattr(spec, "min", None), getattr(spec, "max", None)
        declared = DECLARED.get((name, input_name))
        if declared is None:
            if (name, input_name) in STEP_ONLY:
                continue
            if enum is not None or low is not None or high is not None:
                found.append(f"{where}: states enum/min/max but no Python declaration is mapped to it")
            continue
        model, field = declared
        expected_enum = _python_enum(model, field)
        if (list(enum) if enum is not None else None) != (list(expected_enum) if expected_enum else None):
            found.append(f"{where}: enum {enum} != {model.__name__}.{field} {expected_enum}")
        want_low, want_high = _python_bounds(model, field, spec.type == "integer")
        for label, have, want in (("min", low, want_low), ("max", high, want_high)):
            if want == "unstatable":
                want = None  # an exclusive bound on a number: the YAML must not claim an inclusive one
            if have != want:
                found.append(f"{where}: {label} {have} != {want} from {model.__name__}.{field}")
        if spec.default is not None:
            python_default = model.model_fields[field].get_default(call_default_factory=True)
            if not _accepts(model, field, spec.default):
                found.append(f"{where}: default {spec.default!r} is refused by {model.__name__}.{field}")
            elif spec.default != python_default and (name, input_name) not in OWN_DEFAULTS:
                found.append(
                    f"{where}: default {spec.default!r} != {model.__name__}.{field} {python_default!r}"
                )
    return found


FILES = sorted(COMPONENTS.glob("*.yml"))


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_component_inputs_agree_with_python(path: Path) -> None:
    assert disagreements(path) == []


def test_every_mapped_input_exists() -> None:
    for (name, input_name), (model, field) in DECLARED.items():
        assert input_name in yaml.safe_load((COMPONENTS / f"{name}.yml").read_text())["inputs"], (
            name,
            input_name,
        )
        assert field in model.model_fields, (model.__name__, field)


def test_a_planted_disagreement_is_found(tmp_path: Path) -> None:
    """Edited copies: a dropped enum value, a looser minimum, another default, an inclusive bound where Python
    has an exclusive one, and a constrained input no declaration covers."""
    folder = tmp_path / "components"
    shutil.copytree(COMPONENTS, folder)
    (tmp_path / "src").symlink_to(ROOT / "src")  # the components' `code: ../src`
    evaluate = folder / "evaluate.yml"
    text = evaluate.read_text()
    text = text.replace("enum: [mae, rmse, mape]", "enum: [mae, rmse]")
    text = text.replace("default: 1000\n    min: 50", "default: 1000\n    min: 10")
    text = text.replace("default: 0.95", "default: 0.95\n    min: 0")
    text = text.replace("default: 42\n", "default: 7\n", 1)
    text = text.replace("max_mae:\n    type: number\n", "max_mae:\n    type: number\n    min: 0\n")
    evaluate.write_text(text)
    found = "\n".join(disagreements(evaluate))
    assert "inputs.metric: enum ['mae', 'rmse'] != GateSettings.metric" in found
    assert "inputs.bootstrap_samples: min 10 != 50" in found
    assert "inputs.confidence: min 0.0 != None" in found
    assert "inputs.seed: default 7 != TrainSettings.seed 42" in found
    assert "inputs.max_mae: states enum/min/max but no Python declaration" in found


def test_a_newly_registered_metric_must_reach_the_component(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry is the declaration: a metric added there and not to monitor.yml's enum is reported."""
    extra = M.DriftMetric(
        "example_distance",
        {"categorical": 0.1},
        p_value=False,
        label="Example",
        definition="-",
        compute=lambda w: M.Computed(None),
    )
    monkeypatch.setattr(M, "DRIFT_METRICS", (*M.DRIFT_METRICS, extra))
    found = disagreements(COMPONENTS / "monitor.yml")
    assert (
        len(found) == 1 and "inputs.categorical_metric: enum" in found[0] and "example_distance" in found[0]
    )


def test_steps_with_registry_side_effects_are_never_reused() -> None:
    """register writes to the registry and evaluate reads its current champion: neither may be served from an
    earlier run's outputs (Azure ML and the local runner reuse deterministic steps with identical inputs)."""
    from amlops.runner.plan import build_plan

    plan = build_plan(
        ROOT / "pipelines" / "training.yml", {"raw_file": str(ROOT / "pipelines" / "training.yml")}
    )
    deterministic = {s.name: s.deterministic for s in plan.steps}
    assert deterministic["register"] is False and deterministic["evaluate"] is False
    assert deterministic["prep"] and deterministic["train"]
