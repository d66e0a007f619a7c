"""Offline checks of the Bicep under infra/ (no Bicep CLI can be installed here).

Three layers:
1. every template parses with pycep-parser 0.7.1 (and, through checkov, with its bundled pycep 0.5.1);
2. the templates are *evaluated* for dev, prod and the bare template defaults: parameters from the
   .bicepparam files flow through main.bicep into each module, so the security properties below are asserted
   on the values Azure would receive, not on the source text;
3. checkov's Bicep scan: no failed check, no parsing error (checkov exits 0 on those), every skip inline with
   a reason and still needed, and planted bad templates (public blob access, ACR admin user) do fail.

checkov lives in its own venv (tools/.venv-checkov, `make tools`); without it those tests skip, unless
AMLOPS_REQUIRE_TOOLS=1 (make test, CI), where a missing tool fails.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
FIXTURES = Path(__file__).parent / "fixtures" / "bicep"
CHECKOV = ROOT / "tools" / ".venv-checkov" / "bin" / "checkov"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
PARAM_FILES = sorted((INFRA / "env").glob("*.bicepparam"))


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- parsing --------------------------------------------------------------------------------------


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    parsed: dict[str, Any] = dict(BicepParser().parse(file_path=path))
    return parsed


@functools.cache
def parse_param_file(path: Path) -> tuple[str, dict[str, Any]]:
    """(template named by `using`, {param: expression}) of a .bicepparam file.

    pycep has no .bicepparam grammar; `param x = v` has the shape of `var x = v`, so the file is parsed as
    Bicep variables after dropping the `using` line.
    """
    text = path.read_text(encoding="utf-8")
    using = re.search(r"^using\s+'([^']+)'\s*$", text, re.MULTILINE)
    assert using, f"{_rel(path)}: no `using '<template>'` line"
    body = re.sub(r"^using\s.*$", "", text, flags=re.MULTILINE)
    body = re.sub(r"^param\s+(\w+)\s*=", r"var \1 =", body, flags=re.MULTILINE)
    parsed = BicepParser().parse(text=body)
    return using.group(1), {name: spec["value"] for name, spec in parsed.get("variables", {}).items()}


# --- a small evaluator for the pycep syntax tree --------------------------------------------------


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()  # a value only Azure knows (resource ids, outputs, uniqueString, ...)
_MISSING = object()
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_]\w*)\}")


class Scope:
    """Parameters (given values over defaults) and variables of one template, evaluated lazily.

    pycep writes identifiers and string literals alike as Python strings: a string that names a parameter,
    variable or loop item of the template is a reference, any other string a literal.
    """

    def __init__(self, template: dict[str, Any], values: dict[str, Any] | None = None) -> None:
        self.template = template
        self.values = dict(values or {})
        self._variables: dict[str, Any] = {}

    def child(self, **items: Any) -> Scope:
        scope = Scope(self.template, {**self.values, **items})
        scope._variables = self._variables
        return scope

    def lookup(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        params = self.template.get("parameters", {})
        if name in params:
            default = params[name].get("default")  # pycep writes None for "no default"
            return UNKNOWN if default is None else self.eval(default)
        variables = self.template.get("variables", {})
        if name in variables:
            if name not in self._variables:
                self._variables[name] = UNKNOWN  # guards against cycles
                self._variables[name] = self.eval(variables[name]["value"])
            return self._variables[name]
        return _MISSING

    def eval(self, node: Any) -> Any:
        if isinstance(node, str):
            found = self.lookup(node)
            if found is not _MISSING:
                return found
            return _INTERPOLATION.sub(self._interpolate, node)
        if isinstance(node, list):
            return [self.eval(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "loop_type" in node:
            return self._loop(node)
        if set(node) == {"operator"}:
            return self._operator(node["operator"])
        if set(node) == {"function"}:
            return self._function(node["function"])
        return {key.strip("'"): self.eval(value) for key, value in node.items()}

    def _interpolate(self, match: re.Match[str]) -> str:
        value = self.lookup(match.group(1))
        if value is _MISSING or value is UNKNOWN or isinstance(value, dict | list):
            return match.group(0)
        return str(value).lower() if isinstance(value, bool) else str(value)

    def _loop(self, node: dict[str, Any]) -> Any:
        detail = node["loop_type"]["detail"]
        items = self.eval(detail["array_name"])
        if not isinstance(items, list):
            return UNKNOWN
        results = []
        for index, item in enumerate(items):
            scope = self.child(**{detail["item_name"]: item, detail.get("index_name") or "_": index})
            if node.get("condition") is not None and scope.eval(node["condition"]) is False:
                continue
            results.append(scope.eval(node["config"]))
        return results

    def _operator(self, op: dict[str, Any]) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "property_accessor":
            return self._access(operands["operand_1"], operands["operand_2"])
        if kind == "conditional":
            condition = self.eval(operands["condition"])
            if condition is UNKNOWN:
                return UNKNOWN
            return self.eval(operands["true_value"] if condition else operands["false_value"])
        values = [self.eval(v) for v in operands.values()]
        if any(v is UNKNOWN for v in values):
            return UNKNOWN
        if kind == "not":
            return not values[0]
        if kind == "and":
            return all(values)
        if kind == "or":
            return any(values)
        if kind == "equals":
            return values[0] == values[1]
        if kind == "not_equals":
            return values[0] != values[1]
        if kind == "greater_than":
            return values[0] > values[1]
        if kind == "index_accessor" and isinstance(values[0], dict | list):
            try:
                return values[0][values[1]]
            except (KeyError, IndexError, TypeError):
                return UNKNOWN
        return UNKNOWN

    def _access(self, base: Any, member: Any) -> Any:
        """`a.b.c` (pycep nests it to the right: a . (b . c)). A declared resource or module stands for what
        Azure returns, an opaque non-empty value: `<symbol.path>`."""
        path: list[str] = []
        while isinstance(member, dict) and member.get("operator", {}).get("type") == "property_accessor":
            first = member["operator"]["operands"]["operand_1"]
            if not isinstance(first, str):
                return UNKNOWN
            path.append(first)
            member = member["operator"]["operands"]["operand_2"]
        if not isinstance(member, str):
            return UNKNOWN
        path.append(member)
        if isinstance(base, str) and base in self.symbols():
            return f"<{base}.{'.'.join(path)}>"
        value = self.eval(base)
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return UNKNOWN
            value = value[key]
        return value

    def symbols(self) -> set[str]:
        return set(self.template.get("resources", {})) | set(self.template.get("modules", {}))

    def _function(self, fn: dict[str, Any]) -> Any:
        name = fn["type"].replace("_", "").lower()
        args = [self.eval(v) for v in (fn.get("parameters") or {}).values() if v is not None]
        if name == "readenvironmentvariable":
            # The value a deployment sees depends on the deploying shell; its default stands for it here.
            return args[1] if len(args) > 1 else UNKNOWN
        if any(a is UNKNOWN for a in args):
            return UNKNOWN
        if name == "empty":
            return not args[0]
        if name == "concat" and all(isinstance(a, list) for a in args):
            return [x for a in args for x in a]
        if name == "union" and all(isinstance(a, dict) for a in args):
            return functools.reduce(lambda acc, a: {**acc, **a}, args, {})
        if name == "tolower" and isinstance(args[0], str):
            return args[0].lower()
        if name == "replace" and all(isinstance(a, str) for a in args):
            return args[0].replace(args[1], args[2])
        if name == "take" and isinstance(args[0], str | list):
            return args[0][: args[1]]
        if name == "join" and isinstance(args[0], list):
            return args[1].join(args[0])
        if name == "subscriptionresourceid" and all(isinstance(a, str) for a in args):
            return f"/subscriptions/<subscription>/providers/{args[0]}/{'/'.join(args[1:])}"
        if name == "resourceid" and all(isinstance(a, str) for a in args):
            path = "/".join(args[1:])
            return f"/subscriptions/<subscription>/resourceGroups/<group>/providers/{args[0]}/{path}"
        return UNKNOWN


# --- deploying the templates on paper -------------------------------------------------------------


@dataclass
class Resource:
    file: str  # path relative to the repository
    symbol: str
    type: str
    body: dict[str, Any]  # evaluated
    raw: dict[str, Any]  # as parsed, before evaluation
    looped: bool


def _unwrap(config: dict[str, Any]) -> tuple[dict[str, Any], Any, bool]:
    """(body, condition, is_loop) of a resource or module declaration."""
    condition = None
    looped = "loop_type" in config
    while "config" in config and ("condition" in config or "loop_type" in config):
        condition = config.get("condition") if config.get("condition") is not None else condition
        config = config["config"]
    return config, condition, looped


def template_resources(path: Path, values: dict[str, Any] | None = None) -> list[Resource]:
    """The resources one template would deploy with these parameter values (loops expanded when known)."""
    template = parse(path)
    scope = Scope(template, values)
    found = []
    for symbol, declaration in template.get("resources", {}).items():
        if declaration["existing"]:
            continue
        raw, condition, looped = _unwrap(declaration["config"])
        if condition is not None and scope.eval(condition) is False:
            continue
        bodies: list[Any] = [scope.eval(raw)]
        if looped:
            expanded = scope.eval(declaration["config"])
            bodies = expanded if isinstance(expanded, list) else [scope.eval(raw)]
        for body in bodies:
            found.append(Resource(_rel(path), symbol, declaration["type"], body, raw, looped))
    return found


def deploy_on_paper(values: dict[str, Any]) -> list[Resource]:
    """Every resource of main.bicep's modules, with main's parameters set to `values`."""
    main = parse(INFRA / "main.bicep")
    scope = Scope(main, values)
    resources: list[Resource] = []
    for declaration in main["modules"].values():
        body, condition, _ = _unwrap(declaration["config"])
        if condition is not None and scope.eval(condition) is False:
            continue
        module_path = INFRA / declaration["detail"]["path"]
        params = {name: scope.eval(expr) for name, expr in body["params"].items()}
        resources += template_resources(module_path, params)
    return resources


def env_values(env: str) -> dict[str, Any]:
    """main.bicep's parameters as an environment sets them (`defaults`: only the required ones)."""
    if env == "defaults":
        return {"prefix": "amlops", "env": "dev"}
    _, expressions = parse_param_file(INFRA / "env" / f"{env}.bicepparam")
    scope = Scope({})
    return {name: scope.eval(expr) for name, expr in expressions.items()}


