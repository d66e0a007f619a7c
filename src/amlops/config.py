"""The project's one settings model: `amlops.yaml` at the repo root plus `AMLOPS_*` environment overrides.

Environment variables override the file with `__` between nesting levels, e.g.
`AMLOPS_AZURE__WORKSPACE=mlw-prod` or `AMLOPS_GATE__MIN_IMPROVEMENT=0.05`.
Relative paths in the file are resolved against the file's folder, so the same config works from any cwd.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from amlops.errors import UsageError

CONFIG_FILE_NAME = "amlops.yaml"
ENV_PREFIX = "AMLOPS_"

# Enums and limits declared once: the steps import these, and tests/static/test_component_constraints.py checks
# the components' `enum` / `min` / `default` against them (drift metric names live in amlops.drift.metrics).
GateMetric = Literal["mae", "rmse", "mape"]
GATE_METRICS: tuple[str, ...] = get_args(GateMetric)
MIN_BOOTSTRAP_SAMPLES = 50  # fewer resamples make the interval's ends noise
DEFAULT_MIN_HOLDOUT_ROWS = 50
DEFAULT_MIN_HOLDOUT_DAYS = 7  # a week: every weekday once, so the block bootstrap has days to resample
DEFAULT_MIN_WINDOW_ROWS = 500
DEFAULT_CHUNK_ROWS = 250_000
WINDOW_KINDS = ("all", "daily", "weekly")  # or a number of rows per window
AUTO_WINDOW = "auto"  # the monitor step: weekly when the timestamp column exists, else all


def window_kind(window: str) -> tuple[str, int]:
    """("all" | "daily" | "weekly" | "rows", rows per window) for a window spec; ValueError when it is none."""
    w = window.strip().lower()
    if w in ("all", "none", ""):
        return "all", 0
    if w in ("daily", "day", "1d"):
        return "daily", 0
    if w in ("weekly", "week", "1w"):
        return "weekly", 0
    m = re.fullmatch(r"(\d+)\s*(rows?)?", w)
    if m and int(m.group(1)) > 0:
        return "rows", int(m.group(1))
    raise ValueError(f"window {window!r}: use {', '.join(WINDOW_KINDS)} or a number of rows (e.g. 100000)")


# The checkout this package runs from (src/amlops/config.py -> the repository root).
_CHECKOUT = Path(__file__).resolve().parents[2]


def shipped_schema() -> Path:
    """The schema shipped with this checkout: the one `amlops data generate` (and so `amlops demo`) writes data
    for."""
    return (_CHECKOUT / DataSettings.model_fields["schema_file"].default).resolve()


class ConfigError(UsageError, ValueError):
    """A config file that cannot be used; the message is one line naming the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StorageSettings(_Section):
    root: str = Field(
        ".amlops/storage", description="Folder or URL (abfs://container/prefix) for data and runs"
    )


class MlflowSettings(_Section):
    tracking_uri: str | None = Field(None, description="Default: sqlite:///<state_dir>/mlflow.db")
    registry_uri: str | None = Field(None, description="Default: the tracking URI")
    artifact_root: str | None = Field(None, description="Default: <state_dir>/mlartifacts (or wasbs://...)")


class AzureSettings(_Section):
    subscription_id: str | None = None
    resource_group: str | None = None
    workspace: str | None = None
    location: str | None = None
    compute: str | None = Field(
        None, description="Compute cluster name for pipeline jobs (from the infra outputs)"
    )
    registry: str | None = Field(None, description="AML registry for cross-environment promotion (optional)")
    endpoint_name: str | None = Field(
        None, description="Batch endpoint name; default derived from the workspace"
    )
    smoke_input: str | None = Field(
        None, description="Small CSV/Parquet file or folder `amlops deploy` scores before a default switch"
    )
    # Schedules (`amlops schedule create`); the defaults match pipelines/*_schedule.yml (for the az CLI).
    schedule_time_zone: str = Field("UTC", description="Time zone of the cron schedules (Azure ML's names)")
    monitoring_cron: str = Field("0 6 * * 1", description="Monitoring schedule (default: Mondays 06:00)")
    training_cron: str = Field("0 3 1 * *", description="Retraining schedule (default: the 1st, 03:00)")
    monitoring_data: str = Field(
        "azureml://datastores/workspaceblobstore/paths/amlops/current/",
        description="Folder the scheduled monitoring job reads new data (with predictions) from",
    )
    training_data: str = Field(
        "azureml://datastores/workspaceblobstore/paths/amlops/raw/",
        description="Folder the scheduled retraining job reads raw data from",
    )
    environments: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per-environment overrides (dev, prod) of the keys above, from `amlops infra deploy`",
    )


