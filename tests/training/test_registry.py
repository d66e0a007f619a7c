"""Registry conventions: roles through aliases or tags (one resolver), append-only events, history at time
T."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient
from training_helpers import store_with_three_versions

from amlops import registry

NAME = "reg-test"


class NoAliasClient:
    """An MlflowClient as Azure ML's MLflow endpoint may behave: every alias call is rejected (no route)."""

    def __init__(self, inner: MlflowClient) -> None:
        self._inner = inner
        self.alias_calls = 0

    def __getattr__(self, name: str) -> Any:
        if "alias" in name:

            def reject(*args: Any, **kwargs: Any) -> Any:
                self.alias_calls += 1
                raise MlflowException(
                    "API request to endpoint /api/2.0/mlflow/registered-models/alias failed with error code "
                    "404 != 200. Response body: '<html>Not Found</html>'",
                    error_code=registry_error_code("ENDPOINT_NOT_FOUND"),
                )

            return reject
        return getattr(self._inner, name)


def registry_error_code(name: str) -> int:
    from mlflow.protos import databricks_pb2

    return int(databricks_pb2.ErrorCode.Value(name))


@pytest.fixture
def inner(tmp_path: Path, store_template: Path) -> MlflowClient:
    gate = {v: {"gate.passed": "true" if v != 3 else "false"} for v in (1, 2, 3)}
    return registry.client_for(store_with_three_versions(tmp_path, store_template, NAME, gate))


@pytest.fixture(params=["aliases", "tags-only"])
def client(request: pytest.FixtureRequest, inner: MlflowClient) -> Any:
    return inner if request.param == "aliases" else NoAliasClient(inner)


def test_set_role_moves_alias_and_tag(client: Any, inner: MlflowClient) -> None:
    assert registry.resolve_champion(client, NAME) is None
    registry.set_role(client, NAME, registry.CHAMPION, 1)
    assert registry.resolve_champion(client, NAME) == ("1", f"models:/{NAME}/1")
    registry.set_role(client, NAME, registry.CHAMPION, 2)
    assert registry.resolve_champion(client, NAME) == ("2", f"models:/{NAME}/2")
    tags = {v: inner.get_model_version(NAME, v).tags for v in ("1", "2")}
    assert "role.champion" not in tags["1"] and tags["2"]["role.champion"]
    if isinstance(client, NoAliasClient):
        assert client.alias_calls > 0
        with pytest.raises(MlflowException):  # the fallback never wrote an alias
            inner.get_model_version_by_alias(NAME, "champion")
    else:
        assert str(inner.get_model_version_by_alias(NAME, "champion").version) == "2"
    registry.set_role(client, NAME, registry.CHALLENGER, 3)
    assert registry.roles_of(client, NAME) == {"champion": "2", "challenger": "3"}


def test_tag_fallback_has_one_answer_after_an_interrupted_move(inner: MlflowClient) -> None:
    client = NoAliasClient(inner)
    registry.set_role(client, NAME, registry.CHAMPION, 1)
    # A move killed after tagging the new holder, before untagging the old one: the newest assignment wins.
    inner.set_model_version_tag(NAME, "2", "role.champion", "2999-01-01T00:00:00.000000Z")
    assert registry.resolve_champion(client, NAME) == ("2", f"models:/{NAME}/2")


@pytest.mark.parametrize(
    ("exc", "unsupported"),
    [
        (MlflowException("x", error_code=registry_error_code("ENDPOINT_NOT_FOUND")), True),
        (MlflowException("x", error_code=registry_error_code("NOT_IMPLEMENTED")), True),
        (RestException({"error_code": "FEATURE_DISABLED", "message": "aliases"}), True),
        (RestException({"error": {"code": "UserError", "message": "Operation is not supported"}}), True),
        (NotImplementedError(), True),
        (
            MlflowException(
                "Registered model alias champion not found.",
                error_code=registry_error_code("INVALID_PARAMETER_VALUE"),
            ),
            False,
        ),
        (RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "alias not found"}), False),
        (MlflowException("database is locked"), False),
    ],
)
def test_alias_support_detection(exc: BaseException, unsupported: bool) -> None:
    assert registry.alias_unsupported(exc) is unsupported


