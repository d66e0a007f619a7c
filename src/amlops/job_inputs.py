"""Settings → pipeline inputs: the one place that turns `amlops.yaml` into the inputs of each pipeline.

Every caller uses these functions — the CLI commands (`train`, `score`, `monitor`), the loop on both targets, the
demo and the Azure ML schedules — so a setting reaches a job the same way whether it runs on this machine or on
Azure ML. Only where the data lives differs between targets (a local path, or a workspace asset/URL); every other
input is identical, which `tests/loop/test_job_inputs_parity.py` asserts.

The steps never read `amlops.yaml` (on Azure ML there is none): every value they need travels as an input.
Importing this module is cheap (the CLI imports it for the `Target` option type).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.errors import UsageError, UserError

if TYPE_CHECKING:
    from amlops.config import Settings

Inputs = dict[str, str]


class Target(StrEnum):
    """Where a pipeline runs: this machine's runner, or a job in the Azure ML workspace."""

    local = "local"
    azure = "azure"


def is_remote(value: str) -> bool:
    """A workspace asset (`azureml:…`) or a URL: passed to the job as it is, never resolved on this machine."""
    return value.startswith("azureml:") or "://" in value


def _asset_ref(value: str) -> bool:
    """`name:version` / `name@latest`: a registered data asset (Azure ML resolves it, not this machine)."""
    return (":" in value or "@" in value) and "/" not in value


def _location(value: str, target: Target, flag: str) -> str:
    """A data location as the job takes it: absolute local paths (the runner resolves relative ones against the
    pipeline file, not the cwd; the SDK uploads local paths), remote references as given."""
    if is_remote(value):
        if target is Target.local and value.startswith("azureml:"):
            raise UserError(f"{flag} {value}: Azure ML assets need --target azure (locally: a path or URL)")
        return value
    path = Path(value).expanduser()
    if path.exists():
        return str(path.resolve())
    if target is Target.azure and _asset_ref(value):
        return value
    raise UserError(f"{flag} {value}: not found")


# --- training ---------------------------------------------------------------------------------------------


def params_text(params: dict[str, Any]) -> str:
    """Regressor parameters as k=v,k=v, readable in the studio; JSON when a value is not a plain scalar (the
    component quotes the placeholder, so braces, commas and spaces reach the step as one argument)."""
    if not params:
        return ""
    if all(isinstance(v, str | int | float | bool) or v is None for v in params.values()) and not any(
        "," in str(v) or "=" in str(v) or " " in str(v) for v in params.values()
    ):
        return ",".join(
            f"{k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"
            for k, v in params.items()
        )
    return json.dumps(params, separators=(",", ":"))


def training_data_inputs(data: str, target: Target) -> Inputs:
    """raw_file or raw_folder (by what the data is) and data_uri (what lineage records). A path with shell syntax
    is refused here, naming --data, before the runner or the submission would refuse the input."""
    from amlops.shell_values import check_value, last_segment

    location = _location(data, target, "--data")
    key = "raw_folder" if not is_remote(location) and Path(location).is_dir() else "raw_file"
    check_value(key, last_segment(location), where=f"--data {data}", file_name=True)
    check_value("data_uri", location, where=f"--data {data}")
    if is_remote(location) or _asset_ref(location):
        # Data assets registered by `amlops data register` are folders; a URL naming a file is a file.
        from amlops.data.io import DATA_SUFFIXES

        is_file = "://" in location and location.lower().rstrip("/").endswith(DATA_SUFFIXES)
        return {"raw_file" if is_file else "raw_folder": location, "data_uri": location}
    return {"raw_folder" if Path(location).is_dir() else "raw_file": location, "data_uri": location}


def default_training_data(settings: Settings, target: Target, env: str | None = None) -> str | None:
    """`data.raw` (relative to amlops.yaml), else on Azure ML the configured training data
    (`azure.training_data`, the folder scheduled retrains read), else None."""
    raw = settings.data.raw
    if raw:
        return raw if is_remote(raw) else str(settings.path(raw))
    if target is Target.azure:
        return settings.azure_for(env).training_data
    return None


