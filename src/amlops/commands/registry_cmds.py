"""`amlops promote | rollback | history | models`: registry roles and their history."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from typing import Annotated, Any

import typer

from amlops.console import UserError, handle_errors, out, warn


class PromoteStage(StrEnum):
    all = "all"
    share = "share"
    copy = "copy"


def default_actor() -> str:
    """Who is acting: the CI user when in GitHub Actions, else the login name."""
    if os.environ.get("GITHUB_ACTOR"):
        return f"github:{os.environ['GITHUB_ACTOR']}"
    try:
        import getpass

        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _short(value: str | None, n: int = 12) -> str:
    if not value:
        return "-"
    return value.split(":", 1)[-1][:n] if value.startswith("sha256:") else value[:n]


def _registry_errors() -> tuple[type[BaseException], ...]:
    from mlflow.exceptions import MlflowException

    from amlops.registry import RegistryError

    return (RegistryError, MlflowException)


def register(app: typer.Typer) -> None:
    @app.command("promote")
    @handle_errors
    def promote(
        reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the promotion event)")],
        version: Annotated[
            str | None, typer.Argument(help="Version to make champion (default: the challenger)")
        ] = None,
        actor: Annotated[
            str | None, typer.Option("--actor", help="Who (default: $GITHUB_ACTOR or the login name)")
        ] = None,
        to: Annotated[
            str | None, typer.Option("--to", help="Promote the champion to another environment (Azure)")
        ] = None,
        stage: Annotated[
            PromoteStage,
            typer.Option(
                "--stage",
                help="With --to: share (source workspace -> AML registry), copy (registry -> target, "
                "needs VERSION) or all; one stage per identity in CI",
            ),
        ] = PromoteStage.all,
    ) -> None:
        """Make a version the champion (moves the alias and the role tag, records who, when and why)."""
        from amlops import registry
        from amlops.config import load_settings

        settings = load_settings()
        if to is not None:
            from amlops.azure.promote import promote_to

            result = promote_to(
                to,
                settings,
                version=version,
                reason=reason,
                actor=actor or default_actor(),
                stage=stage.value,
            )
            if result is not None:
                out.print(str(result))
            return
        try:
            client = registry.client_for(settings)
            name = settings.model_name
            if version is None:
                challenger = registry.resolve_challenger(client, name)
                if challenger is None:
                    raise UserError(f"model {name!r} has no challenger: name the version to promote")
                version = challenger[0]
            tags = registry.get_version(client, name, version).tags or {}
            if tags.get("gate.passed") == "false":
                warn(
                    f"v{version} did not pass the gate ({tags.get('gate.reasons', '?')}); "
                    "promoting on your word"
                )
            before = registry.resolve_champion(client, name)
            event = registry.promote(client, name, version, reason=reason, actor=actor or default_actor())
        except _registry_errors() as exc:
            raise UserError(str(exc).splitlines()[0]) from None
        if event is None:
            out.print(f"v{version} already is the champion of {name}; nothing changed")
            return
        # The event's `previous` was read under the promotion lock; `before` may be stale when another promote
        # ran in between (two promotes at once), and the message must agree with `amlops history`.
        previous = event.previous if event.previous is not None else (before[0] if before else None)
        was = f" (was v{previous})" if previous else ""
        out.print(f"[green]v{version} is now the champion of {name}[/]{was}; event recorded at {event.time}")

    @app.command("rollback")
    @handle_errors
    def rollback(
        reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded in the rollback event)")],
        actor: Annotated[
            str | None, typer.Option("--actor", help="Who (default: $GITHUB_ACTOR or the login name)")
        ] = None,
    ) -> None:
        """Give the champion role back to the version that held it before the current one."""
        from amlops import registry
        from amlops.config import load_settings

        settings = load_settings()
        try:
            event = registry.rollback(
                settings, settings.model_name, reason=reason, actor=actor or default_actor()
            )
        except _registry_errors() as exc:
            raise UserError(str(exc).splitlines()[0]) from None
        out.print(
            f"[green]rolled back {settings.model_name}: champion is v{event.version}[/] "
            f"(was v{event.previous}); "
            f"event recorded at {event.time}"
        )

    @app.command("history")
    @handle_errors
    def history(
        at: Annotated[
            str | None, typer.Option("--at", help="ISO time (UTC if no zone): which version served then")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    ) -> None:
        """Promotions and rollbacks: which version served when, with its data digest and code commit."""
        from dataclasses import asdict

        from amlops import registry
        from amlops.config import load_settings

        settings = load_settings()
        try:
            events = registry.history(settings, settings.model_name, at=at)
            when = registry.parse_time(at) if at else None
        except _registry_errors() as exc:
            raise UserError(str(exc).splitlines()[0]) from None
        if as_json:
            payload: Any = [asdict(e) for e in events]
            if when is not None:
                payload = {
                    "at": when.isoformat(),
                    "serving": payload[-1] if payload else None,
                    "events": payload,
                }
            out.print(json.dumps(payload, indent=2), markup=False)
            return
        if when is not None:
            if not events:
                out.print(
                    f"no champion of {settings.model_name} at {when.isoformat()} (nothing promoted yet)"
                )
                return
            e = events[-1]
            out.print(
                f"at {when.isoformat()} [bold]v{e.version}[/] of {settings.model_name} served "
                f"(since {e.time}, {e.action} by {e.actor}: {e.reason})"
            )
            out.print(f"  data {e.data_digest or '-'}")
            out.print(f"  commit {e.git_commit or '-'}   pipeline run {e.pipeline_run_id or '-'}")
            return
        if not events:
            out.print(f"no promotions of {settings.model_name} yet")
            return
        from rich.table import Table

        table = Table(title=f"{settings.model_name}: champion history", title_justify="left")
        for col in ("time (UTC)", "action", "version", "previous", "actor", "reason", "data", "commit"):
            table.add_column(col, overflow="fold")
        for e in events:
            table.add_row(
                e.at.strftime("%Y-%m-%d %H:%M:%S"),
                e.action,
                f"v{e.version}",
                f"v{e.previous}" if e.previous else "-",
                e.actor,
                e.reason,
                _short(e.data_digest),
                _short(e.git_commit, 10),
            )
        out.print(table)

    @app.command("models")
    @handle_errors
    def models(as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
        """Registered versions with their roles, gate verdicts and lineage."""
        from amlops import registry
        from amlops.config import load_settings

        settings = load_settings()
        try:
            versions = registry.list_versions(settings, settings.model_name)
        except _registry_errors() as exc:
            raise UserError(str(exc).splitlines()[0]) from None
        if as_json:
            rows = [
                {
                    "version": v.version,
                    "roles": v.roles,
                    "created": v.created.isoformat(),
                    "run_id": v.run_id,
                    "gate_passed": v.gate_passed,
                    "complete": v.complete,
                    "tags": v.tags,
                }
                for v in versions
            ]
            out.print(json.dumps(rows, indent=2), markup=False)
            return
        if not versions:
            out.print(f"no versions of {settings.model_name} yet (run `amlops train`)")
            return
        from rich.table import Table

        table = Table(title=f"{settings.model_name}", title_justify="left")
        for col in (
            "version",
            "roles",
            "created (UTC)",
            "gate",
            "metric",
            "challenger",
            "champion",
            "data",
            "commit",
        ):
            table.add_column(col, overflow="fold")
        for v in versions:
            gate = {True: "[green]passed[/]", False: "[red]failed[/]", None: "-"}[v.gate_passed]
            if not v.complete:
                gate += " [yellow](registration incomplete)[/]"
            table.add_row(
                f"v{v.version}",
                ", ".join(v.roles) or "-",
                v.created.strftime("%Y-%m-%d %H:%M:%S"),
                gate,
                v.tags.get("gate.metric", "-"),
                _num(v.tags.get("gate.challenger")),
                _num(v.tags.get("gate.champion"))
                + (
                    f" (v{v.tags['parent.version']})"
                    if v.tags.get("parent.version", "none") != "none"
                    else ""
                ),
                _short(v.tags.get("data.digest")),
                _short(v.tags.get("git.commit"), 10),
            )
        out.print(table)


def _num(value: str | None) -> str:
    if not value:
        return "-"
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value