def test_promote_rollback_and_history_at_time(client: Any) -> None:
    assert registry.promote(client, NAME, 1, reason="first model", actor="ci") is not None
    assert registry.promote(client, NAME, 1, reason="again", actor="ci") is None  # idempotent
    registry.promote(client, NAME, 2, reason="better", actor="alice")
    back = registry.rollback(client, NAME, reason="bad forecasts", actor="bob")
    assert (back.version, back.previous, back.action) == ("1", "2", "rollback")
    assert registry.resolve_champion(client, NAME)[0] == "1"  # type: ignore[index]
    with pytest.raises(registry.RegistryError, match="no earlier champion"):
        registry.rollback(client, NAME, reason="again", actor="bob")

    events = registry.history(client, NAME)
    assert [(e.action, e.version, e.previous, e.actor) for e in events] == [
        ("promote", "1", None, "ci"),
        ("promote", "2", "1", "alice"),
        ("rollback", "1", "2", "bob"),
    ]
    assert events[1].data_digest == "sha256:2" * 4 and events[1].git_commit == "commit2"
    t0, t1, t2 = (e.at for e in events)
    assert registry.served_at(client, NAME, t0 - (t1 - t0)) is None
    assert registry.served_at(client, NAME, t0 + (t1 - t0) / 2).version == "1"  # type: ignore[union-attr]
    assert registry.served_at(client, NAME, t1 + (t2 - t1) / 2).version == "2"  # type: ignore[union-attr]
    assert registry.served_at(client, NAME, "now").version == "1"  # type: ignore[union-attr]
    # the events are tags of the versions they made champion (Azure ML has no registered-model tags)
    plain = client._inner if isinstance(client, NoAliasClient) else client
    assert not [k for k in plain.get_registered_model(NAME).tags if k.startswith("event.")]
    tags = {v: plain.get_model_version(NAME, v).tags for v in ("1", "2")}
    assert [sum(k.startswith("event.") for k in tags[v]) for v in ("1", "2")] == [2, 1]


def test_promotions_and_rollbacks_read_as_sentences_on_the_versions(client: Any) -> None:
    """Beside the raw event JSON, the UI's version page says when and why a version became or stopped being
    champion (issue 16: history readable by people)."""
    plain = client._inner if isinstance(client, NoAliasClient) else client

    def tags(v: str) -> dict[str, str]:
        return dict(plain.get_model_version(NAME, v).tags)

    registry.promote(client, NAME, 1, reason="first model", actor="ci")
    assert tags("1")[registry.SINCE_TAG].endswith("UTC: v1 promoted to champion by ci: first model")
    assert registry.UNTIL_TAG not in tags("1")
    registry.promote(client, NAME, 2, reason="gate passed: mae 5.1 vs 6.2", actor="pipeline:run-7")
    assert (
        "v2 promoted to champion (was v1) by pipeline:run-7: gate passed: mae 5.1 vs 6.2"
        in (tags("2")[registry.SINCE_TAG])
    )
    assert "UTC: replaced by v2 by pipeline:run-7: gate passed" in tags("1")[registry.UNTIL_TAG]
    registry.rollback(client, NAME, reason="bad forecasts", actor="bob")
    assert (
        "v1 restored as champion (rollback) (was v2) by bob: bad forecasts" in tags("1")[registry.SINCE_TAG]
    )
    assert tags("2")[registry.UNTIL_TAG].endswith("UTC: rolled back to v1 by bob: bad forecasts")
    assert registry.UNTIL_TAG not in tags("3")  # never champion: nothing to say


def test_promote_refuses_unknown_versions_and_empty_reasons(client: Any) -> None:
    with pytest.raises(registry.RegistryError, match="has no version 9"):
        registry.promote(client, NAME, 9, reason="x", actor="ci")
    with pytest.raises(registry.RegistryError, match="reason is required"):
        registry.promote(client, NAME, 1, reason=" ", actor="ci")
    with pytest.raises(registry.RegistryError, match="no champion"):
        registry.rollback(client, NAME, reason="x", actor="ci")


def test_an_interrupted_promotion_is_completed_by_the_rerun(inner: MlflowClient) -> None:
    registry.set_role(inner, NAME, registry.CHAMPION, 2)  # the role moved, the run died before the event
    event = registry.promote(inner, NAME, 2, reason="rerun", actor="pipeline:r1")
    assert event is not None and event.version == "2"
    assert registry.promote(inner, NAME, 2, reason="rerun", actor="pipeline:r1") is None


def test_list_versions_shows_roles_and_verdicts(client: Any) -> None:
    registry.promote(client, NAME, 2, reason="x", actor="ci")
    registry.set_role(client, NAME, registry.CHALLENGER, 3)
    rows = {v.version: v for v in registry.list_versions(client, NAME)}
    assert [v.version for v in registry.list_versions(client, NAME)] == ["3", "2", "1"]
    assert rows["2"].roles == ["champion"] and rows["3"].roles == ["challenger"] and rows["1"].roles == []
    assert (rows["2"].gate_passed, rows["3"].gate_passed) == (True, False)


def test_history_time_parsing() -> None:
    assert registry.parse_time("2026-01-02T03:04:05").isoformat() == "2026-01-02T03:04:05+00:00"
    assert registry.parse_time("2026-01-02T04:04:05+01:00").isoformat() == "2026-01-02T03:04:05+00:00"
    with pytest.raises(registry.RegistryError, match="not an ISO 8601 time"):
        registry.parse_time("yesterday")


def test_download_reference_profile(client: Any, tmp_path: Path) -> None:
    registry.promote(client, NAME, 2, reason="x", actor="ci")
    for uri in (f"models:/{NAME}/2", f"models:/{NAME}@champion", str(tmp_path / "model-2")):
        path = registry.download_reference_profile(uri, client, dst=tmp_path / "dl" / uri.replace("/", "_"))
        assert json.loads(path.read_text()) == {"version": 2}
    with pytest.raises(registry.RegistryError, match="has no challenger"):
        registry.download_reference_profile(f"models:/{NAME}@challenger", client)