class DataSettings(_Section):
    schema_file: str = Field("data/schema/demand.yaml", description="Declared schema of the raw data")
    max_bad_row_share: float = Field(
        0.05, ge=0.0, le=1.0, description="Above this share of invalid rows prep fails"
    )
    raw: str | None = Field(
        None, description="Default data for `amlops train`: file, folder, URL or azureml:name:version"
    )


class TrainSettings(_Section):
    # The target and the features are declared in the schema (data.schema_file): one source of truth.
    # scikit-learn's random_state takes [0, 2**32 - 1]; outside it the train step would fail after prep.
    seed: int = Field(
        42, ge=0, le=2**32 - 1, description="Random seed of the split, the model and the bootstrap"
    )
    holdout_days: int = Field(28, gt=0, description="Most recent days kept out of training for the gate")
    params: dict[str, Any] = Field(
        default_factory=dict, description="HistGradientBoostingRegressor parameters over amlops' defaults"
    )


class GateSettings(_Section):
    metric: GateMetric = "mae"
    max_mae: float | None = Field(None, gt=0)
    max_rmse: float | None = Field(None, gt=0)
    max_mape: float | None = Field(None, gt=0)
    min_improvement: float = Field(0.0, ge=0.0, description="Relative margin the challenger must win by")
    bootstrap_samples: int = Field(1000, ge=MIN_BOOTSTRAP_SAMPLES)
    confidence: float = Field(
        0.95, gt=0.0, lt=1.0, description="Level of the bootstrap interval of the improvement"
    )
    require_confident: bool = Field(
        True, description="Also require the interval's lower end above zero (the win is not a coin flip)"
    )
    auto_promote: bool = True
    # Below these the gate refuses to decide (fails closed): a holdout shrunk to one day by a few future-dated
    # rows, or a tiny data set, would otherwise "pass confidently" on a dozen rows.
    min_holdout_rows: int = Field(
        DEFAULT_MIN_HOLDOUT_ROWS, ge=1, description="Fewest holdout rows the gate decides on"
    )
    min_holdout_days: int = Field(
        DEFAULT_MIN_HOLDOUT_DAYS, ge=1, description="Fewest distinct holdout days the gate decides on"
    )


def _deciding_default(kind: Literal["numeric", "categorical"]) -> Any:
    def default() -> str:
        from amlops.drift.metrics import DEFAULT_DECIDING

        return DEFAULT_DECIDING[kind]

    return default