def training_inputs(
    settings: Settings,
    data: str | None,
    target: Target = Target.local,
    *,
    env: str | None = None,
    require_data: bool = True,
) -> Inputs:
    """The inputs of pipelines/training.yml: data (given, or the configured default), schema, gate, lineage."""
    from amlops.tracking import git_commit

    source = data or default_training_data(settings, target, env)
    data_inputs: Inputs = {}
    if source:
        data_inputs = training_data_inputs(source, target)
    elif require_data:
        raise UsageError("no training data: pass --data PATH (or set data.raw in amlops.yaml)")
    gate = settings.gate
    if gate.min_holdout_days > settings.train.holdout_days:
        raise UsageError(
            f"gate.min_holdout_days ({gate.min_holdout_days}) is more than train.holdout_days "
            f"({settings.train.holdout_days}): the gate could never decide; lower it or hold out more days"
        )
    return {
        **data_inputs,
        "schema": str(settings.schema_path()),
        "max_bad_row_share": str(settings.data.max_bad_row_share),
        "model_name": settings.model_name,
        "seed": str(settings.train.seed),
        "holdout_days": str(settings.train.holdout_days),
        "params": params_text(settings.train.params),
        "metric": gate.metric,
        # Pipeline inputs cannot be null: 0 means "no limit" (pipelines/training.yml).
        "max_mae": str(gate.max_mae or 0.0),
        "max_rmse": str(gate.max_rmse or 0.0),
        "max_mape": str(gate.max_mape or 0.0),
        "min_improvement": str(gate.min_improvement),
        "bootstrap_samples": str(gate.bootstrap_samples),
        "confidence": str(gate.confidence),
        "require_confident": str(gate.require_confident).lower(),
        "auto_promote": str(gate.auto_promote).lower(),
        "min_holdout_rows": str(gate.min_holdout_rows),
        "min_holdout_days": str(gate.min_holdout_days),
        "git_commit": git_commit(settings.base_dir),
    }


# --- batch inference --------------------------------------------------------------------------------------


# The `monitor.*` role keys the schema gives when they are not set: key -> the schema's field.
SCHEMA_ROLES = {"timestamp_column": "date_column", "id_column": "id_column", "label_column": "target"}


def column_roles(settings: Settings) -> Inputs:
    """Which column is the timestamp, the row id, the label and the prediction, for scoring and monitoring.

    The schema (`data.schema_file`) is the one home of the data's roles: its `date_column`, `id_column` and
    `target`. A `monitor.*` key set in amlops.yaml (or `AMLOPS_MONITOR__*`, or a command's `--*-column` flag,
    which sets it) overrides it, for data without a schema. With neither, the built-in names apply; a missing id
    column is generated by the scoring step (`<file>:<row>`) and written into the predictions."""
    m = settings.monitor
    explicit = m.model_fields_set
    schema = _schema_or_none(settings)
    from_schema = {key: getattr(schema, field) if schema else None for key, field in SCHEMA_ROLES.items()}
    roles: Inputs = {}
    for key in ("timestamp_column", "id_column", "label_column", "prediction_column"):
        value = getattr(m, key)
        roles[key] = value if key in explicit else (from_schema.get(key) or value)
    return roles


def _schema_or_none(settings: Settings) -> Any:
    """The configured schema, or None when its file does not exist (monitoring data profiled on the fly needs
    none); a schema file that exists but is broken is an error. Found as training finds it
    (`Settings.schema_path`: the default name falls back to the shipped schema), so a folder without amlops.yaml
    gets the same roles for training, scoring and monitoring."""
    from amlops.config import ConfigError

    try:
        path = settings.schema_path()
    except ConfigError:
        if "schema_file" in settings.data.model_fields_set:
            raise
        return None
    from amlops.data.schema import load_schema

    return load_schema(path)


def scoring_inputs(settings: Settings, data: str, model: str, version: str) -> Inputs:
    """The inputs of pipelines/batch_inference.yml. `model` is a local model folder or `azureml:name:version`.
    The id and prediction columns come from column_roles (the schema first)."""
    roles = column_roles(settings)
    for key in ("id_column", "prediction_column"):
        value = roles[key]
        if any(ch.isspace() for ch in value):
            # A parallel step's program_arguments are split at spaces by Azure ML, quotes or not.
            raise UsageError(
                f"monitor.{key}: {value!r} has a space; the scoring step gets it as a command argument, which "
                "Azure ML splits at spaces: use a column name without spaces"
            )
    return {
        "data": data,
        "model": model,
        "model_version": version,
        # The monitor reads the same columns from the predictions: one setting for both.
        "id_column": roles["id_column"],
        "prediction_column": roles["prediction_column"],
    }