ENVS = ["defaults", "dev", "prod"]


@functools.cache
def deployed(env: str) -> tuple[Resource, ...]:
    return tuple(deploy_on_paper(env_values(env)))


def of_type(resources: tuple[Resource, ...] | list[Resource], type_: str) -> list[Resource]:
    return [r for r in resources if r.type.lower() == type_.lower()]


# --- security properties, shared by the real templates and the planted bad ones -------------------


def storage_findings(resources: list[Resource]) -> list[str]:
    findings = []
    for r in of_type(resources, "Microsoft.Storage/storageAccounts"):
        props = r.body.get("properties", {})
        expected = {
            "allowBlobPublicAccess": False,
            "allowSharedKeyAccess": False,
            "minimumTlsVersion": "TLS1_2",
            "supportsHttpsTrafficOnly": True,
            "allowCrossTenantReplication": False,
        }
        for key, value in expected.items():
            if props.get(key) != value:
                findings.append(f"{r.file}:{r.symbol}: {key} is {props.get(key)!r}, expected {value!r}")
    for r in of_type(resources, "Microsoft.Storage/storageAccounts/blobServices"):
        props = r.body.get("properties", {})
        for policy in ("deleteRetentionPolicy", "containerDeleteRetentionPolicy"):
            if props.get(policy, {}).get("enabled") is not True:
                findings.append(f"{r.file}:{r.symbol}: {policy} (soft delete) is not enabled")
    for r in of_type(resources, "Microsoft.Storage/storageAccounts/blobServices/containers"):
        access = r.body.get("properties", {}).get("publicAccess", "None")
        if access != "None":
            findings.append(f"{r.file}:{r.symbol}: container publicAccess is {access!r}")
    return findings


def key_vault_findings(resources: list[Resource]) -> list[str]:
    findings = []
    for r in of_type(resources, "Microsoft.KeyVault/vaults"):
        props = r.body.get("properties", {})
        for key in ("enableRbacAuthorization", "enablePurgeProtection", "enableSoftDelete"):
            if props.get(key) is not True:
                findings.append(f"{r.file}:{r.symbol}: {key} is {props.get(key)!r}")
        if props.get("accessPolicies"):
            findings.append(f"{r.file}:{r.symbol}: access policies next to RBAC authorisation")
    return findings


def registry_findings(resources: list[Resource]) -> list[str]:
    findings = []
    for r in of_type(resources, "Microsoft.ContainerRegistry/registries"):
        props = r.body.get("properties", {})
        if props.get("adminUserEnabled") is not False:
            findings.append(f"{r.file}:{r.symbol}: adminUserEnabled is {props.get('adminUserEnabled')!r}")
        if props.get("anonymousPullEnabled", False) is not False:
            findings.append(f"{r.file}:{r.symbol}: anonymous pull is enabled")
        # Retention of untagged manifests is a Premium feature; AVM sends the policy only for Premium
        # (Azure/bicep-registry-modules avm/res/container-registry/registry/main.bicep).
        sku = r.body.get("sku", {}).get("name")
        if sku != "Premium" and (props.get("policies") or {}).get("retentionPolicy") is not None:
            findings.append(f"{r.file}:{r.symbol}: retentionPolicy sent to a {sku} registry (Premium only)")
    return findings