class MonitorSettings(_Section):
    window: str = Field(
        "auto",
        description="auto (weekly when the data has the timestamp column, else all) | daily | weekly | "
        "all | <N> rows",
    )
    # Column roles live in the schema (data.schema_file: date_column, id_column, target); these keys override
    # it only when set, for data without a schema (amlops.job_inputs.column_roles).
    timestamp_column: str = Field("date", description="Default: the schema's date_column")
    id_column: str = Field(
        "row_id", description="Default: the schema's id_column; generated at scoring when the data has none"
    )
    prediction_column: str = "prediction"
    label_column: str = Field("units_sold", description="Default: the schema's target")
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Override AML default thresholds: {metric: value} or {numeric.<metric>: value} (docs/monitor.md)",
    )
    chunk_rows: int = Field(
        DEFAULT_CHUNK_ROWS, gt=0, description="Rows per streamed chunk (memory is bounded by it)"
    )
    min_window_rows: int = Field(
        DEFAULT_MIN_WINDOW_ROWS, ge=1, description="Windows with fewer rows are reported but not judged"
    )
    mapreduce_rows: int = Field(
        50_000_000,
        ge=0,
        description="From this many current rows (Parquet row counts) on, `amlops monitor` runs the map-reduce "
        "pipeline (pipelines/monitoring_mapreduce.yml); 0: never",
    )
    # Names from the metric registry (amlops.drift.metrics), imported when a value is checked: importing the
    # settings stays light.
    numeric_metric: str = Field(
        default_factory=_deciding_default("numeric"),
        description="Metric that decides a numeric feature's drift",
    )
    categorical_metric: str = Field(
        default_factory=_deciding_default("categorical"),
        description="Metric that decides a categorical feature's drift",
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if value.strip().lower() != AUTO_WINDOW:
            window_kind(value)
        return value

    @field_validator("numeric_metric", "categorical_metric")
    @classmethod
    def _metric(cls, value: str, info: ValidationInfo) -> str:
        from amlops.drift.metrics import check_deciding

        return check_deciding("numeric" if info.field_name == "numeric_metric" else "categorical", value)

    @field_validator("thresholds")
    @classmethod
    def _threshold_names(cls, value: dict[str, float]) -> dict[str, float]:
        from amlops.drift.metrics import unknown_threshold_names

        unknown = unknown_threshold_names(value)
        if unknown:
            raise ValueError(f"unknown metric name(s): {', '.join(unknown)}")
        return value


class PolicySettings(_Section):
    drift_windows_n: int = Field(2, ge=1, description="Retrain when N of the last M windows drifted")
    drift_windows_m: int = Field(3, ge=1)
    performance_degradation: float = Field(
        0.2, ge=0.0, description="Relative MAE increase that counts as loss"
    )
    min_drift_importance_share: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Drifted features must carry this share of feature importance to alarm",
    )
    confirm_drift_with_labels: bool = Field(
        True,
        description="When a window has labels, drift alarms only if its measured error rose too: drift the model "
        "copes with (seasons, covariate shift) starts no retrain. Unlabelled windows alarm on drift alone.",
    )
    cooldown_hours: float = Field(24.0, ge=0.0)
    min_rows: int = Field(100, ge=0)
    retrain_window_days: int = Field(120, gt=0)
    include_original_data: bool = False
    ledger: str | None = Field(
        None,
        description="Where the retrain ledger and decision log live (a folder or abfs:// URL every runner of the "
        "loop can write); default: <state_dir>/retrain for local loops, the workspace's default datastore "
        "(amlops/state/retrain) for --target azure",
    )

    @model_validator(mode="after")
    def _n_of_m(self) -> PolicySettings:
        if self.drift_windows_n > self.drift_windows_m:
            raise ValueError(
                f"drift_windows_n ({self.drift_windows_n}) must not exceed drift_windows_m "
                f"({self.drift_windows_m}): N of the last M windows"
            )
        return self