# --- monitoring -------------------------------------------------------------------------------------------


def model_reference(spec: str) -> str:
    """NAME@ALIAS -> models:/NAME@ALIAS; NAME/VERSION and NAME:VERSION -> models:/NAME/VERSION; a model folder
    -> its absolute path; URIs and `azureml:` assets pass through."""
    if "://" in spec or spec.startswith(("models:/", "azureml:")):
        return spec
    if Path(spec).expanduser().is_dir():  # a downloaded model folder
        return str(Path(spec).expanduser().resolve())
    for sep in ("@", "/", ":"):
        if sep in spec:
            name, ref = spec.split(sep, 1)
            if name and ref:
                return f"models:/{name}@{ref}" if sep == "@" else f"models:/{name}/{ref}"
    raise UserError(
        f"--model {spec!r}: expected NAME@ALIAS (e.g. demand-forecaster@champion) or NAME/VERSION"
    )


def _dated(window: str) -> bool:
    """Whether a window spec needs the timestamp column (daily, weekly)."""
    from amlops.config import AUTO_WINDOW, window_kind

    return window.strip().lower() != AUTO_WINDOW and window_kind(window)[0] in ("daily", "weekly")


def _has_column(location: str, column: str) -> bool | None:
    """Whether local data has the column (None when it cannot be told cheaply, e.g. a URL or an asset)."""
    if is_remote(location) or not Path(location).exists():
        return None
    from amlops.drift.monitor import MonitorError, open_dataset

    try:
        return column in open_dataset(location).schema.names
    except MonitorError as exc:
        raise UserError(str(exc)) from None


def monitoring_inputs(
    settings: Settings,
    current: str | None,
    *,
    reference: str | None = None,
    profile: str | None = None,
    model: str | None = None,
    labels: str | None = None,
    window: str | None = None,
    target: Target = Target.local,
    env: str | None = None,
) -> tuple[Inputs, str | None]:
    """(inputs of pipelines/monitoring.yml, a note for the user). The reference is one of `reference` (data
    profiled on the fly), `profile` (a stored profile) or `model` (its stored profile; default: the champion).
    On Azure ML the current data defaults to `azure.monitoring_data`."""
    m = settings.monitor
    given = [x for x in (reference, profile, model) if x]
    if len(given) > 1:
        raise UsageError("give one of --reference, --profile, --model")
    if current is None:
        if target is not Target.azure:
            raise UsageError("--current is required (new data with predictions)")
        current = settings.azure_for(env).monitoring_data
    inputs: Inputs = {"current_data": _location(current, target, "--current")}
    if reference:
        inputs["reference_data"] = _location(reference, target, "--reference")
    elif profile:
        inputs["reference_profile"] = _location(profile, target, "--profile")
    else:
        inputs["model"] = model_reference(model or f"{settings.model_name}@champion")
    if labels:
        inputs["labels"] = _location(labels, target, "--labels")
    note = None
    roles = column_roles(settings)
    chosen = window or m.window
    stamp = roles["timestamp_column"]
    if window is None and _dated(chosen) and _has_column(inputs["current_data"], stamp) is False:
        # The configured default needs a timestamp column this data does not have: one window, and say so.
        note = f"no {stamp!r} column in the current data: one window over all rows"
        chosen = "all"
    inputs.update(
        window=chosen,
        **roles,
        min_window_rows=str(m.min_window_rows),
        # No spaces: the map-reduce monitor's parallel step gets it in program_arguments, which Azure ML splits
        # on whitespace (reference-yaml-job-parallel: program_arguments is a plain string of arguments).
        thresholds=json.dumps(m.thresholds, separators=(",", ":")) if m.thresholds else "",
        numeric_metric=m.numeric_metric,
        categorical_metric=m.categorical_metric,
        chunk_rows=str(m.chunk_rows),
        **policy_inputs(settings),
    )
    kinds = column_kinds(settings)
    # None declared: the pipeline's default (""); Azure ML does not send an empty string input at all.
    if kinds:
        inputs["column_kinds"] = kinds
    return inputs, note