# --- what the deployed system needs to run its own jobs --------------------------------------------

# Job type -> the storage/ML roles its identity needs on the workspace's resources, kept in one place.
# Shared keys are off, so every data-plane access is by role ("Disable shared key access for your workspace's
# storage account", table "Scenarios for role assignments": Parallel Run Step needs Storage Table Data
# Contributor and Storage Queue Data Contributor on the user-assigned identity; "Model Registry and ML Flow"
# needs Storage Blob Data Contributor; MicrosoftDocs/azure-ai-docs articles/machine-learning/
# how-to-disable-local-auth-storage.md). Batch endpoint deployments run as parallel jobs on the cluster.
JOB_TYPE_ROLES: dict[str, set[str]] = {
    "command job (prep, train, evaluate, register, monitor)": {
        "Storage Blob Data Contributor",
        "AzureML Data Scientist",  # MLflow runs and model registration from inside the job
        "AcrPull",
    },
    "parallel job": {
        "Storage Blob Data Contributor",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
    },
    "batch endpoint deployment job": {
        "Storage Blob Data Contributor",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
        "AcrPull",
    },
}


def missing_job_roles(resources: list[Resource], principal: str) -> dict[str, set[str]]:
    """Job type -> the roles `principal` lacks to run it (empty when it can run every job type)."""
    held = {
        ROLES.get(_role_of(r), _role_of(r))
        for r in of_type(resources, "Microsoft.Authorization/roleAssignments")
        if r.body["properties"]["principalId"] == principal
    }
    return {job: need - held for job, need in JOB_TYPE_ROLES.items() if need - held}


# Columns of the Log Analytics tables the alert may query, as Azure documents them (learn.microsoft.com/azure/
# azure-monitor/reference/tables/amlrunstatuschangedevent and .../tables/amlcomputejobevent). Note what
# AmlRunStatusChangedEvent lacks: any experiment column.
TABLE_COLUMNS: dict[str, set[str]] = {
    "AmlRunStatusChangedEvent": {
        "_BilledSize", "CallerIpAddress", "CorrelationId", "DurationMs", "Identity", "_IsBillable", "Level",
        "Location", "Message", "OperationName", "OperationVersion", "ParentRunId", "_ResourceId",
        "ResultDescription", "ResultSignature", "ResultType", "RootRunId", "RunId", "SourceSystem", "Status",
        "_SubscriptionId", "TenantId", "TimeGenerated", "Type",
    },
    "AmlComputeJobEvent": {
        "_BilledSize", "ClusterId", "ClusterName", "ClusterResourceGroupName", "CreationApiVersion",
        "CustomerSubscriptionId", "ErrorDetails", "EventType", "ExecutionState", "ExperimentId",
        "ExperimentName", "InternalOperationName", "_IsBillable", "JobErrorMessage", "JobId", "JobName",
        "NodeId", "OperationName", "ProvisioningState", "ResourceGroupName", "_ResourceId", "ResultSignature",
        "RunInContainer", "SourceSystem", "_SubscriptionId", "TenantId", "TFParameterServerCount",
        "TFWorkerCount", "TimeGenerated", "ToolType", "Type", "WorkspaceName",
    },
}  # fmt: skip
_KQL_FILTER = re.compile(r"\b([A-Za-z_]\w*)\s*(?:==|!=|=~|!~|>=|<=|>|<|\bin\b|\bhas\b|\bcontains\b)")


def alert_tables(resources: list[Resource]) -> dict[str, str]:
    """{alert symbol: table it queries} for every log alert."""
    found = {}
    for r in of_type(resources, "Microsoft.Insights/scheduledQueryRules"):
        for criterion in r.body["properties"]["criteria"]["allOf"]:
            found[r.symbol] = criterion["query"].split("|", 1)[0].strip()
    return found


def alert_query_findings(resources: list[Resource]) -> list[str]:
    """Each column a log alert filters on must exist in its table (skipQueryValidation hides a wrong one)."""
    findings = []
    for r in of_type(resources, "Microsoft.Insights/scheduledQueryRules"):
        for criterion in r.body["properties"]["criteria"]["allOf"]:
            table, _, rest = criterion["query"].partition("|")
            table = table.strip()
            if table not in TABLE_COLUMNS:
                findings.append(f"{r.file}:{r.symbol}: table {table} has no documented columns here")
                continue
            for column in _KQL_FILTER.findall(rest):
                if column not in TABLE_COLUMNS[table] and column not in {"where", "and", "or", "not"}:
                    findings.append(f"{r.file}:{r.symbol}: {table} has no column {column}")
    return findings


BATCH_STORAGE_SUBRESOURCES = {"queue", "table"}  # besides blob and file, which AML's own rules cover


def private_workspace_findings(resources: list[Resource]) -> list[str]:
    """A workspace with a managed network reaches its storage's queue and table (batch deployments, parallel
    jobs: how-to-secure-batch-endpoint.md, "Batch deployments require all the four"), and one whose container
    registry has no public endpoint builds images on a cluster (imageBuildCompute, how-to-secure-workspace-vnet.md)."""
    findings = []
    # A deployment holds one container registry (the workspace's); whether it is private decides the build.
    registries = of_type(resources, "Microsoft.ContainerRegistry/registries")
    private_registry = len(registries) == 1 and (
        registries[0].body.get("properties", {}).get("publicNetworkAccess") == "Disabled"
    )
    clusters = {
        r.body.get("name")
        for r in of_type(resources, "Microsoft.MachineLearningServices/workspaces/computes")
    }
    for r in of_type(resources, "Microsoft.MachineLearningServices/workspaces"):
        props = r.body["properties"]
        network = props.get("managedNetwork") or {}
        if network.get("isolationMode", "Disabled") != "Disabled":
            targets = {
                rule["destination"]["subresourceTarget"]
                for rule in (network.get("outboundRules") or {}).values()
                if rule.get("type") == "PrivateEndpoint"
                and rule["destination"].get("serviceResourceId") == props.get("storageAccount")
            }
            for missing in sorted(BATCH_STORAGE_SUBRESOURCES - targets):
                findings.append(
                    f"{r.file}:{r.symbol}: no managed-network private endpoint to storage {missing}"
                )
        if private_registry and props.get("containerRegistry") and not props.get("imageBuildCompute"):
            findings.append(f"{r.file}:{r.symbol}: private container registry and no imageBuildCompute")
        elif props.get("imageBuildCompute") and clusters and props["imageBuildCompute"] not in clusters:
            findings.append(
                f"{r.file}:{r.symbol}: imageBuildCompute {props['imageBuildCompute']} is no cluster here"
            )
    return findings


