"""register: register the trained model with its lineage; set `challenger`; move `champion` only if the gate
passed.

    python -m amlops.steps.register --run-info DIR --verdict DIR --snapshot DIR --registration OUT
        --model-name NAME [--data-uri URI] [--auto-promote true] [--run-id ID] [--git-commit SHA]

The pipeline run id comes from AZUREML_ROOT_RUN_ID (set by Azure ML and by the local runner), else --run-id.
The commit from --git-commit, else AMLOPS_GIT_COMMIT. Idempotent: a version already registered by this
pipeline run (tag `pipeline.run_id`) is reused, and the steps it missed (roles, event) are completed.

Order, so that a kill at any point leaves a consistent registry: (1) the version is created in ONE call that
carries every lineage tag and the gate verdict (no version ever lacks them), marked `registration=pending`;
(2) `challenger` moves to it; (3) only if the gate passed and auto-promote is on, `champion` moves and the
event is appended; (4) `registration=complete`. The champion is the last thing touched.

Promotion is compare-and-set: the verdict names the champion the gate beat (`champion.version`, null when
there was none). If another version took the role since (a manual promote during evaluate, a concurrent
training), the new version stays challenger and the registration record says why
(`promotion.status = champion_changed`); see `amlops.registry.promote_if_champion`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from amlops.data.snapshot import SnapshotError, read_manifest
from amlops.records import REGISTRATION_FILE, VERDICT_FILE, GateVerdict, Registration
from amlops.registry import (
    CHALLENGER,
    REGISTRATION_TAG,
    Promotion,
    RegistryError,
    ensure_registered_model,
    find_version_by_tag,
    model_uri,
    promote_if_champion,
    resolve_champion,
    roles_of,
    set_role,
)
from amlops.steps._args import parse_bool as _bool
from amlops.steps.train import RUN_INFO_FILE, checkpoint

_MAX_TAG = 4000


class RegisterError(ValueError):
    """Registration cannot go on with these inputs; one line."""


def _read_json(folder: str | Path, name: str, what: str) -> dict[str, Any]:
    path = Path(folder) / name
    if not path.is_file():
        raise RegisterError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegisterError(f"{path}: {what} is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise RegisterError(f"{path}: {what} must be a JSON object")
    return data


def config_digest(run_info: dict[str, Any], verdict: GateVerdict) -> str:
    """sha256 of the configuration that produced the model and its verdict (training + gate)."""
    config = {"train": run_info.get("config", {}), "gate": (verdict.model_extra or {}).get("config", {})}
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _num(value: Any) -> str:
    return "" if value is None else repr(float(value))


def lineage_tags(
    run_info: dict[str, Any],
    verdict: GateVerdict,
    manifest: dict[str, Any],
    *,
    pipeline_run_id: str,
    git_commit: str,
    data_uri: str,
) -> dict[str, str]:
    metric = verdict.metric
    champion = verdict.champion
    interval = verdict.interval
    reasons = "; ".join(verdict.reasons) or "passed"
    return {
        "data.digest": str(manifest["digest"]),
        "data.uri": data_uri or str(manifest.get("data_uri", "")),
        "data.rows": str(manifest.get("rows", "")),
        "data.start": str(manifest.get("date_min", "")),
        "data.end": str(manifest.get("date_max", "")),
        "data.train_end": str(run_info.get("train_end", "")),
        "schema.digest": str(manifest.get("schema", {}).get("digest", "")),
        "git.commit": git_commit,
        "config.digest": config_digest(run_info, verdict),
        "pipeline.run_id": pipeline_run_id,
        "parent.version": verdict.champion_version or "none",
        "gate.passed": "true" if verdict.passed else "false",
        "gate.metric": metric,
        "gate.challenger": _num((verdict.challenger.metrics or {}).get(metric)),
        "gate.champion": _num(((champion.metrics if champion else None) or {}).get(metric)),
        "gate.improvement": _num(verdict.improvement),
        "gate.ci_low": _num(interval.low if interval else None),
        "gate.ci_high": _num(interval.high if interval else None),
        "gate.reasons": reasons[:_MAX_TAG],
        REGISTRATION_TAG: "pending",
    }


def version_description(
    run_info: dict[str, Any],
    verdict: GateVerdict,
    manifest: dict[str, Any],
    pipeline_run_id: str,
    data_uri: str,
) -> str:
    """The model version's description (Markdown; the UI shows it on the version page, and Azure ML's MLflow
    endpoint lets a version's description be set: https://learn.microsoft.com/azure/machine-learning/
    how-to-manage-models-mlflow, "Review supported capabilities"): what data, which run, the gate's verdict in
    words. Written in the call that creates the version: no extra round trip."""
    from amlops.tracking import run_note

    metric = verdict.metric
    chall = (verdict.challenger.metrics or {}).get(metric)
    champ = (verdict.champion.metrics if verdict.champion else None) or {}
    interval = verdict.interval
    words = "passed" if verdict.passed else "failed: " + ("; ".join(verdict.reasons) or verdict.summary)
    compared = (
        f"v{verdict.champion_version} ({_fmt(champ.get(metric))})"
        if verdict.champion_version
        else "none (first model: absolute thresholds only)"
    )
    ci = ""
    if interval is not None and interval.low is not None and interval.high is not None:
        ci = f", {interval.confidence or 0.95:.0%} interval [{interval.low:+.1%}, {interval.high:+.1%}]"
    facts: dict[str, object] = {
        "data": data_uri or manifest.get("data_uri", ""),
        "data digest": manifest.get("digest", ""),
        "rows": f"{manifest.get('rows', '')}",
        "dates": f"{manifest.get('date_min', '')} .. {manifest.get('date_max', '')}"
        f" (trained to {run_info.get('train_end', '')}, holdout from {run_info.get('holdout_start', '')})",
        "training run": run_info.get("run_id", ""),
        "pipeline run": pipeline_run_id,
        f"holdout {metric}": _fmt(chall),
        "compared with champion": compared,
        "improvement": (f"{verdict.improvement:+.1%}{ci}" if verdict.improvement is not None else "n/a"),
    }
    return run_note(f"Gate {words}", facts)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4g}"


def name_training_run(client: Any, run_info: dict[str, Any], model_name: str, version: str) -> None:
    """Tag the training run with the version it became and, outside an Azure ML job, name it after it
    (`train demand-forecaster v2 (<pipeline run>)`): one `log_batch` call. Inside an Azure ML job the run is the
    train job's own and keeps the job's name (see amlops.tracking.start_run_args). Informative only."""
    from mlflow.entities import RunTag
    from mlflow.exceptions import MlflowException

    from amlops.tracking import run_name

    tags = [RunTag("model.name", model_name), RunTag("model.version", str(version))]
    if not os.environ.get("MLFLOW_RUN_ID"):
        pipeline_run = os.environ.get("AZUREML_ROOT_RUN_ID", "")
        tags.append(RunTag("mlflow.runName", run_name("train", model_name, str(version), pipeline_run)))
    try:
        client.log_batch(run_info["run_id"], tags=tags)
    except (MlflowException, OSError) as exc:
        print(
            f"note: training run {run_info['run_id']} not tagged with v{version}: {str(exc).splitlines()[0]}"
        )


def register(
    run_info_dir: str | Path,
    verdict_dir: str | Path,
    snapshot_dir: str | Path,
    registration_out: str | Path,
    *,
    model_name: str,
    data_uri: str = "",
    auto_promote: bool = True,
    run_id: str = "",
    git_commit: str = "",
) -> Registration:
    from amlops.mlflow_local import skip_azureml_plugins

    skip_azureml_plugins()
    from mlflow.tracking import MlflowClient

    pipeline_run_id = os.environ.get("AZUREML_ROOT_RUN_ID") or run_id
    if not pipeline_run_id:
        raise RegisterError("no pipeline run id: AZUREML_ROOT_RUN_ID is not set and --run-id was not given")
    commit = git_commit or os.environ.get("AMLOPS_GIT_COMMIT") or "unknown"
    run_info = _read_json(run_info_dir, RUN_INFO_FILE, "run info")
    verdict = _read_verdict(verdict_dir)
    manifest = read_manifest(snapshot_dir)
    # Fail closed on mixed inputs: the verdict must be about the data the model was trained on.
    digests = {manifest["digest"], run_info.get("data_digest"), verdict.data_digest}
    if len(digests) != 1:
        raise RegisterError(
            "inputs disagree on the data digest (snapshot, run info, verdict): "
            + ", ".join(
                str(d)[:19] for d in (manifest["digest"], run_info.get("data_digest"), verdict.data_digest)
            )
        )
    for key in ("run_id", "model_source"):
        if not run_info.get(key):
            raise RegisterError(f"{Path(run_info_dir) / RUN_INFO_FILE}: missing {key!r}")

    client = MlflowClient()
    ensure_registered_model(client, model_name)
    existing = find_version_by_tag(client, model_name, "pipeline.run_id", pipeline_run_id)
    created = existing is None
    if existing is None:
        checkpoint("register:before_create")
        tags = lineage_tags(
            run_info, verdict, manifest, pipeline_run_id=pipeline_run_id, git_commit=commit, data_uri=data_uri
        )
        description = version_description(run_info, verdict, manifest, pipeline_run_id, data_uri)
        version = _create_version(client, model_name, run_info, tags, description[:_MAX_TAG])
        checkpoint("register:after_create")
    else:
        version = str(existing.version)

    tags_now = client.get_model_version(model_name, version).tags or {}
    promotion: Promotion | None = None
    if tags_now.get(REGISTRATION_TAG, "complete") != "complete":
        set_role(client, model_name, CHALLENGER, version)
        checkpoint("register:after_challenger")
        if verdict.passed and auto_promote:
            promotion = promote_if_champion(
                client,
                model_name,
                version,
                expected=_gate_champion(verdict),
                reason=(verdict.summary or "gate passed")[:_MAX_TAG],
                actor=f"pipeline:{pipeline_run_id}",
            )
            if promotion.status == "champion_changed":
                client.set_model_version_tag(
                    model_name, version, "promotion", promotion.describe()[:_MAX_TAG]
                )
        client.set_model_version_tag(model_name, version, REGISTRATION_TAG, "complete")
    _attach_verdict(client, run_info["run_id"], verdict)
    name_training_run(client, run_info, model_name, version)
    champion = resolve_champion(client, model_name)
    result = Registration(
        model_name=model_name,
        version=version,
        model_uri=model_uri(model_name, version),
        created=created,
        gate_passed=verdict.passed,
        auto_promote=auto_promote,
        promoted=bool(promotion and promotion.promoted),
        promotion=_promotion_record(promotion, verdict, auto_promote),
        is_champion=bool(champion and champion[0] == version),
        champion=champion[0] if champion else None,
        roles=roles_of(client, model_name),
        pipeline_run_id=pipeline_run_id,
        git_commit=commit,
        data_digest=manifest["digest"],
        summary=verdict.summary,
    )
    out = Path(registration_out)
    out.mkdir(parents=True, exist_ok=True)
    (out / REGISTRATION_FILE).write_text(json.dumps(result.to_json_dict(), indent=2) + "\n", encoding="utf-8")
    return result


def _read_verdict(folder: str | Path) -> GateVerdict:
    """The gate's verdict, typed; a file that is not one fails closed, naming the file and the field."""
    from pydantic import ValidationError

    data = _read_json(folder, VERDICT_FILE, "gate verdict")
    try:
        return GateVerdict.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise RegisterError(
            f"{Path(folder) / VERDICT_FILE}: not a gate verdict: {field}: {first['msg']}"
        ) from None


