"""The MLflow model registry, amlops conventions: roles, lineage tags, promotion events, history.

Every call here must work on Azure ML's MLflow endpoint, whose support matrix
(https://learn.microsoft.com/azure/machine-learning/how-to-manage-models-mlflow, "Review supported capabilities
for managing models") lists: create/get/search registered models and versions by name, edit and delete
*model-version* tags and descriptions, delete versions. It does not list aliases, registered-model tags
(footnote 3: "Registered models are immutable objects in Azure Machine Learning"), or search by tag. An MLflow
route AML lacks answers 404 with an empty body (Azure/azure-sdk-for-python#44896, `/logged-models`), which the
client raises as ENDPOINT_NOT_FOUND; a request AML rejects answers INVALID_PARAMETER_VALUE with an Azure
`ValidationError` body (mlflow/mlflow#8008). So:

Roles. `champion` serves, `challenger` is the latest candidate. A role is a model-version tag
`role.<role>` whose value is the time it was assigned, *and* an MLflow alias where the server has aliases.
Everything resolves a role through `resolve_role`: the alias when the server answers one, else the tags
(among versions carrying the tag, the most recently assigned wins, so even a move interrupted half-way has
one answer). Searches filter by name only; tag conditions are applied here, client-side.

Events. Promotions and rollbacks are model-version tags `event.<UTC time>.<random>` on the version the event
made champion, holding a small JSON document (time, action, version, previous, reason, actor, data digest,
git commit). Model-version tags are in AML's matrix; registered-model tags are not (earlier releases wrote
events there: they are still read). A tag per event is written in one call and never rewritten (an artifact
would be read-modify-write, racy and not append-only), and the whole history comes back with the one
`search_model_versions` call that also answers the roles, so "which version served at time T" is one query.
Deleting a version deletes the events that made it champion.

Compare-and-set. `promote_if_champion` moves the champion only if it is still the version the gate compared
against, under a file lock for local SQLite/file registries. A server registry has no compare-and-set
primitive: the champion is re-read right before the switch and verified right after; two promoters that both
read the old champion in the same instant can still both switch (the later wins) — the verification and the
events show it, nothing prevents it.

Lineage tags on each version (set in the one call that creates it; where a registry rejects tags on create,
one by one right after it): see LINEAGE_TAGS.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"}
_NOT_FOUND_WORDS = ("not found", "does not exist", "doesn't exist")
_MAX_EVENT_REASON = 1000

log = logging.getLogger(__name__)


class RegistryError(ValueError):
    """An expected registry failure (unknown version, nothing to roll back to); one line."""


# ------------------------------------------------------------------------------------------------- clients
def client_for(settings: Settings) -> MlflowClient:
    """An MlflowClient on the configured tracking and registry URIs (creating the local SQLite folder)."""
    from amlops.mlflow_local import seed_sqlite, skip_azureml_plugins

    skip_azureml_plugins(settings.tracking_uri, settings.registry_uri)
    from mlflow.tracking import MlflowClient

    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    from amlops.tracking import check_store

    check_store(settings)  # an empty/truncated store or an unreachable server: one line, not a new registry
    seed_sqlite(uri)
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
    from amlops.tracking import unsupported_by_server

    return unsupported_by_server(exc)


def _is_not_found(exc: BaseException) -> bool:
    code = _code(exc)
    if code == "INVALID_PARAMETER_VALUE":  # also Azure ML's answer to a request it rejects: read the words
        return any(word in str(exc).lower() for word in _NOT_FOUND_WORDS)
    return code in _NOT_FOUND_CODES


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
        # Azure ML's words for a missing model are not documented: any "invalid" answer gets a create
        # attempt, which fails with its own clear message if the problem was something else.
        if not (_is_not_found(exc) or _code(exc) == "INVALID_PARAMETER_VALUE"):
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
    """(version, model URI) holding `role`, or None. The alias where the server answers one, else the role
    tags: a server without aliases (Azure ML) may answer "not found" as well as "unsupported", and the tags
    are written on every server, so a champion never vanishes because an alias call failed."""
    from mlflow.exceptions import MlflowException

    client = _client(client_or_settings)
    try:
        mv = client.get_model_version_by_alias(model_name, role)
        return str(mv.version), model_uri(model_name, str(mv.version))
    except MlflowException as exc:
        if not (alias_unsupported(exc) or _is_not_found(exc)):
            raise
    except (NotImplementedError, AttributeError):
        pass
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


def _parse_event(key: str, value: str) -> Event | None:
    try:
        data = json.loads(value)
        return Event(**{k: data.get(k) for k in Event.__dataclass_fields__ if k != "key"}, key=key)
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable event tag %s: %s", key, exc)
        return None


def _legacy_event_tags(client: MlflowClient, model_name: str) -> dict[str, str]:
    """Events earlier releases wrote as registered-model tags (not writable on Azure ML; still read)."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(model_name).tags or {}
    except MlflowException as exc:
        if _is_not_found(exc):
            return {}
        raise
    return {k: v for k, v in tags.items() if k.startswith(EVENT_TAG_PREFIX)}