def subnet_egress_findings(resources: list[Resource]) -> list[str]:
    """A subnet without default outbound access needs an explicit way out (a NAT gateway) for its runners."""
    findings = []
    for r in of_type(resources, "Microsoft.Network/virtualNetworks"):
        for subnet in r.body["properties"].get("subnets", []):
            props = subnet.get("properties", {})
            if props.get("defaultOutboundAccess") is False and not props.get("natGateway"):
                findings.append(
                    f"{r.file}:{r.symbol}: subnet {subnet['name']} has no egress (no NAT gateway)"
                )
    return findings


@pytest.fixture(params=ENVS)
def env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- 1. parsing and linter configuration ----------------------------------------------------------


def test_there_are_templates_and_parameter_files() -> None:
    names = {p.name for p in BICEP_FILES}
    assert {"main.bicep", "main.subscription.bicep"} <= names
    assert len(list((INFRA / "modules").glob("*.bicep"))) >= 8
    assert {p.stem for p in PARAM_FILES} == {"dev", "prod"}


@pytest.mark.parametrize("path", BICEP_FILES, ids=[_rel(p) for p in BICEP_FILES])
def test_template_parses_with_pycep(path: Path) -> None:
    template = parse(path)
    assert template.get("resources") or template.get("modules"), f"{_rel(path)} declares nothing"


@pytest.mark.parametrize("path", BICEP_FILES, ids=[_rel(p) for p in BICEP_FILES])
def test_every_parameter_and_output_is_described(path: Path) -> None:
    template = parse(path)
    for kind in ("parameters", "outputs"):
        for name, spec in template.get(kind, {}).items():
            described = [
                d for d in spec.get("decorators", []) if d["type"] == "description" and d["argument"]
            ]
            assert described, f"{_rel(path)}: {kind[:-1]} {name} has no @description"


def test_bicepconfig_makes_every_linter_rule_an_error() -> None:
    config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    core = config["analyzers"]["core"]
    assert core["enabled"] is True
    levels = {rule: spec["level"] for rule, spec in core["rules"].items()}
    assert {level for level in levels.values()} == {"error"}, levels
    must = {
        "no-hardcoded-location",
        "no-hardcoded-env-urls",
        "outputs-should-not-contain-secrets",
        "secure-parameter-default",
        "secure-secrets-in-params",
        "no-unused-params",
        "no-unused-vars",
        "explicit-values-for-loc-params",
        "use-stable-resource-identifiers",
    }
    assert must <= set(levels), must - set(levels)


# --- 2. parameters, outputs, secrets --------------------------------------------------------------

SECRET_NAME = re.compile(
    r"(?i)(password|secret|accountkey|connectionstring|sastoken|credential|apikey|\bkey$|keys$)"
)
SECRET_VALUE = re.compile(
    r"(?i)(AccountKey=|SharedAccessSignature|[?&]sig=|-----BEGIN|DefaultEndpointsProtocol=|client_secret|password)"
)


@pytest.mark.parametrize("path", PARAM_FILES, ids=[p.name for p in PARAM_FILES])
def test_parameter_files_set_only_known_parameters(path: Path) -> None:
    using, values = parse_param_file(path)
    assert using == "../main.bicep"
    declared = parse(INFRA / "main.bicep")["parameters"]
    assert set(values) <= set(declared), set(values) - set(declared)
    assert values["env"] == path.stem
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    assert required <= set(values), f"{path.name} leaves {required - set(values)} unset"


@pytest.mark.parametrize("path", PARAM_FILES, ids=[p.name for p in PARAM_FILES])
def test_parameter_files_hold_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not SECRET_VALUE.search(text), f"{path.name}: {SECRET_VALUE.search(text)}"
    _, values = parse_param_file(path)
    for name, expression in values.items():
        assert not SECRET_NAME.search(name), f"{path.name}: parameter {name} looks like a secret"
        # Values are literals, or read from the deploying shell's environment: only these, none secret.
        for match in re.finditer(r"readEnvironmentVariable\('([^']+)'", json.dumps(expression)):
            assert match.group(1) in {"GITHUB_REPOSITORY", "AMLOPS_ALERT_EMAIL"}, match.group(1)


@pytest.mark.parametrize("path", BICEP_FILES, ids=[_rel(p) for p in BICEP_FILES])
def test_no_secure_parameter_and_no_secret_output(path: Path) -> None:
    template = parse(path)
    for name, spec in template.get("parameters", {}).items():
        assert not any(d["type"] == "secure" for d in spec["decorators"]), (
            f"{name}: the design has no secrets"
        )
        assert not SECRET_NAME.search(name), f"{_rel(path)}: parameter {name} looks like a secret"
    for name, spec in template.get("outputs", {}).items():
        assert not SECRET_NAME.search(name), f"{_rel(path)}: output {name} looks like a secret"
        value = json.dumps(spec["value"])
        assert not re.search(
            r"(?i)list\w*\(|\"list\w*\"|getSecret|listKeys|primaryKey|connectionString", value
        ), f"{_rel(path)}: output {name} reads a key or secret"