def _create_version(
    client: Any, model_name: str, run_info: dict[str, Any], tags: dict[str, str], description: str
) -> str:
    """Create the version with every tag in one call; where the server rejects tags on create (reported for
    Azure ML, mlflow/mlflow#8008: INVALID_PARAMETER_VALUE "The request is invalid."), create it bare and set
    the tags one by one with `set_model_version_tag` (in AML's support matrix), `pipeline.run_id` first so a
    rerun finds the version."""
    from mlflow.exceptions import MlflowException

    from amlops.tracking import unsupported_by_server

    def create(with_tags: dict[str, str] | None) -> str:
        mv = client.create_model_version(
            model_name,
            source=run_info["model_source"],
            run_id=run_info["run_id"],
            tags=with_tags,
            description=description,
        )
        return str(mv.version)

    try:
        return create(tags)
    except MlflowException as exc:
        if not unsupported_by_server(exc):
            raise
        print(
            f"note: the registry refused tags on create ({str(exc).splitlines()[0][:200]}); setting them one by one"
        )
    version = create(None)
    first = ("pipeline.run_id", REGISTRATION_TAG)
    for key in (*first, *(k for k in tags if k not in first)):
        client.set_model_version_tag(model_name, version, key, tags[key])
    return version


def _gate_champion(verdict: GateVerdict) -> str | None:
    """The champion version the gate compared against (None: there was none)."""
    return verdict.champion_version or None


