"""The monitoring and retraining schedules: `JobSchedule` + `CronTrigger` in a time zone, from amlops.yaml.

`build_schedule` makes the object that `pipelines/<which>_schedule.yml` describes for `az ml schedule create`
(a test checks that both serialise to the same structure). The monitoring schedule also pins the champion as
its model input: the SDK resolves labels such as `@latest` once, when the schedule is created, so a label
would freeze whatever version was latest then. Re-run `amlops schedule create` after a new champion is
deployed to follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from amlops import console
from amlops.azure import client as azclient
from amlops.azure.errors import azure_errors
from amlops.console import UserError

if TYPE_CHECKING:
    from azure.ai.ml.entities import JobSchedule

    from amlops.config import AzureSettings, Settings

Which = Literal["monitoring", "training"]
WHICH: tuple[Which, ...] = ("monitoring", "training")


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    pipeline: str  # under pipelines/
    display_name: str
    description: str


SPECS: dict[str, ScheduleSpec] = {
    "monitoring": ScheduleSpec(
        "amlops-monitoring",
        "monitoring.yml",
        "amlops monitoring",
        "Drift, data-quality and performance monitoring of the champion on the newest data.",
    ),
    "training": ScheduleSpec(
        "amlops-training",
        "training.yml",
        "amlops retraining",
        "Periodic retraining on the raw data folder; the gate decides whether the champion changes.",
    ),
}


@dataclass(frozen=True)
class ScheduleInfo:
    name: str
    enabled: bool
    expression: str
    time_zone: str
    which: str | None


def build_schedule(
    which: Which, settings: Settings, az: AzureSettings, *, model: str | None = None
) -> JobSchedule:
    """The schedule as an object (no network): the pipeline YAML, its scheduled inputs, the cron trigger."""
    from azure.ai.ml.entities import CronTrigger, JobSchedule

    from amlops.azure.jobs import apply_inputs, load_pipeline
    from amlops.job_inputs import Target, monitoring_inputs, training_inputs

    if which not in SPECS:
        raise UserError(f"unknown schedule {which!r} (known: {', '.join(WHICH)})")
    spec = SPECS[which]
    job = load_pipeline(settings.pipeline_file(spec.pipeline))
    # The same inputs as `amlops monitor` / `amlops train` and the loop build (amlops.job_inputs), with the
    # data where scheduled jobs read it: the workspace folders of the configured target.
    if which == "monitoring":
        inputs, _note = monitoring_inputs(settings, az.monitoring_data, model=model, target=Target.azure)
        if model is None:
            del inputs["model"]  # pinned at creation (see create_schedules); the YAML leaves it to --set
        cron = az.monitoring_cron
    else:
        inputs = training_inputs(settings, az.training_data, Target.azure)
        cron = az.training_cron
    apply_inputs(job, inputs)
    job.experiment_name = job.experiment_name or settings.experiment
    if az.compute and job.settings is not None:
        job.settings.default_compute = az.compute
    return JobSchedule(
        name=spec.name,
        display_name=spec.display_name,
        description=spec.description,
        tags={"amlops.schedule": which},
        trigger=CronTrigger(expression=cron, time_zone=az.schedule_time_zone),
        create_job=job,
    )


def create_schedules(settings: Settings, env: str | None = None, which: Which | None = None) -> list[str]:
    """Create or update the schedule(s) (a PUT replaces the definition); returns their names."""
    from amlops.azure.deploy import champion_version
    from amlops.azure.jobs import clear_unset_data_inputs

    az = azclient.target(settings, env)
    azclient.require(az, "compute", env)
    chosen = [which] if which else list(WHICH)
    names = []
    with azure_errors(az, env):
        ml = azclient.ml_client(settings, env)
        for item in chosen:
            model = None
            if item == "monitoring":
                model = f"azureml:{settings.model_name}:{champion_version(ml, settings, az)}"
            schedule = build_schedule(item, settings, az, model=model)
            schedule.tags = {**(schedule.tags or {}), **({"amlops.model": model} if model else {})}
            clear_unset_data_inputs(schedule.create_job)  # type: ignore[arg-type]
            console.info(
                f"creating schedule {schedule.name}: {schedule.trigger.expression} "  # type: ignore[union-attr]
                f"({az.schedule_time_zone}) in workspace {az.workspace}"
                + (f", model {model}" if model else "")
            )
            created = ml.schedules.begin_create_or_update(schedule).result()
            names.append(str(created.name))
    return names


def list_schedules(settings: Settings, env: str | None = None) -> list[ScheduleInfo]:
    """Every schedule of the workspace, enabled or not (amlops' own carry the tag amlops.schedule)."""
    az = azclient.target(settings, env)
    with azure_errors(az, env):
        ml = azclient.ml_client(settings, env)
        # "All" includes disabled ones (the ScheduleListViewType enum is in the SDK's private restclient).
        found = list(ml.schedules.list(list_view_type="All"))  # type: ignore[arg-type]
    out = []
    for s in found:
        trigger = s.trigger
        out.append(
            ScheduleInfo(
                name=str(s.name),
                enabled=bool(s.is_enabled),
                expression=str(getattr(trigger, "expression", "") or getattr(trigger, "frequency", "") or ""),
                time_zone=str(
                    getattr(getattr(trigger, "time_zone", ""), "value", getattr(trigger, "time_zone", ""))
                ),
                which=(s.tags or {}).get("amlops.schedule"),
            )
        )
    return out


def disable_schedules(settings: Settings, env: str | None = None, which: Which | None = None) -> list[str]:
    """Disable amlops' schedule(s); they stay in the workspace (`amlops schedule create` enables them
    again)."""
    from azure.core.exceptions import ResourceNotFoundError

    az = azclient.target(settings, env)
    chosen = [which] if which else list(WHICH)
    done = []
    with azure_errors(az, env):
        ml = azclient.ml_client(settings, env)
        for item in chosen:
            name = SPECS[item].name
            try:
                ml.schedules.begin_disable(name=name).result()
            except ResourceNotFoundError:
                console.warn(f"schedule {name} does not exist in workspace {az.workspace}")
                continue
            console.info(f"disabled schedule {name}")
            done.append(name)
    return done
