"""`amlops run --set` for the local runner: pipeline inputs, a step's own inputs, and pipeline outputs.

Three forms, mirroring the YAML paths they replace (reference-yaml-job-pipeline: `inputs.<input_name>`,
`jobs.<job_name>.inputs.<input_name>`, `outputs.<output_name>`; `az ml job create --set` takes the same dotted paths):
  inputs.<name>=<value>                 a pipeline input
  jobs.<job>.inputs.<name>=<value>      one step's input (nested steps: jobs.<outer>.<inner>.inputs.<name>)
  outputs.<name>=<path or URL>          where a pipeline output lands
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amlops.errors import UsageError

FORMS = "inputs.<name>=<value>, jobs.<job>.inputs.<name>=<value> or outputs.<name>=<path>"


@dataclass
class RunOverrides:
    inputs: dict[str, str] = field(default_factory=dict)
    job_inputs: dict[str, dict[str, str]] = field(default_factory=dict)  # job (qualified) -> input -> value
    outputs: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.inputs or self.job_inputs or self.outputs)


def parse_run_sets(values: list[str] | None) -> RunOverrides:
    """Split `--set` pairs into the three forms; anything else is a usage error naming the forms."""
    result = RunOverrides()
    for item in values or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise UsageError(f"--set {item!r}: expected {FORMS} (no '=' found)")
        if key.startswith("inputs.") and len(key) > len("inputs."):
            result.inputs[key[len("inputs.") :]] = value
        elif key.startswith("outputs.") and len(key) > len("outputs."):
            result.outputs[key[len("outputs.") :]] = value
        elif key.startswith("jobs.") and ".inputs." in key:
            job, _, name = key[len("jobs.") :].rpartition(".inputs.")
            if not job or not name:
                raise UsageError(f"--set {item!r}: expected jobs.<job>.inputs.<name>=<value>")
            result.job_inputs.setdefault(job, {})[name] = value
        elif key.startswith("jobs.") and ".outputs." in key:
            raise UsageError(
                f"--set {item!r}: a step's output path is set through the pipeline output it is bound to "
                f"(--set outputs.<name>=…); bind it with outputs: <name>: ${{{{parent.outputs.<name>}}}}"
            )
        else:
            raise UsageError(f"--set {item!r}: expected {FORMS}")
    return result