def _promotion_record(
    promotion: Promotion | None, verdict: GateVerdict, auto_promote: bool
) -> dict[str, Any]:
    if promotion is None:
        if not verdict.passed:
            status = "gate_failed"
        elif not auto_promote:
            status = "auto_promote_off"
        else:
            status = "already_registered"
        return {"status": status, "gate_champion": _gate_champion(verdict), "note": ""}
    return {
        "status": promotion.status,
        "gate_champion": promotion.expected,
        "champion_at_promotion": promotion.champion,
        "locked": promotion.locked,
        "note": promotion.describe(),
    }


def _attach_verdict(client: Any, run_id: str, verdict: GateVerdict) -> None:
    """The verdict also goes with the training run, so the MLflow UI shows why a run was (not) promoted.
    Informative only (the version's gate.* tags and registration.json carry it too): a tracking server that
    refuses an artifact on a finished run of another job must not fail the registration."""
    from mlflow.exceptions import MlflowException

    try:
        client.log_dict(run_id, verdict.to_json_dict(), "gate/verdict.json")
    except (MlflowException, OSError) as exc:
        print(f"note: verdict not attached to training run {run_id}: {str(exc).splitlines()[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m amlops.steps.register", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--run-info", required=True, help="train output folder with run_info.json")
    parser.add_argument("--verdict", required=True, help="evaluate output folder with verdict.json")
    parser.add_argument("--snapshot", required=True, help="prep output folder (for the data digest)")
    parser.add_argument("--registration", required=True, help="output folder for registration.json")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--data-uri", nargs="?", const="", default="")
    parser.add_argument("--auto-promote", type=_bool, default=True)
    parser.add_argument("--run-id", default="", help="pipeline run id when AZUREML_ROOT_RUN_ID is not set")
    parser.add_argument(
        "--git-commit", nargs="?", const="", default="", help="code commit (default: $AMLOPS_GIT_COMMIT)"
    )
    args = parser.parse_args(argv)
    try:
        result = register(
            args.run_info,
            args.verdict,
            args.snapshot,
            args.registration,
            model_name=args.model_name,
            data_uri=args.data_uri,
            auto_promote=args.auto_promote,
            run_id=args.run_id,
            git_commit=args.git_commit,
        )
    except (RegisterError, RegistryError, SnapshotError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state = "registered" if result.created else "already registered"
    print(f"{state} {result.model_name} v{result.version} as {result.role}; {result.summary}")
    if result.promotion is not None and result.promotion.status in ("champion_changed", "overtaken"):
        print(f"warning: {result.promotion.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
