"""monitor_reduce: the reduce half of the map-reduce monitor.

    python -m amlops.steps.monitor_reduce --partials DIR (--model-dir DIR | --reference-profile FILE) --output DIR

Adds every partial of the map step (integer additions: any order and grouping give the same state), scores the
merged state with the single-process monitor's code and publishes the same result.json and report.html through
`amlops.steps.monitor.publish` (MLflow too when a tracking URI is set). The monitor settings travel inside the
partials, so the merge cannot score them with other thresholds than the map was given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from amlops.config import PolicySettings

if TYPE_CHECKING:
    from amlops.drift.monitor import Monitor
    from amlops.drift.result import MonitorResult


def merged_monitor(profile: Any, partials: Iterable[dict[str, Any]], extras: Iterable[Any] = ()) -> Monitor:
    """A monitor holding the sum of the partials (all computed with this profile and the same settings);
    `extras`: the label-free ones the map computed (amlops.steps.monitor_map.model_extras), whose samples merge."""
    from amlops.drift import partial
    from amlops.drift.monitor import Monitor, MonitorOptions

    items = list(partials)
    if not items:
        raise partial.PartialError("no partials to merge")
    first = items[0]
    if first.get("schema") != partial.PARTIAL_SCHEMA:
        raise partial.PartialError(f"not a monitor partial (schema {first.get('schema')!r})")
    mon = Monitor(profile, MonitorOptions(**first["options"]))
    mon.extras.extend(extras)
    n_labels = len(partial.decode_ints(first["label_hits"]))
    mon._label_hits = np.zeros(n_labels, dtype=np.int64)
    if first.get("label_load") is not None:
        mon._label_load = {}
    expect = partial.fingerprint(mon)
    counted: set[str] = set()
    for state in items:
        files = set(state.get("files") or [])
        twice = sorted(files & counted)
        if twice:
            # A leftover partial in the folder, or the same file mapped in two mini-batches: added twice, its rows
            # would count double.
            raise partial.PartialError(
                f"{twice[0]}: counted by two partials ({len(twice)} file(s) in all); map into an empty folder"
            )
        counted |= files
    partial.absorb_all(mon, items, expect)
    mon.partial_files = sorted(counted)  # type: ignore[attr-defined]
    return mon


def reduce_partials(
    profile: Any,
    partials: Iterable[dict[str, Any]],
    reference_source: str | None = None,
    policy: PolicySettings | None = None,
    extras: Iterable[Any] = (),
) -> MonitorResult:
    """The merged result, with the policy the report decides with recorded (default: PolicySettings(), as the
    single-process monitor records it)."""
    from amlops.drift.monitor import MonitorError
    from amlops.drift.policy import record_policy

    items = list(partials)
    mon = merged_monitor(profile, items, extras)
    if mon.rows.sum() == 0:
        raise MonitorError("the current data has no rows")
    result = mon.result()
    sources = {s.get("source") for s in items}
    result.current.source = sources.pop() if len(sources) == 1 else None
    result.reference.source = reference_source
    record_policy(result, policy or PolicySettings())
    return result


def reduce(
    partials: str | Path,
    output: str | Path,
    *,
    reference_profile: str | None = None,
    model_dir: str | None = None,
    column_kinds: dict[str, str] | None = None,
    policy: PolicySettings | None = None,
) -> MonitorResult:
    """Merge the map step's partials and publish; `column_kinds` and `policy` as amlops.steps.monitor.monitor
    takes them (the map step compared the columns with the same kinds)."""
    from amlops.drift import partial
    from amlops.drift.kinds import with_comparison_kinds
    from amlops.steps.monitor import load_reference, publish
    from amlops.steps.monitor_map import load_extras, model_extras

    if not reference_profile and not model_dir:
        raise ValueError("give --model-dir or --reference-profile (the profile the map step used)")
    stored, _built = load_reference(reference_profile, None, model_dir, [], None, None, None)
    profile = with_comparison_kinds(stored, column_kinds)
    extras = model_extras(*load_extras(model_dir))
    result = reduce_partials(
        profile, partial.read_all(partials), reference_profile or model_dir, policy, extras
    )
    publish(result, output, model_dir=model_dir)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m amlops.steps.monitor_reduce", description=__doc__.split("\n")[0]
    )
    p.add_argument("--partials", required=True, help="folder of *.partial.json (the map step's output)")
    p.add_argument("--reference-profile", nargs="?", const="")
    p.add_argument("--model-dir", nargs="?", const="")
    p.add_argument("--output", required=True, help="folder for result.json and report.html")
    p.add_argument(
        "--column-kinds", nargs="?", const="", help="name=numeric|categorical pairs (the schema's monitor_as)"
    )
    from amlops.steps.monitor import add_policy_arguments, policy_from_arguments

    add_policy_arguments(p)
    args = p.parse_args(argv)
    from amlops.drift.kinds import parse_declared
    from amlops.drift.profile import ProfileError
    from amlops.steps import _mlflow_warm

    _mlflow_warm.start("amlops-monitor")
    try:
        result = reduce(
            args.partials,
            args.output,
            reference_profile=args.reference_profile or None,
            model_dir=args.model_dir or None,
            column_kinds=parse_declared(args.column_kinds),
            policy=policy_from_arguments(args),
        )
    except (ProfileError, ValueError, FileNotFoundError) as exc:  # MonitorError, PartialError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 1
    v = result.verdict
    print(f"monitor: {v.status}: {v.summary}")
    print(f"result: {Path(args.output) / 'result.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