def column_kinds(settings: Settings) -> str:
    """The schema's `monitor_as` declarations as the monitor step's `column_kinds` input (name=kind,...; empty:
    the automatic rule for every column)."""
    schema = _schema_or_none(settings)
    if schema is None:
        return ""
    from amlops.drift.kinds import declared_text

    return declared_text(schema.monitor_as)


def policy_inputs(settings: Settings) -> Inputs:
    """The configured retrain policy as monitor inputs, so the report shows the decision the loop would take."""
    from amlops.drift.policy import REPORT_FIELDS

    policy = settings.policy
    out: Inputs = {}
    # Each reaches the monitor step as an input `policy_<field>` (components/monitor.yml).
    for field in REPORT_FIELDS:
        value = getattr(policy, field)
        out[f"policy_{field}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


# Inputs of pipelines/monitoring.yml that pipelines/monitoring_mapreduce.yml also takes (the reference is the model).
_MAPREDUCE_SHARED = (
    "current_data", "model", "labels", "window", "timestamp_column", "id_column", "prediction_column",
    "label_column", "min_window_rows", "thresholds", "numeric_metric", "categorical_metric", "chunk_rows",
    "column_kinds",
)  # fmt: skip


def monitoring_mapreduce_inputs(
    settings: Settings, inputs: Inputs, target: Target = Target.local
) -> Inputs | None:
    """The inputs of pipelines/monitoring_mapreduce.yml for these monitoring inputs, or None when the single
    process fits: fewer Parquet rows than `monitor.mapreduce_rows` (0: never), a size this machine cannot read
    (a URL or an asset), a reference other than the model's stored profile, or row-count windows (a mini-batch
    does not know its rows' global positions). Locally one worker per core; on Azure ML the pipeline's
    instance_count and max_concurrency_per_instance apply (docs/monitor.md, "Beyond one machine")."""
    import os

    from amlops.config import window_kind

    limit = settings.monitor.mapreduce_rows
    current = inputs.get("current_data", "")
    if not limit or "model" not in inputs or is_remote(current) or not Path(current).exists():
        return None
    window = inputs.get("window", "all")
    if window.strip().lower() != "auto" and window_kind(window)[0] == "rows":
        return None
    from amlops.drift.monitor import MonitorError, open_dataset

    try:
        dataset = open_dataset(current)
    except MonitorError:
        return None
    if "parquet" not in type(dataset.format).__name__.lower() or dataset.count_rows() < limit:
        return None
    # The policy inputs too: the reduce step's report decides with the configured policy, as the monitor's does.
    out = {k: v for k, v in inputs.items() if k in _MAPREDUCE_SHARED or k.startswith("policy_")}
    if target is Target.local:
        out.update(
            # The cores this process may use (a container's share, not the host's count).
            instance_count="1",
            max_concurrency_per_instance=str(len(os.sched_getaffinity(0)) or 1),
            mini_batch_size="1",
        )
    return out


# --- overrides --------------------------------------------------------------------------------------------


def parse_sets(values: list[str] | None) -> Inputs:
    """`--set inputs.name=value` pairs -> {name: value}; a clear error for anything else."""
    result: Inputs = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("inputs.") or len(key) <= len("inputs."):
            raise UsageError(f"--set {item!r}: expected inputs.<name>=<value>")
        result[key[len("inputs.") :]] = value
    return result


def with_overrides(inputs: Inputs, overrides: Inputs) -> Inputs:
    """`--set` overrides over the built inputs. Data given by `--set inputs.raw_file|raw_folder=…` replaces the
    other data input and becomes the lineage `data_uri`."""
    merged = dict(inputs)
    data_by_set = next((overrides[k] for k in ("raw_file", "raw_folder") if k in overrides), None)
    if data_by_set is not None:
        merged.pop("raw_file", None)
        merged.pop("raw_folder", None)
        merged["data_uri"] = data_by_set
    merged.update(overrides)
    return merged
