"""The MLflow model registry, amlops conventions: roles, lineage tags, promotion events, history.

Roles. `champion` serves, `challenger` is the latest candidate. A role is an MLflow alias *and* a
model-version tag `role.<role>` whose value is the time it was assigned. Everything resolves a role through
`resolve_role`, which reads the alias where the server supports aliases and falls back to the tags where it
does not (Azure ML's MLflow endpoint may reject alias calls): among versions carrying the tag, the most
recently assigned wins, so even a move interrupted half-way has one answer.

Events. Promotions and rollbacks are appended as registered-model tags `event.<UTC time>.<random>` holding a
small JSON document (time, action, version, previous, reason, actor, data digest, git commit). Why tags and
not a JSON-lines artifact: registered models have tags on every MLflow server, Azure ML's included, but no
artifact store of their own; a tag per event is written in one call and never rewritten (an artifact would be
read-modify-write, racy and not append-only), and the whole history comes back with one `get_registered_model`
call, so "which version served at time T" is one query.

Lineage tags on each version (set in the one call that creates it): see LINEAGE_TAGS.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

    from amlops.config import Settings

CHAMPION = "champion"
CHALLENGER = "challenger"
ROLES = (CHAMPION, CHALLENGER)
ROLE_TAG_PREFIX = "role."
EVENT_TAG_PREFIX = "event."
REGISTRATION_TAG = (
    "registration"  # "pending" until roles and events of the registering run are done, then "complete"
)
LINEAGE_TAGS = (
    "data.digest",
    "data.uri",
    "data.train_end",
    "git.commit",
    "config.digest",
    "pipeline.run_id",
    "parent.version",
)
GATE_TAGS = (
    "gate.passed",
    "gate.metric",
    "gate.challenger",
    "gate.champion",
    "gate.improvement",
    "gate.ci_low",
    "gate.ci_high",
    "gate.reasons",
)
_UNSUPPORTED_CODES = {"ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED", "FEATURE_DISABLED"}
_UNSUPPORTED_WORDS = ("not supported", "not implemented", "unsupported", "not available")
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"}

log = logging.getLogger(__name__)


class RegistryError(ValueError):
    """An expected registry failure (unknown version, nothing to roll back to); one line."""


# ------------------------------------------------------------------------------------------------- clients
def client_for(settings: Settings) -> MlflowClient:
    """An MlflowClient on the configured tracking and registry URIs (creating the local SQLite folder)."""
    from mlflow.tracking import MlflowClient

    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    from amlops.tracking import check_store

    check_store(settings)  # an empty/truncated store or an unreachable server: one line, not a new registry
    return MlflowClient(tracking_uri=uri, registry_uri=settings.registry_uri)


def _client(client_or_settings: Any) -> MlflowClient:
    from amlops.config import Settings

    if isinstance(client_or_settings, Settings):
        return client_for(client_or_settings)
    if client_or_settings is None:
        from mlflow.tracking import MlflowClient

        return MlflowClient()
    return client_or_settings  # type: ignore[no-any-return]


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", "") or "")


def alias_unsupported(exc: BaseException) -> bool:
    """True when an exception says the server has no alias API (as opposed to: this alias is not set)."""
    if isinstance(exc, NotImplementedError | AttributeError):
        return True
    code = _code(exc)
    if code in _UNSUPPORTED_CODES:
        return True
    if code in _NOT_FOUND_CODES:
        return False
    message = str(exc).lower()
    if any(word in message for word in _UNSUPPORTED_WORDS):
        return True
    # A bare 404/405/501 that is not an MLflow "not found" answer: the route itself is missing.
    status = getattr(exc, "get_http_status_code", None)
    return bool(callable(status) and status() in (404, 405, 501))


def _is_not_found(exc: BaseException) -> bool:
    return _code(exc) in _NOT_FOUND_CODES


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: str | datetime) -> datetime:
    """ISO 8601 (naive means UTC), or 'now'."""
    if isinstance(value, datetime):
        t = value
    elif value.strip().lower() == "now":
        return now_utc()
    else:
        try:
            t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RegistryError(f"not an ISO 8601 time: {value!r} (e.g. 2026-11-26T14:00:00Z)") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def model_uri(model_name: str, version: str) -> str:
    """`models:/<name>/<version>`: works on every registry (the `@alias` form needs alias support)."""
    return f"models:/{model_name}/{version}"


# ------------------------------------------------------------------------------------------------- versions
def ensure_registered_model(client_or_settings: Any, model_name: str) -> None:
    from mlflow.exceptions import MlflowException

    client = _client(client_or_settings)
    try:
        client.get_registered_model(model_name)
        return
    except MlflowException as exc:
        if not _is_not_found(exc):
            raise
    try:
        client.create_registered_model(model_name)
    except MlflowException as exc:
        if "ALREADY_EXISTS" not in _code(exc):  # created meanwhile by another process
            raise


def _all_versions(client: MlflowClient, model_name: str) -> list[ModelVersion]:
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name='{model_name}'")
    except MlflowException as exc:
        if _is_not_found(exc):
            return []
        raise
    return list(found)


def get_version(client_or_settings: Any, model_name: str, version: str | int) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    client = _client(client_or_settings)
    try:
        return client.get_model_version(model_name, str(version))
    except MlflowException as exc:
        if _is_not_found(exc):
            raise RegistryError(f"model {model_name!r} has no version {version}") from None
        raise


def find_version_by_tag(
    client_or_settings: Any, model_name: str, key: str, value: str
) -> ModelVersion | None:
    """The version whose tag `key` equals `value` (e.g. pipeline.run_id), filtered client-side so that it
    works on
    servers without tag filters in search; the lowest version number if several."""
    client = _client(client_or_settings)
    matches = [mv for mv in _all_versions(client, model_name) if (mv.tags or {}).get(key) == value]
    return min(matches, key=lambda mv: int(mv.version)) if matches else None


# ------------------------------------------------------------------------------------------------- roles
def _role_from_tags(client: MlflowClient, model_name: str, role: str) -> str | None:
    key = ROLE_TAG_PREFIX + role
    holders = [mv for mv in _all_versions(client, model_name) if (mv.tags or {}).get(key)]
    if not holders:
        return None
    best = max(holders, key=lambda mv: ((mv.tags or {})[key], int(mv.version)))
    return str(best.version)


def resolve_role(client_or_settings: Any, model_name: str, role: str) -> tuple[str, str] | None:
    """(version, model URI) holding `role`, or None. Aliases where supported, else the role tags."""
    from mlflow.exceptions import MlflowException

    client = _client(client_or_settings)
    try:
        mv = client.get_model_version_by_alias(model_name, role)
        return str(mv.version), model_uri(model_name, str(mv.version))
    except MlflowException as exc:
        if alias_unsupported(exc):
            version = _role_from_tags(client, model_name, role)
            return (version, model_uri(model_name, version)) if version else None
        if _is_not_found(exc):
            return None
        raise
    except (NotImplementedError, AttributeError):
        version = _role_from_tags(client, model_name, role)
        return (version, model_uri(model_name, version)) if version else None


def resolve_champion(client_or_settings: Any, model_name: str) -> tuple[str, str] | None:
    return resolve_role(client_or_settings, model_name, CHAMPION)


def resolve_challenger(client_or_settings: Any, model_name: str) -> tuple[str, str] | None:
    return resolve_role(client_or_settings, model_name, CHALLENGER)


def set_role(client_or_settings: Any, model_name: str, role: str, version: str | int) -> None:
    """Give `role` to `version`: the role tag first (newest assignment wins), then the alias (atomic switch
    where supported), then remove the tag from former holders. Interrupted anywhere, resolution stays
    unambiguous."""
    from mlflow.exceptions import MlflowException

    if role not in ROLES:
        raise RegistryError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    client = _client(client_or_settings)
    version = str(version)
    get_version(client, model_name, version)
    key = ROLE_TAG_PREFIX + role
    client.set_model_version_tag(model_name, version, key, _iso(now_utc()))
    try:
        client.set_registered_model_alias(model_name, role, version)
    except MlflowException as exc:
        if not alias_unsupported(exc):
            raise
        log.info("registry has no alias API; role %s kept as the tag %s", role, key)
    except (NotImplementedError, AttributeError):
        pass
    for mv in _all_versions(client, model_name):
        if str(mv.version) != version and (mv.tags or {}).get(key):
            client.delete_model_version_tag(model_name, str(mv.version), key)


def roles_of(client_or_settings: Any, model_name: str) -> dict[str, str]:
    """{role: version} for the roles that are set."""
    client = _client(client_or_settings)
    out = {}
    for role in ROLES:
        found = resolve_role(client, model_name, role)
        if found:
            out[role] = found[0]
    return out


# ------------------------------------------------------------------------------------------------- events
@dataclass
class Event:
    time: str
    action: str  # promote | rollback
    version: str
    previous: str | None
    reason: str
    actor: str
    data_digest: str | None = None
    git_commit: str | None = None
    pipeline_run_id: str | None = None
    key: str = field(default="", compare=False)

    @property
    def at(self) -> datetime:
        return parse_time(self.time)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("key")
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _events(client: MlflowClient, model_name: str) -> list[Event]:
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(model_name).tags or {}
    except MlflowException as exc:
        if _is_not_found(exc):
            return []
        raise
    events = []
    for key, value in tags.items():
        if not key.startswith(EVENT_TAG_PREFIX):
            continue
        try:
            data = json.loads(value)
            events.append(
                Event(**{k: data.get(k) for k in Event.__dataclass_fields__ if k != "key"}, key=key)
            )
        except (json.JSONDecodeError, TypeError) as exc:
            log.warning("ignoring unreadable event tag %s: %s", key, exc)
    return sorted(events, key=lambda e: (e.at, e.key))


def _append_event(client: MlflowClient, model_name: str, event: Event) -> Event:
    stamp = event.at.strftime("%Y%m%dT%H%M%S%fZ")
    event.key = f"{EVENT_TAG_PREFIX}{stamp}.{secrets.token_hex(4)}"
    client.set_registered_model_tag(model_name, event.key, event.to_json())
    return event


def history(client_or_settings: Any, model_name: str, at: str | datetime | None = None) -> list[Event]:
    """Promotion and rollback events, oldest first; with `at`, only those up to that time (the last one is the
    version that served at `at`)."""
    events = _events(_client(client_or_settings), model_name)
    if at is None:
        return events
    limit = parse_time(at)
    return [e for e in events if e.at <= limit]


def served_at(client_or_settings: Any, model_name: str, at: str | datetime) -> Event | None:
    """The event that put the serving champion in place at time `at` (None: nothing served yet)."""
    events = history(client_or_settings, model_name, at)
    return events[-1] if events else None


def _record(
    client: MlflowClient,
    model_name: str,
    action: str,
    version: str,
    previous: str | None,
    reason: str,
    actor: str,
) -> Event:
    tags = get_version(client, model_name, version).tags or {}
    event = Event(
        time=_iso(now_utc()),
        action=action,
        version=version,
        previous=previous,
        reason=reason,
        actor=actor,
        data_digest=tags.get("data.digest"),
        git_commit=tags.get("git.commit"),
        pipeline_run_id=tags.get("pipeline.run_id"),
    )
    return _append_event(client, model_name, event)


def promote(
    client_or_settings: Any, model_name: str, version: str | int, reason: str, actor: str
) -> Event | None:
    """Make `version` the champion and record the event. Idempotent: when it already is the champion and the
    last event says so, nothing happens (None); when the role moved but the event is missing (an
    interrupted run), only the event is written."""
    if not reason.strip():
        raise RegistryError("a reason is required")
    client = _client(client_or_settings)
    version = str(version)
    get_version(client, model_name, version)
    current = resolve_champion(client, model_name)
    events = _events(client, model_name)
    if current and current[0] == version:
        if events and events[-1].version == version:
            return None
        previous = events[-1].version if events else None
        return _record(client, model_name, "promote", version, previous, reason, actor)
    set_role(client, model_name, CHAMPION, version)
    return _record(client, model_name, "promote", version, current[0] if current else None, reason, actor)


def _champion_stack(events: list[Event]) -> list[str]:
    """Replay events: a promotion pushes its version, a rollback pops back to the one before."""
    stack: list[str] = []
    for e in events:
        if e.action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != e.version:
                stack.append(e.version)
        elif not stack or stack[-1] != e.version:
            stack.append(e.version)
    return stack


def rollback(client_or_settings: Any, model_name: str, reason: str, actor: str) -> Event:
    """Give the champion role back to the version that held it before the current one; record the event."""
    if not reason.strip():
        raise RegistryError("a reason is required")
    client = _client(client_or_settings)
    current = resolve_champion(client, model_name)
    if current is None:
        raise RegistryError(f"model {model_name!r} has no champion to roll back")
    stack = _champion_stack(_events(client, model_name))
    if stack and stack[-1] != current[0]:
        # The role was moved outside amlops: roll back to the last champion amlops recorded.
        stack.append(current[0])
    if len(stack) < 2:
        raise RegistryError(
            f"model {model_name!r}: no earlier champion to roll back to (champion is v{current[0]})"
        )
    target = stack[-2]
    get_version(client, model_name, target)
    set_role(client, model_name, CHAMPION, target)
    return _record(client, model_name, "rollback", target, current[0], reason, actor)


# ------------------------------------------------------------------------------------------------- listing
@dataclass
class VersionInfo:
    version: str
    roles: list[str]
    created: datetime
    run_id: str | None
    source: str
    tags: dict[str, str]

    @property
    def gate_passed(self) -> bool | None:
        value = self.tags.get("gate.passed")
        return None if value is None else value == "true"

    @property
    def complete(self) -> bool:
        return self.tags.get(REGISTRATION_TAG, "complete") == "complete"


def list_versions(client_or_settings: Any, model_name: str) -> list[VersionInfo]:
    """Every version, newest first, with its roles and tags (lineage, gate verdict)."""
    client = _client(client_or_settings)
    roles = roles_of(client, model_name)
    out = []
    for mv in _all_versions(client, model_name):
        v = str(mv.version)
        out.append(
            VersionInfo(
                version=v,
                roles=[r for r in ROLES if roles.get(r) == v],
                created=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, tz=UTC),
                run_id=mv.run_id,
                source=str(mv.source),
                tags=dict(mv.tags or {}),
            )
        )
    return sorted(out, key=lambda i: -int(i.version))


# ------------------------------------------------------------------------------------------------- artifacts
PROFILE_FILE = "reference_profile.json"


def download_reference_profile(
    model_uri_or_path: str, client_or_settings: Any = None, dst: str | Path | None = None
) -> Path:
    """The reference profile stored with a model: a local model folder, `models:/name/version`,
    `models:/name@role` (resolved through `resolve_role`: works without alias support) or `runs:/...`."""
    import mlflow

    uri = str(model_uri_or_path)
    local = Path(uri.removeprefix("file://"))
    if not uri.startswith(("models:/", "runs:/")) and ("://" not in uri or uri.startswith("file://")):
        path = local / PROFILE_FILE
        if not path.is_file():
            raise RegistryError(f"{local}: no {PROFILE_FILE} in the model folder")
        return path
    client = _client(client_or_settings)
    source = uri
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :]
        if "@" in rest:
            name, role = rest.split("@", 1)
            found = resolve_role(client, name, role)
            if found is None:
                raise RegistryError(f"model {name!r} has no {role}")
            version = found[0]
        elif "/" in rest:
            name, version = rest.rsplit("/", 1)
        else:
            raise RegistryError(f"{uri}: expected models:/<name>/<version> or models:/<name>@<role>")
        source = client.get_model_version_download_uri(name, version)
    target = str(dst) if dst is not None else None
    try:
        got = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{source.rstrip('/')}/{PROFILE_FILE}",
            dst_path=target,
            tracking_uri=client.tracking_uri,
        )
    except mlflow.exceptions.MlflowException as exc:
        raise RegistryError(
            f"{uri}: no {PROFILE_FILE} with this model ({str(exc).splitlines()[0]})"
        ) from None
    except OSError as exc:
        raise RegistryError(f"{uri}: cannot download {PROFILE_FILE} ({exc})") from None
    return Path(got)
