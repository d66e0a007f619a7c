"""`amlops infra what-if|deploy`: provision the Azure resources with the user's own `az` login.

The commands only wrap `az deployment ... what-if|create` (printing each exact command first); the Bicep
lives in infra/ and the command lines are built by `amlops.infra`. A deployment's outputs are written into
amlops.yaml under `azure.environments.<env>`, so `amlops run --target azure` needs no hand edits afterwards.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import typer

from amlops.console import UserError, handle_errors, info, out

_ENV = typer.Option("dev", "--env", "-e", help="Environment: the parameter file infra/env/<env>.bicepparam.")
_GROUP = typer.Option(
    None, "--resource-group", "-g", help="Target resource group (default: config, else rg-<prefix>-<env>)."
)
_LOCATION = typer.Option(None, "--location", "-l", help="Azure region (default: the resource group's).")
_SUBSCRIPTION = typer.Option(None, "--subscription", "-s", help="Subscription id or name (default: config).")
_CREATE_GROUP = typer.Option(
    False,
    "--create-group",
    help="Deploy at subscription scope and create the resource group (needs --location).",
)
_PARAMETER = typer.Option(
    None, "--parameter", "-p", help="Override a template parameter, NAME=VALUE (repeatable)."
)
_INFRA_DIR = typer.Option(
    None, "--infra-dir", help="Folder with main.bicep (default: infra/ next to the config)."
)
_DRY_RUN = typer.Option(False, "--dry-run", help="Print the az commands without running them.")
_SUMMARY = typer.Option(
    None, "--summary", help="Append the result as Markdown to this file (e.g. $GITHUB_STEP_SUMMARY)."
)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Provision Azure (Bicep in infra/) with your az login: what-if, then deploy.",
        no_args_is_help=True,
    )

    @group.command("what-if")
    @handle_errors
    def what_if(
        env: str = _ENV,
        resource_group: str | None = _GROUP,
        location: str | None = _LOCATION,
        subscription: str | None = _SUBSCRIPTION,
        create_group: bool = _CREATE_GROUP,
        parameter: list[str] | None = _PARAMETER,
        infra_dir: Path | None = _INFRA_DIR,
        dry_run: bool = _DRY_RUN,
        summary: Path | None = _SUMMARY,
    ) -> None:
        """Show what a deployment would change, without changing anything."""
        _run(
            "what-if",
            env=env,
            resource_group=resource_group,
            location=location,
            subscription=subscription,
            create_group=create_group,
            parameters=parameter,
            infra_dir=infra_dir,
            dry_run=dry_run,
            summary=summary,
            write_config=False,
        )

    @group.command("deploy")
    @handle_errors
    def deploy(
        env: str = _ENV,
        resource_group: str | None = _GROUP,
        location: str | None = _LOCATION,
        subscription: str | None = _SUBSCRIPTION,
        create_group: bool = _CREATE_GROUP,
        parameter: list[str] | None = _PARAMETER,
        infra_dir: Path | None = _INFRA_DIR,
        dry_run: bool = _DRY_RUN,
        summary: Path | None = _SUMMARY,
        write_config: bool = typer.Option(
            True, "--write-config/--no-write-config", help="Write the outputs into amlops.yaml."
        ),
    ) -> None:
        """Deploy (create or update) the environment, then record its outputs in amlops.yaml."""
        _run(
            "deploy",
            env=env,
            resource_group=resource_group,
            location=location,
            subscription=subscription,
            create_group=create_group,
            parameters=parameter,
            infra_dir=infra_dir,
            dry_run=dry_run,
            summary=summary,
            write_config=write_config,
        )

    app.add_typer(group, name="infra")


def _run(
    action: str,
    *,
    env: str,
    resource_group: str | None,
    location: str | None,
    subscription: str | None,
    create_group: bool,
    parameters: list[str] | None,
    infra_dir: Path | None,
    dry_run: bool,
    summary: Path | None,
    write_config: bool,
) -> None:
    from amlops import infra
    from amlops.config import CONFIG_FILE_NAME, ConfigError, load_settings

    settings = load_settings()
    folder = (infra_dir or settings.path("infra")).resolve()
    try:
        param_file = infra.param_file_for(folder, env)
    except infra.InfraError as exc:
        raise UserError(str(exc)) from None
    try:
        target = settings.azure_for(env)
    except ConfigError:
        target = settings.azure  # first deployment of this environment: nothing recorded yet
    group_name = resource_group or target.resource_group or infra.default_resource_group(param_file, env)
    if not group_name:
        raise UserError(f"no resource group for {env!r}: pass --resource-group")

    with tempfile.TemporaryDirectory(prefix="amlops-infra-") as work:
        request = infra.DeployRequest(
            action="deploy" if action == "deploy" else "what-if",
            env=env,
            infra_dir=folder,
            resource_group=group_name,
            location=location,
            subscription=subscription or target.subscription_id,
            create_group=create_group,
            parameters=tuple(parameters or ()),
            # A dry run prints paths that outlive this process.
            work_dir=Path(tempfile.gettempdir()) if dry_run else Path(work),
        )
        try:
            infra.check_request(request)
        except infra.InfraError as exc:
            raise UserError(str(exc)) from None
        commands = infra.build_commands(request)
        if dry_run:
            for command in commands:
                out.print(shlex.join(command), markup=False, soft_wrap=True)
            return

        if shutil.which("az") is None:
            raise UserError(
                f"the Azure CLI (az) is not on PATH: install it ({infra.AZ_INSTALL_HINT}) and run az login"
            )
        check = subprocess.run(infra.bicep_check_command(), capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise UserError(
                "az cannot compile Bicep: run `az bicep install` (or `az bicep upgrade`) and retry"
            )

        last = len(commands) - 1
        captured = ""
        for i, command in enumerate(commands):
            info(f"$ {shlex.join(command)}")
            # The last command's stdout is kept: the deployment JSON (outputs) or the what-if report. stderr
            # stays on the terminal (az progress and warnings).
            capture = i == last and (action == "deploy" or summary is not None)
            done = subprocess.run(
                command, stdout=subprocess.PIPE if capture else None, text=True, check=False
            )
            if capture and action == "what-if":
                sys.stdout.write(done.stdout or "")
            if done.returncode != 0:
                raise UserError(f"az exited with code {done.returncode} (its message is above)")
            if capture:
                captured = done.stdout or ""

    if action == "what-if":
        if summary is not None:
            _append(summary, infra.what_if_markdown(env, commands[-1], captured))
        return
    try:
        outputs = infra.parse_deployment_outputs(captured)
        values = infra.settings_from_outputs(outputs)
    except infra.InfraError as exc:
        raise UserError(str(exc)) from None
    if summary is not None:
        _append(summary, infra.outputs_markdown(env, outputs))
    info(f"deployed {env}: workspace {values['workspace']} in {values['resource_group']}")
    if not write_config:
        for key, value in values.items():
            info(f"  azure.environments.{env}.{key}: {value}")
        return
    config_file = settings.source or (settings.base_dir / CONFIG_FILE_NAME)
    try:
        changes = infra.update_config_file(config_file, env, values)
    except infra.InfraError as exc:
        raise UserError(f"{config_file}: {exc}") from None
    if not changes:
        info(f"{config_file}: azure.environments.{env} already up to date")
    for change in changes:
        info(f"{config_file}: {change.describe()}")


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
