"""`amlops infra`: the az command lines, the deployment outputs, and the amlops.yaml update.

No real `az` is used: the CLI tests put a small fake `az` on PATH that records its arguments and answers like
the real one (a deployment's JSON, a what-if report, a failure), so what amlops sends and how it reacts are
both checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from amlops import infra
from amlops.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"

OUTPUTS = {
    "subscriptionId": {"type": "String", "value": "00000000-1111-2222-3333-444444444444"},
    "tenantId": {"type": "String", "value": "55555555-6666-7777-8888-999999999999"},
    "resourceGroupName": {"type": "String", "value": "rg-amlops-dev"},
    "location": {"type": "String", "value": "westeurope"},
    "workspaceName": {"type": "String", "value": "mlw-amlops-dev-abc123"},
    "computeName": {"type": "String", "value": "cpu-amlops-dev"},
    "mlRegistryName": {"type": "String", "value": ""},
    "cicdIdentityClientId": {"type": "String", "value": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"},
    "githubSubjects": {"type": "Array", "value": ["repo:contoso/amlops:environment:dev"]},
}
DEPLOYMENT = {
    "id": "/subscriptions/x/deployments/amlops-dev",
    "properties": {"provisioningState": "Succeeded", "outputs": OUTPUTS},
}

CONFIG = """\
# amlops project configuration (comments must survive)
experiment: amlops-demand          # MLflow experiment

azure:                             # filled by `amlops infra deploy`
  subscription_id: null
  workspace: null
  environments: {}

train:
  seed: 7   # reproducible