def _events(client: MlflowClient, model_name: str) -> list[Event]:
    found: dict[str, str] = _legacy_event_tags(client, model_name)
    for mv in _all_versions(client, model_name):
        found |= {k: v for k, v in (mv.tags or {}).items() if k.startswith(EVENT_TAG_PREFIX)}
    events = [e for e in (_parse_event(k, v) for k, v in found.items()) if e is not None]
    return sorted(events, key=lambda e: (e.at, e.key))


def _append_event(client: MlflowClient, model_name: str, event: Event) -> Event:
    """One model-version tag on the version the event is about: in Azure ML's support matrix ("Edit
    registered model's versions tags"), unlike registered-model tags."""
    stamp = event.at.strftime("%Y%m%dT%H%M%S%fZ")
    event.key = f"{EVENT_TAG_PREFIX}{stamp}.{secrets.token_hex(4)}"
    client.set_model_version_tag(model_name, event.version, event.key, event.to_json())
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
        reason=reason[:_MAX_EVENT_REASON],
        actor=actor,
        data_digest=tags.get("data.digest"),
        git_commit=tags.get("git.commit"),
        pipeline_run_id=tags.get("pipeline.run_id"),
    )
    return _append_event(client, model_name, event)


# People read the history in the UI's version page: beside the raw `event.*` JSON, the version made champion
# carries `champion.since` and the one it replaced `champion.until`, each one readable line
# (amlops.tracking.event_note). The latest change wins on a version; the events keep the whole history.
SINCE_TAG = "champion.since"
UNTIL_TAG = "champion.until"


def _note_change(client: MlflowClient, model_name: str, event: Event) -> None:
    """The readable tags for a promotion or rollback: two model-version tag calls (in Azure ML's matrix)."""
    from amlops.tracking import event_note

    client.set_model_version_tag(model_name, event.version, SINCE_TAG, event_note(asdict(event))[:5000])
    if event.previous and event.previous != event.version:
        when = event.time[:16].replace("T", " ")
        how = "rolled back to" if event.action == "rollback" else "replaced by"
        reason = f": {event.reason}" if event.reason else ""
        note = f"{when} UTC: {how} v{event.version}" + (f" by {event.actor}" if event.actor else "") + reason
        client.set_model_version_tag(model_name, event.previous, UNTIL_TAG, note[:5000])


# ------------------------------------------------------------------------------------------------- locking
_LOCK_TIMEOUT_S = 60.0
_local = threading.local()  # lock paths this thread holds, with depth (promote inside promote_if_champion)


def _held() -> dict[str, int]:
    if not hasattr(_local, "held"):
        _local.held = {}
    held: dict[str, int] = _local.held
    return held


def _lock_path(client: MlflowClient) -> Path | None:
    """Where a local registry's promotion lock lives; None for a server (no shared file to lock)."""
    uri = str(getattr(client, "_registry_uri", "") or "")
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return db.with_name(db.name + ".amlops-lock")
    if uri.startswith("file:") or (uri and "://" not in uri):
        return Path(uri.removeprefix("file://").removeprefix("file:")) / ".amlops-lock"
    return None


@contextmanager
def registry_lock(client_or_settings: Any) -> Iterator[bool]:
    """Serialise read-champion-then-switch for every process on this machine using a local registry (the
    pipeline's register step, `amlops promote`, `rollback`). Yields False where there is nothing to lock (a
    server): callers then re-read and verify instead."""
    client = _client(client_or_settings)
    path = _lock_path(client)
    if path is None:
        yield False
        return
    key, held = str(path), _held()
    if held.get(key):
        held[key] += 1
        try:
            yield True
        finally:
            held[key] -= 1
        return
    from amlops.locks import file_lock

    def timed_out() -> Exception:
        return RegistryError(
            f"registry lock {path} held for over {_LOCK_TIMEOUT_S:.0f} s by another promotion"
        )

    with file_lock(path, _LOCK_TIMEOUT_S, timed_out):
        held[key] = 1
        try:
            yield True
        finally:
            held.pop(key, None)