class Settings(BaseModel):
    """Everything amlops reads from `amlops.yaml` (see README, "Configuration")."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    experiment: str = "amlops-demand"
    model_name: str = "demand-forecaster"
    state_dir: str = Field(".amlops", description="Local state: SQLite MLflow, locks, run folders")
    runs_dir: str = Field("runs", description="Local runner output: runs/<pipeline>/<run-id>/<job>/<output>")
    storage: StorageSettings = Field(default_factory=StorageSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    azure: AzureSettings = Field(default_factory=AzureSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    # The local runner's stand-ins for Azure ML datastores (runner/datastores.py): name -> folder.
    datastores: dict[str, str] = Field(
        default_factory=dict,
        description="Local folder per datastore for azureml://datastores/<name>/paths/... in pipeline YAML run "
        "locally; default <state_dir>/datastores/<name> (workspaceblobstore always exists)",
    )

    # Where the file was found; relative paths resolve against it. Not a key of the file.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    source: Path | None = Field(None, exclude=True)

    @field_validator("experiment", "model_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def path(self, value: str | os.PathLike[str]) -> Path:
        """Resolve a path from the config against the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def pipeline_file(self, name: str) -> Path:
        """`pipelines/<name>.yml` next to the config file, else the one shipped with this checkout of amlops (so a
        config kept in another folder still runs the project's pipelines)."""
        file = name if name.endswith((".yml", ".yaml")) else f"{name}.yml"
        for base in (self.base_dir, _CHECKOUT):
            candidate = (base / "pipelines" / file).resolve()
            if candidate.is_file():
                return candidate
        raise ConfigError(f"pipelines/{file} not found next to {self.base_dir} or in {_CHECKOUT}")

    def schema_path(self) -> Path:
        """`data.schema_file` (relative to amlops.yaml); the default name falls back to the schema shipped with
        this checkout (the one `amlops data generate` writes data for), as `pipeline_file` does."""
        configured = self.path(self.data.schema_file)
        if configured.is_file():
            return configured
        default = DataSettings.model_fields["schema_file"].default
        shipped = shipped_schema()
        if self.data.schema_file == default and shipped.is_file():
            return shipped
        raise ConfigError(
            f"data.schema_file: {configured} not found; declare your data's columns in a schema file "
            f"(the example: {shipped})"
        )

    def azure_for(self, env: str | None = None) -> AzureSettings:
        """The Azure target for an environment name (dev, prod): `azure.environments[env]` over the base keys."""
        if env is None:
            return self.azure
        if env not in self.azure.environments:
            known = ", ".join(sorted(self.azure.environments)) or "none"
            raise ConfigError(f"azure.environments: no environment named {env!r} (configured: {known})")
        merged = self.azure.model_dump()
        merged.update({k: v for k, v in self.azure.environments[env].items() if v not in (None, "")})
        merged["environments"] = {}
        return AzureSettings.model_validate(merged)

    @property
    def state_path(self) -> Path:
        return self.path(self.state_dir)

    @property
    def runs_path(self) -> Path:
        return self.path(self.runs_dir)

    @property
    def tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{self.state_path / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        return self.mlflow.registry_uri or self.tracking_uri

    @property
    def artifact_root(self) -> str:
        if self.mlflow.artifact_root:
            root = self.mlflow.artifact_root
            return root if "://" in root else str(self.path(root))
        return str(self.state_path / "mlartifacts")

    @property
    def storage_root(self) -> str:
        root = self.storage.root
        return root if "://" in root else str(self.path(root))


def find_config_file(start: Path | None = None) -> Path | None:
    """`$AMLOPS_CONFIG`, else the nearest `amlops.yaml` from `start` (default cwd) upwards."""
    explicit = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        return Path(explicit)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """`AMLOPS_A__B=v` -> {"a": {"b": v}}; values are parsed as YAML scalars so numbers and booleans work."""
    tree: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not parts or parts[0] not in Settings.model_fields:
            if "__" in key:  # the override form, for a section that does not exist: a typo, never ignored
                known = ", ".join(k for k in Settings.model_fields if k not in ("base_dir", "source"))
                raise ConfigError(f"{key}: unknown section {parts[0]!r} (sections: {known})")
            continue  # AMLOPS_CONFIG, AMLOPS_TEST_*, …: not settings
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return tree


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(error: ValidationError, where: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {key}: {msg}{more}"


def load_settings(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read the config file (if any) and the environment; raise ConfigError with one line on any problem."""
    environ = dict(os.environ) if environ is None else environ
    file = Path(path) if path else find_config_file()
    data: dict[str, Any] = {}
    if file is not None:
        if not file.is_file():
            raise ConfigError(f"{file}: config file not found")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{file}:{line} not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: expected a mapping of settings at the top level")
        data = loaded
    overrides = _env_overrides(environ)
    where = str(file) if file else "settings"
    if overrides:
        where += " (with AMLOPS_* overrides)"
    try:
        settings = Settings.model_validate(_merge(data, overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None
    settings.base_dir = file.resolve().parent if file else Path.cwd()
    settings.source = file.resolve() if file else None
    for key, folder in (("state_dir", settings.state_path), ("runs_dir", settings.runs_path)):
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{where}: {key}: {folder} is a file; amlops needs a folder there")
    if file is None:
        _say_where_state_goes(settings)
    return settings


_told = False


def _say_where_state_goes(settings: Settings) -> None:
    """Outside a project (no amlops.yaml found) the state lands in the current folder: say so, once a process."""
    global _told
    if _told:
        return
    _told = True
    from amlops import console

    console.warn(
        f"no {CONFIG_FILE_NAME} here or above: using defaults; state in {settings.state_path}, runs in "
        f"{settings.runs_path} (create {CONFIG_FILE_NAME} or pass --config to choose)"
    )