def _defaults_by_name() -> dict[str, dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for path in BICEP_FILES:
        for name, spec in parse(path).get("parameters", {}).items():
            if spec.get("default") is not None:
                seen.setdefault(name, {})[_rel(path)] = json.dumps(spec["default"], sort_keys=True)
        for name, spec in parse(path).get("variables", {}).items():
            seen.setdefault(f"var {name}", {})[_rel(path)] = json.dumps(spec["value"], sort_keys=True)
    return seen


def test_same_named_parameters_share_their_default() -> None:
    """checkov's Bicep graph applies a parameter's default to every file that declares a parameter of that
    name, whichever file it came from (found while writing these checks). A module could then pass checkov
    on another file's secure default. Same name, same default keeps that harmless."""
    allowed_to_differ = {"location"}  # resourceGroup().location vs deployment().location; no check reads it
    for name, defaults in _defaults_by_name().items():
        if name in allowed_to_differ:
            continue
        assert len(set(defaults.values())) == 1, f"{name} has different defaults: {defaults}"


def test_subscription_entry_passes_every_parameter_through() -> None:
    main = parse(INFRA / "main.bicep")
    sub = parse(INFRA / "main.subscription.bicep")
    assert sub["globals"]["scope"]["value"] == "subscription"
    module = sub["modules"]["main"]
    assert module["detail"]["path"] == "main.bicep"
    passed = module["config"]["params"]
    for name, spec in main["parameters"].items():
        assert name in sub["parameters"], f"main.subscription.bicep lacks parameter {name}"
        twin = sub["parameters"][name]
        assert twin["type"] == spec["type"], name
        if name != "location":
            assert twin.get("default") == spec.get("default"), name
        assert passed.get(name) == name, f"main.subscription.bicep does not pass {name} through"
    assert set(sub["outputs"]) == set(main["outputs"])


def test_names_derive_from_prefix_env_and_a_unique_suffix() -> None:
    main = parse(INFRA / "main.bicep")
    suffix = json.dumps(main["variables"]["suffix"]["value"])
    for part in ("unique_string", "cleanPrefix", "env", "location"):
        assert part in suffix, f"suffix must mix {part} into uniqueString: {suffix}"
    for symbol, declaration in main["modules"].items():
        body, _, _ = _unwrap(declaration["config"])
        name = body["params"].get("name")
        if name is None:
            continue
        assert name in main["variables"], f"module {symbol}: name it through a variable of main.bicep"
        text = json.dumps(main["variables"][name]["value"])  # a string, or take(<string>, n)
        assert "${cleanPrefix}" in text or "${baseName}" in text, (symbol, text)
        assert "${env}" in text or "${baseName}" in text, (symbol, text)
        if symbol != "compute":  # a cluster name only needs to be unique inside its (unique) workspace
            assert "${suffix}" in text, (symbol, text)
    for name in ("computeIdentityName", "cicdIdentityName", "vnetName"):
        text = json.dumps(main["variables"][name]["value"])
        assert "${baseName}" in text and "${suffix}" in text, (name, text)
    # Modules that name their own resources get baseName and suffix.
    fixed_by_azure = {"Microsoft.Network/privateDnsZones"}  # the zone names are defined by each service
    for path in BICEP_FILES:
        params = parse(path).get("parameters", {})
        if "baseName" not in params:
            continue
        for r in template_resources(path):
            if "/" in r.type.split("Microsoft.", 1)[1].split("/", 1)[1] or r.type in fixed_by_azure:
                continue  # child resources are named inside their parent
            name = r.raw["name"]
            if name in params:
                continue  # named by main.bicep, checked above
            if name in parse(path).get("variables", {}):
                name = json.dumps(parse(path)["variables"][name]["value"])
            assert "${baseName}" in name and "${suffix}" in name, f"{r.file}:{r.symbol} is named {name!r}"


REGIONS = re.compile(
    r"'(east|west|north|south|central|uk|france|germany|swiss|norway|sweden|japan|korea|australia|brazil|canada"
    r"|india|uae|qatar|israel|italy|poland|spain|mexico)\w*'",
    re.IGNORECASE,
)


@pytest.mark.parametrize(
    "path", [*BICEP_FILES, *PARAM_FILES], ids=[_rel(p) for p in [*BICEP_FILES, *PARAM_FILES]]
)
def test_no_hard_coded_region(path: Path) -> None:
    assert not REGIONS.search(path.read_text(encoding="utf-8")), REGIONS.search(
        path.read_text(encoding="utf-8")
    )
    if path.suffix != ".bicep":
        return
    global_types = {
        "microsoft.insights/actiongroups",
        "microsoft.network/privatednszones",
        "microsoft.network/privatednszones/virtualnetworklinks",
    }
    for r in template_resources(path):
        if "location" not in r.raw:
            continue
        allowed = {"global"} if r.type.lower() in global_types else {"location"}
        assert r.raw["location"] in allowed, f"{r.file}:{r.symbol} location {r.raw['location']!r}"


# --- 3. security properties of what each environment deploys --------------------------------------


def test_each_environment_deploys_the_whole_design(env: str) -> None:
    types = {r.type for r in deployed(env)}
    must = {
        "Microsoft.MachineLearningServices/workspaces",
        "Microsoft.MachineLearningServices/workspaces/computes",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.KeyVault/vaults",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.Insights/components",
        "Microsoft.Insights/scheduledQueryRules",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Authorization/roleAssignments",
    }
    assert must <= types, must - types


def test_storage_key_vault_and_registry_are_locked_down(env: str) -> None:
    resources = list(deployed(env))
    assert storage_findings(resources) == []
    assert key_vault_findings(resources) == []
    assert registry_findings(resources) == []


def test_workspace_uses_identities_not_keys(env: str) -> None:
    (ws,) = of_type(deployed(env), "Microsoft.MachineLearningServices/workspaces")
    assert ws.body["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert ws.body["properties"]["systemDatastoresAuthMode"] == "identity"
    (datastore,) = of_type(deployed(env), "Microsoft.MachineLearningServices/workspaces/datastores")
    assert datastore.body["properties"]["credentials"] == {"credentialsType": "None"}
    diagnostics = of_type(deployed(env), "Microsoft.Insights/diagnosticSettings")
    categories = {log["category"] for d in diagnostics for log in d.body["properties"]["logs"]}
    # Each table the alerts query is a diagnostic category sent to Log Analytics, else it stays empty.
    assert (
        set(alert_tables(list(deployed(env))))
        and set(alert_tables(list(deployed(env))).values()) <= categories
    )


def test_cluster_scales_to_zero_and_runs_as_the_user_assigned_identity(env: str) -> None:
    (cluster,) = of_type(deployed(env), "Microsoft.MachineLearningServices/workspaces/computes")
    props = cluster.body["properties"]["properties"]
    assert props["scaleSettings"]["minNodeCount"] == 0
    assert props["remoteLoginPortPublicAccess"] == "Disabled"
    assert cluster.body["properties"]["disableLocalAuth"] is True
    assert cluster.body["identity"]["type"] == "UserAssigned"
    values = env_values(env)
    assert props["vmSize"] == values.get("computeVmSize", "Standard_DS3_v2")
    assert props["vmPriority"] == ("LowPriority" if values.get("computeLowPriority") else "Dedicated")


def test_prod_is_private_and_bigger_than_dev() -> None:
    dev, prod = env_values("dev"), env_values("prod")
    assert prod["privateNetworking"] is True and dev["privateNetworking"] is False
    assert prod["computeMaxNodes"] > dev["computeMaxNodes"]
    public_endpoints = {
        "Microsoft.Storage/storageAccounts": "publicNetworkAccess",
        "Microsoft.KeyVault/vaults": "publicNetworkAccess",
        "Microsoft.ContainerRegistry/registries": "publicNetworkAccess",
        "Microsoft.MachineLearningServices/workspaces": "publicNetworkAccess",
    }
    for type_, key in public_endpoints.items():
        (r,) = of_type(deployed("prod"), type_)
        assert r.body["properties"][key] == "Disabled", f"prod {type_}: {key}={r.body['properties'][key]!r}"
    (ws,) = of_type(deployed("prod"), "Microsoft.MachineLearningServices/workspaces")
    assert ws.body["properties"]["managedNetwork"]["isolationMode"] != "Disabled"
    (cluster,) = of_type(deployed("prod"), "Microsoft.MachineLearningServices/workspaces/computes")
    assert cluster.body["properties"]["properties"]["enableNodePublicIp"] is False
    endpoints = of_type(deployed("prod"), "Microsoft.Network/privateEndpoints")
    groups = {
        e.body["properties"]["privateLinkServiceConnections"][0]["properties"]["groupIds"][0]
        for e in endpoints
    }
    assert {"amlworkspace", "blob", "file", "vault", "registry", "amlregistry"} <= groups
    assert not of_type(deployed("dev"), "Microsoft.Network/privateEndpoints")


def test_template_defaults_are_the_secure_ones() -> None:
    """With nothing but the required parameters, every endpoint is private (dev relaxes this explicitly)."""
    for r in deployed("defaults"):
        access = r.body.get("properties", {}).get("publicNetworkAccess")
        assert access in (None, "Disabled"), f"{r.file}:{r.symbol} publicNetworkAccess={access!r}"


TAGLESS = {
    # These resource types take no tags.
    "microsoft.authorization/roleassignments",
    "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials",
    "microsoft.insights/diagnosticsettings",
    "microsoft.machinelearningservices/workspaces/datastores",
    "microsoft.storage/storageaccounts/blobservices",
    "microsoft.storage/storageaccounts/fileservices",
    "microsoft.storage/storageaccounts/blobservices/containers",
    "microsoft.network/privateendpoints/privatednszonegroups",
}


def test_every_resource_is_tagged(env: str) -> None:
    values = env_values(env)
    for r in deployed(env):
        if r.type.lower() in TAGLESS:
            continue
        tags = r.body.get("tags")
        assert isinstance(tags, dict), f"{r.file}:{r.symbol} ({r.type}) has no tags"
        assert tags.get("project") == "amlops" and tags.get("environment") == values["env"], (r.symbol, tags)
        assert tags.get("managed-by") == "bicep", (r.symbol, tags)
    sub = template_resources(INFRA / "main.subscription.bicep", {"prefix": "amlops", "env": "dev"})
    assert sub[0].body["tags"]["environment"] == "dev"


# --- identities and roles -------------------------------------------------------------------------

ROLES = {
    "f6c7c914-8db3-469d-8ca1-694a8f32e121": "AzureML Data Scientist",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "69566ab7-960f-475b-8e7c-b3118f30c6bd": "Storage File Data Privileged Contributor",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "b556d68e-0be0-4f35-a333-ad7ee1ce17ea": "Azure AI Enterprise Network Connection Approver",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "1823dd4f-9b8c-4ab6-ab4e-7397a3684615": "AzureML Registry User",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
}
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"


def _role_assignments(values: dict[str, Any]) -> list[Resource]:
    params = {
        "workspaceName": "mlw",
        "storageAccountName": "st",
        "containerRegistryName": "cr",
        "computeIdentityName": "id-compute",
        "cicdIdentityName": "id-cicd",
        **values,
    }
    return of_type(
        template_resources(INFRA / "modules" / "roles.bicep", params),
        "Microsoft.Authorization/roleAssignments",
    )


def _role_of(r: Resource) -> str:
    role = r.body["properties"]["roleDefinitionId"]
    match = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", str(role))
    assert match, r.symbol
    return match.group(0)


def test_roles_are_named_least_privilege_and_documented() -> None:
    roles_text = (INFRA / "modules" / "roles.bicep").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "infra.md").read_text(encoding="utf-8")
    header = roles_text.split("@description", 1)[0]
    for guid, name in ROLES.items():
        assert guid in header and name in header, f"roles.bicep header must name {name} ({guid}) and say why"
        assert guid in docs and name in docs, f"docs/infra.md must name {name} ({guid}) and say why"
    for path in BICEP_FILES:
        text = path.read_text(encoding="utf-8")
        assert OWNER not in text and USER_ACCESS_ADMINISTRATOR not in text, f"{_rel(path)} grants Owner/UAA"
    everything = _role_assignments(
        {
            "ciCanDeployInfra": True,
            "mlRegistryName": "reg",
            "registryUserPrincipalIds": ["dev-cicd"],
            "dataScientistPrincipalIds": ["group"],
            "workspaceReachesRegistryPrivately": True,
        }
    )
    for r in everything:
        assert _role_of(r) in ROLES, f"{r.symbol}: unexpected role {_role_of(r)}"
        assert r.body["properties"]["principalType"] in ("ServicePrincipal", "Group", "User"), r.symbol
        assert r.body["properties"].get("description"), f"{r.symbol}: say why in the assignment's description"
    by_principal: dict[str, set[str]] = {}
    for r in everything:
        by_principal.setdefault(r.body["properties"]["principalId"], set()).add(ROLES[_role_of(r)])
    assert by_principal["<computeIdentity.properties.principalId>"] == {
        "Storage Blob Data Contributor",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
        "AcrPull",
        "AzureML Data Scientist",
    }
    assert by_principal["<workspace.identity.principalId>"] == {
        "Azure AI Enterprise Network Connection Approver"
    }
    assert by_principal["<cicdIdentity.properties.principalId>"] == {
        "AzureML Data Scientist",
        "Storage Blob Data Contributor",
        "AzureML Registry User",
        "Contributor",
        "Role Based Access Control Administrator",
    }
    assert by_principal["dev-cicd"] == {"AzureML Registry User"}


def test_only_the_opt_in_deploy_roles_reach_the_resource_group() -> None:
    minimal = _role_assignments({})
    assert {ROLES[_role_of(r)] for r in minimal} == {
        "Storage Blob Data Contributor",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
        "AcrPull",
        "AzureML Data Scientist",
    }
    for r in minimal:
        assert "scope" in r.raw, f"{r.symbol} must be scoped to one resource, not the resource group"
    (admin,) = [
        r
        for r in _role_assignments({"ciCanDeployInfra": True})
        if _role_of(r) == "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
    ]
    condition = admin.body["properties"]["condition"]
    assert admin.body["properties"]["conditionVersion"] == "2.0"
    delegable = set(re.findall(r"[0-9a-f]{8}-[0-9a-f-]{27}", condition))
    assert delegable == {
        g for g, n in ROLES.items() if n not in ("Contributor", "Role Based Access Control Administrator")
    }
    assert "roleAssignments/write" in condition and "roleAssignments/delete" in condition


def test_github_federated_credentials() -> None:
    identity = INFRA / "modules" / "identity.bicep"
    base = {"computeIdentityName": "id-c", "cicdIdentityName": "id-ci", "location": "x", "tags": {}}
    none = template_resources(identity, base)
    assert not of_type(none, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials")
    trusted = template_resources(
        identity,
        {
            **base,
            "githubRepository": "contoso/amlops",
            "githubEnvironments": ["dev"],
            "githubExtraSubjects": ["repo:contoso/amlops:ref:refs/heads/main"],
        },
    )
    credentials = of_type(
        trusted, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    )
    subjects = sorted(c.body["properties"]["subject"] for c in credentials)
    assert subjects == ["repo:contoso/amlops:environment:dev", "repo:contoso/amlops:ref:refs/heads/main"]
    for c in credentials:
        assert c.body["properties"]["issuer"] == "https://token.actions.githubusercontent.com"
        assert c.body["properties"]["audiences"] == ["api://AzureADTokenExchange"]
        assert c.body["parent"] == "cicdIdentity"
    decorators = parse(identity)["resources"]["githubCredentials"]["decorators"]
    assert {"type": "batchSize", "argument": 1} in decorators  # concurrent FIC writes are rejected by Azure
    for env in ("dev", "prod"):
        assert env_values(env)["githubEnvironments"] == [env]


def test_monitor_alert_watches_failed_monitoring_runs() -> None:
    (alert,) = of_type(deployed("dev"), "Microsoft.Insights/scheduledQueryRules")
    query = alert.body["properties"]["criteria"]["allOf"][0]["query"]
    assert query.startswith("AmlComputeJobEvent |") and 'EventType == "JobFailed"' in query
    assert f'ExperimentName == "{env_values("dev")["monitorExperimentName"]}"' in query
    assert not of_type(deployed("dev"), "Microsoft.Insights/actionGroups")  # no e-mail set: no action group
    with_mail = deploy_on_paper({**env_values("dev"), "alertEmail": "ops@example.com"})
    (group,) = of_type(with_mail, "Microsoft.Insights/actionGroups")
    assert group.body["properties"]["emailReceivers"][0]["emailAddress"] == "ops@example.com"


def test_every_job_identity_holds_the_roles_its_job_types_need(env: str) -> None:
    """The compute identity runs every job the system submits (training and monitoring pipelines, batch
    deployments): it must hold what each job type of JOB_TYPE_ROLES needs."""
    assert missing_job_roles(list(deployed(env)), "<computeIdentity.properties.principalId>") == {}


def test_promotion_stages_run_with_exactly_their_roles() -> None:
    """dev's CI identity shares into the registry (its workspace + the registry); prod's copies from the registry
    into prod (the registry + its workspace and storage). The registry lives with prod, so prod's deployment grants
    dev's identity the registry role (registryUserPrincipalIds) and nothing else."""
    prod = _role_assignments({"mlRegistryName": "reg", "registryUserPrincipalIds": ["dev-cicd"]})
    dev = _role_assignments({})
    stages = {
        "share (dev identity)": (dev, prod, "dev-cicd", {("AzureML Data Scientist", "workspace")},
                                 {("AzureML Registry User", "mlRegistry")}),
        "copy (prod identity)": (prod, prod, "<cicdIdentity.properties.principalId>",
                                 {("AzureML Data Scientist", "workspace"),
                                  ("Storage Blob Data Contributor", "storage")},
                                 {("AzureML Registry User", "mlRegistry")}),
    }  # fmt: skip
    for stage, (own, registry_side, principal, own_needs, registry_needs) in stages.items():
        own_principal = "<cicdIdentity.properties.principalId>"
        held_own = {
            (ROLES[_role_of(r)], r.raw.get("scope"))
            for r in own
            if r.body["properties"]["principalId"] == own_principal
        }
        held_reg = {
            (ROLES[_role_of(r)], r.raw.get("scope"))
            for r in registry_side
            if r.body["properties"]["principalId"] == principal
        }
        assert own_needs <= held_own, (stage, own_needs - held_own)
        assert registry_needs <= held_reg, (stage, registry_needs - held_reg)
    dev_in_prod = {ROLES[_role_of(r)] for r in prod if r.body["properties"]["principalId"] == "dev-cicd"}
    assert dev_in_prod == {"AzureML Registry User"}  # nothing in prod's workspace or storage
    # The planted fault: without dev's identity in registryUserPrincipalIds the share stage has no registry role.
    unlisted = _role_assignments({"mlRegistryName": "reg"})
    assert not [r for r in unlisted if r.body["properties"]["principalId"] == "dev-cicd"]


def test_alert_queries_use_columns_their_tables_have(env: str) -> None:
    assert alert_query_findings(list(deployed(env))) == []


def test_private_workspace_reaches_queue_and_table_and_builds_images_on_the_cluster() -> None:
    assert private_workspace_findings(list(deployed("prod"))) == []
    (ws,) = of_type(deployed("prod"), "Microsoft.MachineLearningServices/workspaces")
    (cluster,) = of_type(deployed("prod"), "Microsoft.MachineLearningServices/workspaces/computes")
    assert ws.body["properties"]["imageBuildCompute"] == cluster.body["name"]
    for env in ("dev", "defaults"):
        assert private_workspace_findings(list(deployed(env))) == [], env
    (dev_ws,) = of_type(deployed("dev"), "Microsoft.MachineLearningServices/workspaces")
    assert dev_ws.body["properties"]["imageBuildCompute"] is None  # public registry: AML builds in it


def test_the_workspace_approves_its_private_endpoint_to_the_registry() -> None:
    main = parse(INFRA / "main.bicep")
    passed = _unwrap(main["modules"]["roles"]["config"])[0]["params"]
    assert passed["workspaceReachesRegistryPrivately"] == "privateNetworking"
    with_endpoint = _role_assignments({"mlRegistryName": "reg", "workspaceReachesRegistryPrivately": True})
    (approver,) = [
        r for r in with_endpoint if ROLES[_role_of(r)] == "Azure AI Enterprise Network Connection Approver"
    ]
    assert approver.raw["scope"] == "mlRegistry"
    assert approver.body["properties"]["principalId"] == "<workspace.identity.principalId>"
    without = _role_assignments({"mlRegistryName": "reg"})
    assert not [r for r in without if ROLES[_role_of(r)] == "Azure AI Enterprise Network Connection Approver"]


def test_the_runner_subnet_has_egress() -> None:
    assert subnet_egress_findings(list(deployed("prod"))) == []
    (vnet,) = of_type(deployed("prod"), "Microsoft.Network/virtualNetworks")
    clients = [s for s in vnet.body["properties"]["subnets"] if s["name"] == "snet-clients"]
    assert clients and clients[0]["properties"]["natGateway"]
    assert of_type(deployed("prod"), "Microsoft.Network/natGateways")


def test_data_scientists_may_be_users_or_groups() -> None:
    for kind in ("User", "Group"):
        people = _role_assignments({"dataScientistPrincipalIds": ["p"], "dataScientistPrincipalType": kind})
        mine = [r for r in people if r.body["properties"]["principalId"] == "p"]
        assert {r.body["properties"]["principalType"] for r in mine} == {kind}
        assert {ROLES[_role_of(r)] for r in mine} >= {
            "Storage Blob Data Contributor",
            "AzureML Data Scientist",
        }


# --- planted bad templates: the property checks can fail ------------------------------------------


def test_job_role_check_catches_missing_queue_and_table_roles() -> None:
    missing = missing_job_roles(
        template_resources(FIXTURES / "compute_roles_no_queue.bicep"), "planted-compute"
    )
    assert missing["parallel job"] == {"Storage Queue Data Contributor", "Storage Table Data Contributor"}
    assert missing["batch endpoint deployment job"] == {
        "Storage Queue Data Contributor", "Storage Table Data Contributor", "AcrPull",
    }  # fmt: skip


def test_alert_check_catches_a_column_the_table_lacks() -> None:
    findings = alert_query_findings(template_resources(FIXTURES / "alert_missing_column.bicep"))
    planted = "tests/static/fixtures/bicep/alert_missing_column.bicep:alert"
    assert findings == [f"{planted}: AmlRunStatusChangedEvent has no column ExperimentName"]


def test_private_workspace_check_catches_the_gaps() -> None:
    resources = template_resources(FIXTURES / "private_workspace_gaps.bicep")
    findings = private_workspace_findings(resources)
    assert any("storage queue" in f for f in findings), findings
    assert any("storage table" in f for f in findings), findings
    assert any("no imageBuildCompute" in f for f in findings), findings
    assert not any("storage blob" in f for f in findings)
    assert any("retentionPolicy sent to a Basic registry" in f for f in registry_findings(resources))


def test_egress_check_catches_a_runner_subnet_without_a_way_out() -> None:
    findings = subnet_egress_findings(template_resources(FIXTURES / "runner_subnet_no_egress.bicep"))
    planted = "tests/static/fixtures/bicep/runner_subnet_no_egress.bicep:vnet"
    assert findings == [f"{planted}: subnet snet-clients has no egress (no NAT gateway)"]


def test_property_checks_catch_public_blob_access() -> None:
    findings = storage_findings(template_resources(FIXTURES / "public_blob.bicep"))
    assert any("allowBlobPublicAccess is True" in f for f in findings), findings
    assert any("container publicAccess is 'Blob'" in f for f in findings), findings


def test_property_checks_catch_the_acr_admin_user() -> None:
    findings = registry_findings(template_resources(FIXTURES / "acr_admin.bicep"))
    assert any("adminUserEnabled is True" in f for f in findings), findings


# --- 4. checkov -----------------------------------------------------------------------------------

SKIP_COMMENT = re.compile(r"checkov:skip=(?P<id>[A-Z0-9_]+)(?::(?P<reason>.*))?")


def test_every_checkov_skip_is_inline_with_a_reason() -> None:
    skips = 0
    for path in BICEP_FILES:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                skips += 1
                reason = (match.group("reason") or "").strip()
                assert len(reason) >= 30, f"{_rel(path)}:{number}: skip {match.group('id')} needs a reason"
    assert skips <= 3, "each skip weakens the scan: fix the template rather than adding skips"


def _require_checkov() -> None:
    if CHECKOV.is_file():
        return
    reason = f"checkov not installed at {_rel(CHECKOV)}"
    if os.environ.get("AMLOPS_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (AMLOPS_REQUIRE_TOOLS=1: `make tools` installs it)")
    pytest.skip(f"{reason}; run `make tools`")


@dataclass
class CheckovScan:
    summary: dict[str, Any]
    results: list[dict[str, Any]]  # failed and skipped checks, each with "folder" (infra|unskipped|planted)
    parsing_errors: list[str]

    def __repr__(self) -> str:  # keeps pytest's failure reports readable
        return f"CheckovScan(summary={self.summary})"

    def of(self, folder: str, result: str) -> list[dict[str, Any]]:
        return [r for r in self.results if r["folder"] == folder and r["check_result"]["result"] == result]


@pytest.fixture(scope="module")
def checkov_scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CheckovScan]:
    """One checkov run (its start-up alone costs seconds) over three folders:
    infra/ as it is; a copy without the skip comments (each skip must still be needed); the planted templates.
    Separate -d arguments share graph state between folders in checkov 3.3, so they sit in one folder."""
    _require_checkov()
    root = tmp_path_factory.mktemp("checkov")
    shutil.copytree(INFRA, root / "infra")
    shutil.copytree(INFRA, root / "unskipped")
    for path in (root / "unskipped").rglob("*.bicep"):
        text = path.read_text(encoding="utf-8")
        path.write_text(
            "\n".join(line for line in text.splitlines() if not SKIP_COMMENT.search(line)) + "\n",
            encoding="utf-8",
        )
    shutil.copytree(FIXTURES, root / "planted")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [str(CHECKOV), "--directory", str(root), "--framework", "bicep", "--output", "json",
         "--skip-download", "--compact"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    # checkov exits 1 when a check fails (the planted templates make sure some do), 0 otherwise; parse errors
    # alone leave it at 0, which is why they are read from the report below.
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    results = []
    for result in report["results"].get("failed_checks", []) + report["results"].get("skipped_checks", []):
        result["folder"] = Path(result["file_path"]).parts[1]
        results.append(result)
    errors = [str(Path(p).relative_to(root)) for p in report["results"].get("parsing_errors", [])]
    yield CheckovScan(report["summary"], results, errors)


def test_checkov_passes_on_infra_with_no_parsing_error(checkov_scan: CheckovScan) -> None:
    failed = [(r["check_id"], r["file_path"], r["resource"]) for r in checkov_scan.of("infra", "FAILED")]
    assert failed == []
    infra_errors = [p for p in checkov_scan.parsing_errors if not p.startswith("planted/")]
    assert infra_errors == [], f"checkov could not parse {infra_errors}: it skipped them silently"


def test_checkov_skips_carry_reasons_and_are_all_needed(checkov_scan: CheckovScan) -> None:
    skipped = checkov_scan.of("infra", "SKIPPED")
    assert skipped, "expected the documented skips (CKV_AZURE_166, CKV_AZURE_243)"
    failing_without_skip = {
        (r["check_id"], r["file_path"].split("/", 2)[2]) for r in checkov_scan.of("unskipped", "FAILED")
    }
    for r in skipped:
        reason = r["check_result"].get("suppress_comment", "")
        assert reason and reason != "No comment provided" and len(reason) >= 30, r["check_id"]
        assert (r["check_id"], r["file_path"].split("/", 2)[2]) in failing_without_skip, (
            f"{r['check_id']} on {r['file_path']} passes without its skip: remove the skip"
        )


def test_checkov_fails_a_template_with_public_blob_access(checkov_scan: CheckovScan) -> None:
    failed = {
        r["check_id"]
        for r in checkov_scan.of("planted", "FAILED")
        if r["file_path"].endswith("public_blob.bicep")
    }
    assert "CKV_AZURE_34" in failed, failed  # container public access level


def test_checkov_fails_a_template_with_the_acr_admin_user(checkov_scan: CheckovScan) -> None:
    failed = {
        r["check_id"]
        for r in checkov_scan.of("planted", "FAILED")
        if r["file_path"].endswith("acr_admin.bicep")
    }
    assert "CKV_AZURE_137" in failed, failed


def test_a_checkov_parsing_error_is_detected(checkov_scan: CheckovScan) -> None:
    """The planted user-defined function is valid Bicep that checkov cannot parse: it must show up here
    (and so fail the infra test above if it ever happened in infra/), although checkov exits 0 for it."""
    assert "planted/unparsable.bicep" in checkov_scan.parsing_errors
    assert checkov_scan.summary["parsing_errors"] >= 1
