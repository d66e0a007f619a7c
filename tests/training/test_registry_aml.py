"""The registry on an Azure-ML-like MLflow endpoint: only calls in Microsoft's support matrix, tested fallbacks
for the rest (aliases, registered-model tags, datasets), promotion events that survive there."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from amlfake_mlflow import (
    ROUTE_MISSING,
    VALIDATION,
    AmlLikeClient,
    aml_client_class,
    install,
    route_missing,
    validation_error,
)
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from training_helpers import store_with_three_versions

from amlops import registry
from amlops.config import Settings

NAME = "aml-test"
ALIAS_CALLS = {"set_registered_model_alias", "get_model_version_by_alias", "delete_registered_model_alias"}


@pytest.fixture
def store(tmp_path: Path, store_template: Path) -> Settings:
    return store_with_three_versions(tmp_path, store_template, NAME)


@pytest.fixture(params=[ROUTE_MISSING, VALIDATION])
def aml(request: pytest.FixtureRequest, store: Settings) -> AmlLikeClient:
    """An AML-like client on the store; alias calls refused as a missing route or as a validation error."""
    cls = aml_client_class(request.param)
    return cls(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)


def plain(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry_uri)


def test_the_fake_refuses_what_aml_refuses(aml: AmlLikeClient) -> None:
    """The fake itself: registered-model tags and tag searches are refused the way AML refuses them."""
    with pytest.raises(MlflowException, match="ValidationError"):
        aml.set_registered_model_tag(NAME, "k", "v")
    with pytest.raises(MlflowException, match="ValidationError"):
        aml.search_model_versions(f"name='{NAME}' and tags.role = 'x'")
    with pytest.raises(MlflowException, match="404 != 200"):
        aml.log_inputs("run", datasets=[])
    assert len(aml.search_model_versions(f"name='{NAME}'")) == 3  # by name: supported


def test_promote_rollback_history_on_aml(aml: AmlLikeClient, store: Settings) -> None:
    """Fails on the registered-model-tag events of earlier releases: AML refuses set_registered_model_tag."""
    assert registry.promote(aml, NAME, 1, reason="first", actor="ci") is not None
    assert registry.promote(aml, NAME, 1, reason="again", actor="ci") is None  # idempotent on AML too
    registry.promote(aml, NAME, 2, reason="better", actor="alice")
    back = registry.rollback(aml, NAME, reason="bad forecasts", actor="bob")
    assert (back.version, back.previous) == ("1", "2")
    assert registry.resolve_champion(aml, NAME) == ("1", f"models:/{NAME}/1")
    registry.set_role(aml, NAME, registry.CHALLENGER, 3)
    assert registry.roles_of(aml, NAME) == {"champion": "1", "challenger": "3"}
    rows = {v.version: v.roles for v in registry.list_versions(aml, NAME)}
    assert rows == {"3": ["challenger"], "2": [], "1": ["champion"]}

    events = registry.history(aml, NAME)
    assert [(e.action, e.version, e.previous) for e in events] == [
        ("promote", "1", None),
        ("promote", "2", "1"),
        ("rollback", "1", "2"),
    ]
    t0, t1, t2 = (e.at for e in events)
    assert registry.served_at(aml, NAME, t0 + (t1 - t0) / 2).version == "1"  # type: ignore[union-attr]
    assert registry.served_at(aml, NAME, t1 + (t2 - t1) / 2).version == "2"  # type: ignore[union-attr]
    # Where they live: model-version tags (in AML's matrix), none on the immutable registered model.
    inner = plain(store)
    assert not [k for k in inner.get_registered_model(NAME).tags or {} if k.startswith("event.")]
    on_versions = {
        v: sum(k.startswith("event.") for k in inner.get_model_version(NAME, v).tags) for v in ("1", "2")
    }
    assert on_versions == {"1": 2, "2": 1}
    # Only alias calls were refused, and each was answered by the role tags.
    assert set(type(aml).refused) <= ALIAS_CALLS


def test_history_at_time_from_the_cli_on_aml(
    store: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`amlops history --at T` reads the events on AML as it does locally."""
    from typer.testing import CliRunner

    from amlops.cli import app

    cls = aml_client_class()
    install(monkeypatch, cls)
    registry.promote(registry.client_for(store), NAME, 1, reason="first", actor="ci")
    registry.promote(registry.client_for(store), NAME, 2, reason="second", actor="ci")
    t0, t1 = (e.at for e in registry.history(registry.client_for(store), NAME))
    (tmp_path / "amlops.yaml").write_text(f"model_name: {NAME}\n")
    monkeypatch.chdir(tmp_path)
    between = (t0 + (t1 - t0) / 2).isoformat()
    before = CliRunner().invoke(app, ["history", "--at", between, "--json"])
    now = CliRunner().invoke(app, ["history", "--at", "now", "--json"])
    assert before.exit_code == 0 and now.exit_code == 0, before.output + now.output
    assert json.loads(before.output)["serving"]["version"] == "1"
    assert json.loads(now.output)["serving"]["version"] == "2"
    assert set(cls.refused) <= ALIAS_CALLS