"""


def request(**overrides: object) -> infra.DeployRequest:
    values: dict[str, object] = {
        "action": "what-if",
        "env": "dev",
        "infra_dir": INFRA,
        "resource_group": "rg-x",
    }
    values.update(overrides)
    return infra.DeployRequest(**values)  # type: ignore[arg-type]


# --- command lines --------------------------------------------------------------------------------


def test_what_if_is_one_resource_group_command_with_the_env_parameter_file() -> None:
    (command,) = infra.build_commands(request())
    assert command == [
        "az", "deployment", "group", "what-if",
        "--name", "amlops-dev",
        "--resource-group", "rg-x",
        "--template-file", str(INFRA / "main.bicep"),
        "--parameters", str(INFRA / "env" / "dev.bicepparam"),
    ]  # fmt: skip


def test_deploy_asks_for_json_and_passes_overrides_in_order() -> None:
    req = request(
        action="deploy", location="westeurope", subscription="sub-1",
        parameters=("alertEmail=ops@example.com", "computeMaxNodes=3"),
    )  # fmt: skip
    (command,) = infra.build_commands(req)
    assert command[:4] == ["az", "deployment", "group", "create"]
    tail = command[command.index(str(INFRA / "env" / "dev.bicepparam")) + 1 :]
    assert tail == [
        "--parameters", "location=westeurope",
        "--parameters", "alertEmail=ops@example.com",
        "--parameters", "computeMaxNodes=3",
        "--subscription", "sub-1",
        "--output", "json",
    ]  # fmt: skip


def test_create_group_compiles_the_parameters_then_deploys_at_subscription_scope(tmp_path: Path) -> None:
    req = request(action="deploy", env="prod", create_group=True, location="westeurope", work_dir=tmp_path)
    build, deploy = infra.build_commands(req)
    params_json = tmp_path / "prod.parameters.json"
    assert build == [
        "az",
        "bicep",
        "build-params",
        "--file",
        str(INFRA / "env" / "prod.bicepparam"),
        "--outfile",
        str(params_json),
    ]
    assert deploy[:4] == ["az", "deployment", "sub", "create"]
    assert deploy[deploy.index("--location") + 1] == "westeurope"
    assert deploy[deploy.index("--template-file") + 1] == str(INFRA / "main.subscription.bicep")
    assert ["--parameters", f"@{params_json}", "--parameters", "resourceGroupName=rg-x"] == deploy[10:14]
    assert deploy[-2:] == ["--output", "json"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env": "staging"}, "no parameter file for environment 'staging' (available: dev, prod)"),
        ({"create_group": True}, "needs --location"),
        ({"parameters": ("computeMaxNodes",)}, "--parameter 'computeMaxNodes': expected NAME=VALUE"),
        ({"infra_dir": ROOT / "docs"}, "main.bicep: template not found"),
    ],
)
def test_bad_requests_fail_with_one_line(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(infra.InfraError) as info:
        infra.check_request(request(**overrides))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_default_resource_group_follows_the_parameter_file_prefix(tmp_path: Path) -> None:
    assert infra.default_resource_group(INFRA / "env" / "dev.bicepparam", "dev") == "rg-amlops-dev"
    other = tmp_path / "x.bicepparam"
    other.write_text("using '../main.bicep'\nparam prefix = 'Churn'\n")
    assert infra.default_resource_group(other, "prod") == "rg-churn-prod"
    other.write_text("using '../main.bicep'\n")
    assert infra.default_resource_group(other, "prod") is None


# --- deployment outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["deployment", "properties", "outputs"])
def test_outputs_are_read_from_any_az_shape(shape: str) -> None:
    doc = {"deployment": DEPLOYMENT, "properties": DEPLOYMENT["properties"], "outputs": OUTPUTS}[shape]
    outputs = infra.parse_deployment_outputs(json.dumps(doc))
    assert outputs["workspaceName"] == "mlw-amlops-dev-abc123"
    assert outputs["githubSubjects"] == ["repo:contoso/amlops:environment:dev"]


def test_outputs_become_the_environment_settings() -> None:
    values = infra.settings_from_outputs(infra.parse_deployment_outputs(json.dumps(DEPLOYMENT)))
    assert values == {
        "subscription_id": "00000000-1111-2222-3333-444444444444",
        "resource_group": "rg-amlops-dev",
        "workspace": "mlw-amlops-dev-abc123",
        "location": "westeurope",
        "compute": "cpu-amlops-dev",
    }  # no registry: this deployment has none, and an empty value must not erase one set by hand
    lower_first = {
        k[0].lower() + k[1:]: v for k, v in {"WorkspaceName": "w", "ResourceGroupName": "g"}.items()
    }
    assert infra.settings_from_outputs({k.upper(): v for k, v in lower_first.items()}) == {
        "workspace": "w",
        "resource_group": "g",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "deployment output is not JSON"),
        ("[]", "not a JSON object"),
        ('{"outputs": {"workspaceName": {"type": "String"}}}', "output 'workspaceName' has no value"),
        ('{"outputs": {"computeName": {"value": "c"}}}', "lack workspace, resource_group"),
        ('{"outputs": {"workspaceName": {"value": 3}, "resourceGroupName": {"value": "g"}}}', "not a string"),
    ],
)
def test_bad_outputs_fail_with_one_line(text: str, message: str) -> None:
    with pytest.raises(infra.InfraError) as info:
        infra.settings_from_outputs(infra.parse_deployment_outputs(text))
    assert message in str(info.value)


def test_summaries_are_markdown_without_terminal_colours() -> None:
    text = infra.what_if_markdown(
        "dev", ["az", "deployment", "group", "what-if"], "\x1b[32m+ Create\x1b[0m\n"
    )
    assert "### amlops infra what-if: dev" in text and "+ Create" in text and "\x1b" not in text
    table = infra.outputs_markdown("dev", {"workspaceName": "w", "githubSubjects": ["s"]})
    assert "| `workspaceName` | `w` |" in table and '| `githubSubjects` | `["s"]` |' in table


# --- config update --------------------------------------------------------------------------------

VALUES = {
    "workspace": "mlw-amlops-dev-abc123",
    "resource_group": "rg-amlops-dev",
    "compute": "cpu-amlops-dev",
}


def test_config_update_keeps_comments_and_every_other_key() -> None:
    new, changes = infra.update_config_text(CONFIG, "dev", VALUES)
    for line in CONFIG.splitlines():
        if "environments" not in line:
            assert line in new.splitlines(), f"lost: {line!r}"
    data = yaml.safe_load(new)
    assert data["azure"]["environments"] == {"dev": VALUES}
    assert data["train"] == {"seed": 7} and data["experiment"] == "amlops-demand"
    assert [c.describe() for c in changes] == [
        f"azure.environments.dev.{k}: (unset) -> {v}" for k, v in VALUES.items()
    ]


def test_config_update_replaces_values_in_place_and_is_idempotent() -> None:
    text = CONFIG.replace(
        "  environments: {}\n",
        "  environments:\n    prod:\n      workspace: mlw-prod\n"
        "    dev:\n      workspace: old   # set by hand\n",
    )
    new, changes = infra.update_config_text(text, "dev", VALUES)
    assert "      workspace: mlw-amlops-dev-abc123   # set by hand" in new.splitlines()
    assert yaml.safe_load(new)["azure"]["environments"]["prod"] == {"workspace": "mlw-prod"}
    assert changes[0].describe() == "azure.environments.dev.workspace: old -> mlw-amlops-dev-abc123"
    again, no_changes = infra.update_config_text(new, "dev", VALUES)
    assert again == new and no_changes == []


def test_config_update_creates_what_is_missing() -> None:
    new, _ = infra.update_config_text("", "prod", {"workspace": "w"})
    assert yaml.safe_load(new) == {"azure": {"environments": {"prod": {"workspace": "w"}}}}
    four = "azure:\n    workspace: base\n# trailing comment\n"
    new, _ = infra.update_config_text(four, "dev", {"workspace": "w", "location": "westeurope"})
    assert new.endswith("# trailing comment\n")
    expected = {"workspace": "base", "environments": {"dev": {"workspace": "w", "location": "westeurope"}}}
    assert yaml.safe_load(new)["azure"] == expected


def test_values_that_yaml_would_misread_are_quoted() -> None:
    new, _ = infra.update_config_text("", "dev", {"workspace": "true", "compute": "1e3", "location": "a: b"})
    expected = {"workspace": "true", "compute": "1e3", "location": "a: b"}
    assert yaml.safe_load(new)["azure"]["environments"]["dev"] == expected


def test_inline_mappings_are_refused_rather_than_rewritten() -> None:
    with pytest.raises(infra.InfraError, match="written inline"):
        infra.update_config_text("azure: {workspace: w}\n", "dev", VALUES)


def test_the_project_config_takes_the_outputs(tmp_path: Path) -> None:
    original = (ROOT / "amlops.yaml").read_text(encoding="utf-8")
    path = tmp_path / "amlops.yaml"
    path.write_text(original, encoding="utf-8")
    changes = infra.update_config_file(path, "dev", VALUES)
    assert len(changes) == 3
    new = path.read_text(encoding="utf-8")
    comments = [line for line in original.splitlines() if line.lstrip().startswith("#") or " # " in line]
    assert all(line in new.splitlines() for line in comments if "environments" not in line)
    target = load_settings(path, environ={}).azure_for("dev")
    assert target.workspace == VALUES["workspace"]
    assert target.resource_group == VALUES["resource_group"]
    assert target.compute == VALUES["compute"]


# --- the command, with a fake az on PATH ----------------------------------------------------------

FAKE_AZ = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["bicep", "version"]:
    if os.environ.get("FAKE_AZ_NO_BICEP"):
        sys.stderr.write("Bicep CLI not found. Install it now by running \\"az bicep install\\".\\n")
        sys.exit(1)
    print("Bicep CLI version 0.30.23")
    sys.exit(0)
if args[:2] == ["bicep", "build-params"]:
    out = args[args.index("--outfile") + 1]
    with open(out, "w") as f:
        json.dump({{"parameters": {{}}}}, f)
    sys.exit(0)
if os.environ.get("FAKE_AZ_FAIL"):
    sys.stderr.write("ERROR: (AuthorizationFailed) no access\\n")
    sys.exit(3)
if "what-if" in args:
    print("\\x1b[32m+ Create\\x1b[0m Microsoft.MachineLearningServices/workspaces/mlw-amlops-dev")
    sys.exit(0)
if "create" in args:
    print(os.environ["FAKE_AZ_OUTPUT"])
    sys.exit(0)
sys.exit(2)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "amlops.yaml").write_text(CONFIG, encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable), encoding="utf-8")
    az.chmod(0o755)
    return tmp_path


def amlops(
    project: Path, *args: str, path: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AMLOPS_")}
    environ.update(
        PATH=str(project / "bin") if path is None else path,
        FAKE_AZ_LOG=str(project / "az.log"),
        FAKE_AZ_OUTPUT=json.dumps(DEPLOYMENT),
        COLUMNS="400",
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "amlops.cli", "infra", *args, "--infra-dir", str(INFRA)],
        capture_output=True, text=True, cwd=project, env=environ, timeout=120, check=False,
    )  # fmt: skip


def az_calls(project: Path) -> list[list[str]]:
    log = project / "az.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_deploy_runs_az_prints_the_command_and_records_the_outputs(project: Path) -> None:
    proc = amlops(project, "deploy", "--env", "dev")
    assert proc.returncode == 0, proc.stderr
    calls = az_calls(project)
    assert calls[0] == ["bicep", "version"]
    assert calls[1][:3] == ["deployment", "group", "create"] and calls[1][-2:] == ["--output", "json"]
    assert calls[1][calls[1].index("--resource-group") + 1] == "rg-amlops-dev"  # default rg-<prefix>-<env>
    assert "$ az deployment group create --name amlops-dev --resource-group rg-amlops-dev" in proc.stdout
    assert "amlops.yaml: azure.environments.dev.workspace: (unset) -> mlw-amlops-dev-abc123" in proc.stdout
    text = (project / "amlops.yaml").read_text()
    assert (
        "# amlops project configuration (comments must survive)" in text
        and "seed: 7   # reproducible" in text
    )
    settings = load_settings(project / "amlops.yaml", environ={})
    assert settings.azure_for("dev").workspace == "mlw-amlops-dev-abc123"
    assert settings.azure_for("dev").compute == "cpu-amlops-dev"
    # A second deployment targets the recorded group and changes nothing.
    again = amlops(project, "deploy", "--env", "dev")
    assert again.returncode == 0 and "already up to date" in again.stdout
    assert (project / "amlops.yaml").read_text() == text


def test_what_if_writes_the_job_summary_and_leaves_the_config_alone(project: Path) -> None:
    summary = project / "summary.md"
    proc = amlops(project, "what-if", "--env", "prod", "-g", "rg-p", "--summary", str(summary))
    assert proc.returncode == 0, proc.stderr
    assert az_calls(project)[1][:3] == ["deployment", "group", "what-if"]
    assert "+ Create" in proc.stdout
    report = summary.read_text()
    assert "### amlops infra what-if: prod" in report and "--resource-group rg-p" in report
    assert "+ Create Microsoft.MachineLearningServices" in report and "\x1b" not in report
    assert (project / "amlops.yaml").read_text() == CONFIG


def test_create_group_compiles_parameters_and_deploys_at_subscription_scope(project: Path) -> None:
    proc = amlops(project, "deploy", "--env", "prod", "--create-group", "--location", "westeurope")
    assert proc.returncode == 0, proc.stderr
    calls = az_calls(project)
    assert [c[:3] for c in calls[1:]] == [
        ["bicep", "build-params", "--file"],
        ["deployment", "sub", "create"],
    ]
    assert "azure.environments.prod.workspace" in proc.stdout


def test_dry_run_prints_the_commands_and_runs_nothing(project: Path) -> None:
    proc = amlops(
        project, "deploy", "--env", "dev", "--dry-run", "-p", "computeMaxNodes=3", path="/nonexistent"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("az deployment group create --name amlops-dev")
    assert "--parameters computeMaxNodes=3" in proc.stdout
    assert az_calls(project) == []


def test_missing_az_is_one_clear_line(project: Path) -> None:
    proc = amlops(project, "deploy", "--env", "dev", path="/nonexistent")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: the Azure CLI (az) is not on PATH: install it "
        "(https://learn.microsoft.com/cli/azure/install-azure-cli) and run az login"
    ]


def test_missing_bicep_is_one_clear_line(project: Path) -> None:
    proc = amlops(project, "what-if", "--env", "dev", FAKE_AZ_NO_BICEP="1")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: az cannot compile Bicep: run `az bicep install` (or `az bicep upgrade`) and retry"
    ]
    assert az_calls(project) == [["bicep", "version"]]


def test_a_failed_deployment_stops_before_touching_the_config(project: Path) -> None:
    proc = amlops(project, "deploy", "--env", "dev", FAKE_AZ_FAIL="1")
    assert proc.returncode == 1
    assert "ERROR: (AuthorizationFailed) no access" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: az exited with code 3 (its message is above)"
    assert (project / "amlops.yaml").read_text() == CONFIG


def test_unknown_environment_names_the_known_ones(project: Path) -> None:
    proc = amlops(project, "deploy", "--env", "staging")
    assert proc.returncode == 1
    assert "no parameter file for environment 'staging' (available: dev, prod)" in proc.stderr
    assert textwrap.dedent(proc.stderr).count("\n") == 1