# ------------------------------------------------------------------------------------------------- promotion
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
    with registry_lock(client):
        get_version(client, model_name, version)
        current = resolve_champion(client, model_name)
        events = _events(client, model_name)
        if current and current[0] == version:
            if events and events[-1].version == version:
                return None
            previous = events[-1].version if events else None
            event = _record(client, model_name, "promote", version, previous, reason, actor)
        else:
            set_role(client, model_name, CHAMPION, version)
            event = _record(
                client, model_name, "promote", version, current[0] if current else None, reason, actor
            )
        _note_change(client, model_name, event)
        return event


@dataclass
class Promotion:
    """What `promote_if_champion` did. `status`: promoted | already_champion | champion_changed |
    overtaken (switched, then found another version in the role)."""

    status: str
    version: str
    expected: str | None  # the champion the gate compared against (None: there was none)
    champion: str | None  # the champion when the switch was decided (after it, for `overtaken`)
    locked: bool
    event: Event | None = None

    @property
    def promoted(self) -> bool:
        return self.status in ("promoted", "already_champion")

    def describe(self) -> str:
        gate = f"v{self.expected}" if self.expected else "no champion"
        if self.status == "champion_changed":
            now = f"v{self.champion}" if self.champion else "none"
            return (
                f"not promoted: the champion changed since the gate compared against {gate} "
                f"(champion is now {now}); v{self.version} stays challenger"
            )
        if self.status == "overtaken":
            return f"promoted, then v{self.champion} took the champion role concurrently"
        return f"promoted over {gate}" if self.status == "promoted" else "already the champion"


def promote_if_champion(
    client_or_settings: Any,
    model_name: str,
    version: str | int,
    expected: str | None,
    reason: str,
    actor: str,
) -> Promotion:
    """Compare-and-set: make `version` the champion only if the champion is still `expected` (the version the
    gate beat; None when there was no champion). Atomic on local registries (the lock); on a server, the
    champion is re-read immediately before the switch and verified immediately after (see the module note
    for the race that remains)."""
    client = _client(client_or_settings)
    version = str(version)
    expected = str(expected) if expected not in (None, "", "none") else None
    with registry_lock(client) as locked:
        found = resolve_champion(client, model_name)
        current = found[0] if found else None
        if current == version:  # a rerun after a kill between the switch and the end of registration
            event = promote(client, model_name, version, reason, actor)
            return Promotion("already_champion", version, expected, current, locked, event)
        if current != expected:
            return Promotion("champion_changed", version, expected, current, locked)
        event = promote(client, model_name, version, reason, actor)
        after = resolve_champion(client, model_name)
        if not after or after[0] != version:
            return Promotion("overtaken", version, expected, after[0] if after else None, locked, event)
        return Promotion("promoted", version, expected, current, locked, event)


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
    with registry_lock(client):
        return _rollback(client, model_name, reason, actor)


def _rollback(client: MlflowClient, model_name: str, reason: str, actor: str) -> Event:
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
    event = _record(client, model_name, "rollback", target, current[0], reason, actor)
    _note_change(client, model_name, event)
    return event


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
    `models:/name@role` (resolved through `resolve_role`: works without alias support) or `runs:/...`.
    Registry models come through `amlops.model_cache` (the settings' cache, else `dst`, else a temp folder)."""
    import tempfile

    from amlops import model_cache
    from amlops.config import Settings

    uri = str(model_uri_or_path)
    local = Path(uri.removeprefix("file://"))
    if not uri.startswith(("models:/", "runs:/")) and ("://" not in uri or uri.startswith("file://")):
        path = local / PROFILE_FILE
        if not path.is_file():
            raise RegistryError(f"{local}: no {PROFILE_FILE} in the model folder")
        return path
    client = _client(client_or_settings)
    if dst is not None:
        cache = Path(dst)
    elif isinstance(client_or_settings, Settings):
        cache = model_cache.cache_dir(client_or_settings)
    else:
        cache = Path(tempfile.mkdtemp(prefix="amlops-profile-"))
    try:
        folder = model_cache.model_for_uri_at(client, uri, cache, client.tracking_uri)
    except model_cache.ModelCacheError as exc:
        raise RegistryError(str(exc)) from None
    path = folder / PROFILE_FILE
    if not path.is_file():
        raise RegistryError(f"{uri}: no {PROFILE_FILE} with this model")
    return path