def test_events_written_by_earlier_releases_are_still_read(aml: AmlLikeClient, store: Settings) -> None:
    legacy = registry.Event(
        time="2026-01-01T00:00:00.000000Z",
        action="promote",
        version="3",
        previous=None,
        reason="old",
        actor="x",
    )
    plain(store).set_registered_model_tag(NAME, "event.20260101T000000000000Z.0000", legacy.to_json())
    registry.promote(aml, NAME, 2, reason="new", actor="ci")
    assert [(e.version, e.previous) for e in registry.history(aml, NAME)] == [("3", None), ("2", None)]
    assert registry.served_at(aml, NAME, "2026-06-01").version == "3"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "exc", [validation_error(), route_missing("/api/2.0/mlflow/registered-models/alias")], ids=["400", "404"]
)
def test_aml_refusals_read_as_unsupported(exc: BaseException) -> None:
    """AML's "the request is invalid" shares INVALID_PARAMETER_VALUE with MLflow's "alias not found": it must
    not read as "no champion" (earlier releases did, and would have compared every model against nothing)."""
    from amlops.tracking import unsupported_by_server

    assert unsupported_by_server(exc) is True
    assert registry.alias_unsupported(exc) is True


def test_a_champion_survives_an_alias_api_that_answers_not_found(store: Settings) -> None:
    """A server that answers the alias route with "not found" while the role tags say otherwise: the tags
    answer (they are written on every server)."""
    from mlflow.exceptions import RestException

    class NotFoundAliases(MlflowClient):
        def get_model_version_by_alias(self, name: str, alias: str) -> Any:
            raise RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "alias not found"})

    client = NotFoundAliases(tracking_uri=store.tracking_uri, registry_uri=store.registry_uri)
    plain(store).set_model_version_tag(NAME, "2", "role.champion", "2026-11-01T00:00:00.000000Z")
    assert registry.resolve_champion(client, NAME) == ("2", f"models:/{NAME}/2")


def test_reference_profile_on_aml(aml: AmlLikeClient, tmp_path: Path) -> None:
    registry.promote(aml, NAME, 2, reason="x", actor="ci")
    path = registry.download_reference_profile(f"models:/{NAME}@champion", aml, dst=tmp_path / "dl")
    assert json.loads(path.read_text()) == {"version": 2}
    assert set(type(aml).refused) <= ALIAS_CALLS


@pytest.mark.parametrize("alias_refusal", [ROUTE_MISSING, VALIDATION])
def test_training_steps_on_aml(
    alias_refusal: str, tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train → evaluate → register twice, every MLflow client the steps create being AML-like: only alias
    calls and the datasets API are refused, and both have their fallback (role tags; dataset run tags)."""
    from training_helpers import run_steps

    cls = aml_client_class(alias_refusal)
    install(monkeypatch, cls)
    name = tracked.model_name
    first = run_steps(tracked, raw_csv, tmp_path / "a", monkeypatch, run_id="run-a", params={"max_iter": 3})
    second = run_steps(tracked, raw_csv, tmp_path / "b", monkeypatch, run_id="run-b")
    assert first.json(first.registration, "registration.json")["is_champion"]
    record = second.json(second.registration, "registration.json")
    assert record["promotion"]["status"] == "promoted" and record["promotion"]["gate_champion"] == "1"
    assert registry.roles_of(tracked, name) == {"champion": "2", "challenger": "2"}
    assert [(e.version, e.previous) for e in registry.history(tracked, name)] == [("1", None), ("2", "1")]
    assert set(cls.refused) <= ALIAS_CALLS | {"log_inputs"} and "log_inputs" in cls.refused
    run = plain(tracked).get_run(second.json(second.run_info, "run_info.json")["run_id"])
    assert run.data.tags["dataset.digest"] and run.data.tags["dataset.context"] == "training"


def test_a_registry_that_rejects_tags_on_create_gets_them_one_by_one(
    tracked: Settings, raw_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reported for Azure ML (mlflow/mlflow#8008): create-with-tags answered "The request is invalid."."""
    from training_helpers import run_steps

    from amlops.steps.register import register

    class RejectsTagsOnCreate(aml_client_class()):  # type: ignore[misc]
        def create_model_version(self, *args: Any, tags: Any = None, **kwargs: Any) -> Any:
            if tags:
                raise validation_error()
            return super().create_model_version(*args, tags=tags, **kwargs)

    r = run_steps(tracked, raw_csv, tmp_path / "a", monkeypatch, run_id="run-a", register=False)
    install(monkeypatch, RejectsTagsOnCreate)
    record = register(r.run_info, r.verdict, r.snapshot, r.registration, model_name=tracked.model_name)
    tags = plain(tracked).get_model_version(tracked.model_name, record["version"]).tags
    assert set(registry.LINEAGE_TAGS) | set(registry.GATE_TAGS) <= set(tags)
    assert tags["registration"] == "complete" and record["is_champion"]
    again = register(r.run_info, r.verdict, r.snapshot, tmp_path / "again", model_name=tracked.model_name)
    assert again["version"] == record["version"] and not again["created"]  # the rerun finds it
