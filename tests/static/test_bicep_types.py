"""Type check of infra/ against Bicep's own type data (tools/bicep_typecheck.py), and proof it can fail.

The checker resolves each resource's `type@apiVersion` in the type data `bicep build` uses
(Azure/bicep-types-az) and reports unknown and read-only properties, values outside the allowed ones, missing
required properties, missing type data, and module parameters the module does not declare or needs.
Each planted fixture under fixtures/bicep_types/ must produce exactly its findings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
FIXTURES = Path(__file__).parent / "fixtures" / "bicep_types"
sys.path.insert(0, str(TOOLS))

import bicep_typecheck as typecheck  # noqa: E402


def _findings(path: Path, roots: list[Path] | None = None) -> list[str]:
    """Findings as `<file name>:<line>: <message>`, for fixtures checked against the vendored data only."""
    report = typecheck.check([path], roots=roots if roots is not None else [typecheck.VENDORED])
    return [f"{f.path.name}:{f.line}: {f.message}" for f in report.findings]


# --- infra/ -----------------------------------------------------------------------------------------


def test_infra_has_no_type_findings() -> None:
    report = typecheck.check([typecheck.INFRA], known=typecheck.known_findings())
    print(report.summary())
    assert [str(f) for f in report.findings] == []
    assert report.stale == [], "fixed defects are still listed in tools/bicep_types/known_findings.txt"
    # Coverage stays visible and cannot silently collapse (e.g. a parser change that finds no resources).
    assert report.resources >= 40 and report.modules >= 10
    assert report.properties >= 400
    assert report.checked > 10 * report.skipped


def test_vendored_types_cover_infra() -> None:
    """make test and make lint must not depend on ../shared: every type infra/ uses is in the repo's copy."""
    report = typecheck.check([typecheck.INFRA], roots=[typecheck.VENDORED], known=typecheck.known_findings())
    missing = [str(f) for f in report.findings if "no type data" in f.message]
    assert missing == [], "run `python tools/bicep_typecheck.py --vendor` (see tools/bicep_types/README.md)"


def test_vendored_types_are_a_fresh_prune(tmp_path: Path) -> None:
    """tools/bicep_types/data is exactly what --vendor makes from the full data (no hand edits, nothing stale)."""
    shared = typecheck.shared_types_dir()
    if not shared.is_dir():
        pytest.skip(f"no full type data at {shared} (set AMLOPS_BICEP_TYPES)")
    missing = typecheck.vendor(typecheck.bicep_files([typecheck.INFRA]), shared, tmp_path)
    assert missing == []
    fresh = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("types.json")}
    vendored = {
        p.relative_to(typecheck.VENDORED): p.read_text() for p in typecheck.VENDORED.rglob("types.json")
    }
    assert sorted(vendored) == sorted(fresh), "run `python tools/bicep_typecheck.py --vendor`"
    assert all(vendored[name] == fresh[name] for name in fresh), (
        "run `python tools/bicep_typecheck.py --vendor`"
    )


def test_pruned_types_check_like_the_full_ones() -> None:
    shared = typecheck.shared_types_dir()
    if not shared.is_dir():
        pytest.skip(f"no full type data at {shared} (set AMLOPS_BICEP_TYPES)")
    pruned = typecheck.check([typecheck.INFRA, FIXTURES], roots=[typecheck.VENDORED])
    full = typecheck.check([typecheck.INFRA, FIXTURES], roots=[shared])
    assert [str(f) for f in pruned.findings] == [str(f) for f in full.findings]
    assert (pruned.properties, pruned.checked, pruned.skipped) == (
        full.properties,
        full.checked,
        full.skipped,
    )


def test_make_lint_command_passes_on_infra() -> None:
    """The Makefile's lint line: exit 0 and the counts printed."""
    done = subprocess.run(
        [sys.executable, str(TOOLS / "bicep_typecheck.py")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "properties checked" in done.stdout and "expression values skipped" in done.stdout


def test_command_fails_on_a_planted_fault() -> None:
    done = subprocess.run(
        [sys.executable, str(TOOLS / "bicep_typecheck.py"), str(FIXTURES / "wrong_enum.bicep")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "wrong_enum.bicep:10: properties.accessTier: 'Archive' is not allowed" in done.stdout


# --- planted faults ---------------------------------------------------------------------------------


PLANTED = {
    "misspelled_property.bicep": [
        "misspelled_property.bicep:15: properties.subnets[].properties.adressPrefix: unknown property "
        "'adressPrefix'; did you mean 'addressPrefix'? [BCP037]"
    ],
    "read_only.bicep": [
        "read_only.bicep:10: properties.provisioningState: read-only property: "
        "Azure sets it, a template cannot [BCP073]"
    ],
    "wrong_enum.bicep": [
        "wrong_enum.bicep:10: properties.accessTier: 'Archive' is not allowed: "
        "expected one of ['Hot', 'Cool', 'Premium', 'Cold'] [BCP036]"
    ],
    "missing_required.bicep": [
        "missing_required.bicep:4: properties: required property 'principalId' is missing [BCP035]"
    ],
}


@pytest.mark.parametrize("fixture", sorted(PLANTED))
def test_planted_fault_is_found(fixture: str) -> None:
    assert _findings(FIXTURES / fixture) == PLANTED[fixture]


def test_planted_faults_are_their_only_fault(tmp_path: Path) -> None:
    """Each fixture is otherwise valid: without the planted line it has no finding, so the finding above is
    the planted fault and not noise."""
    repairs = {
        "misspelled_property.bicep": ("adressPrefix", "addressPrefix"),
        "read_only.bicep": ("provisioningState: 'Succeeded'", "allowBlobPublicAccess: false"),
        "wrong_enum.bicep": ("'Archive'", "'Cool'"),
        "missing_required.bicep": ("principalType:", "principalId: 'x'\n    principalType:"),
    }
    for name, (fault, repair) in repairs.items():
        repaired = tmp_path / name
        repaired.write_text((FIXTURES / name).read_text().replace(fault, repair))
        assert _findings(repaired) == [], name


def test_nested_child_resources_are_checked() -> None:
    report = typecheck.check([FIXTURES / "nested_child.bicep"], roots=[typecheck.VENDORED])
    assert report.resources == 3
    assert [f"{f.line}: {f.message}" for f in report.findings] == [
        "19: properties.shareDeleteRetentionPolicy.enabled: 'yes' is not allowed: expected a bool [BCP036]"
    ]


def test_module_parameters_are_checked() -> None:
    assert _findings(FIXTURES / "module_params" / "main.bicep") == [
        "main.bicep:5: module child: params: required property 'name' is missing [BCP035]",
        "main.bicep:6: module child: params.locaton: unknown property 'locaton'; did you mean 'location'? [BCP037]",
        "main.bicep:7: module child: params.sku: 'Gold' is not allowed: expected one of ['Basic', 'Premium'] [BCP036]",
    ]


def test_expressions_are_followed_where_their_type_is_known() -> None:
    """Literal variables, @allowed parameters, both branches of a conditional (pycep's `?:` precedence
    undone), a variable selecting a discriminated object's shape."""
    assert _findings(FIXTURES / "expressions.bicep") == [
        "expressions.bicep:16: properties.deleteRetentionPolicy.day: unknown property 'day'; "
        "did you mean 'days'? (through blobProperties) [BCP037]",
        "expressions.bicep:21: properties.containerDeleteRetentionPolicy.days: 'seven' is not allowed: "
        "expected an int in [1, 365] (through blobProperties) [BCP036]",
        "expressions.bicep:33: properties.accessTier: parameter tier allows 'Archive' (line 6), not allowed here: "
        "expected one of ['Hot', 'Cool', 'Premium', 'Cold'] [BCP036]",
        "expressions.bicep:34: properties.allowBlobPublicAccess: 'no' is not allowed: expected a bool [BCP036]",
        "expressions.bicep:54: properties.computeType: 'AmlComput' is not allowed: expected one of ['AKS', "
        "'AmlCompute', 'ComputeInstance', 'DataFactory', 'DataLakeAnalytics', 'Databricks', 'HDInsight', "
        "'Kubernetes', 'SynapseSpark', 'VirtualMachine']; did you mean 'AmlCompute'? [BCP036]",
    ]


def test_unknown_expressions_are_skipped_and_counted() -> None:
    report = typecheck.check([FIXTURES / "expressions.bicep"], roots=[typecheck.VENDORED])
    # `resourceGroup().location`: a function's member, whose type this checker does not know.
    assert [(f.line, f.message) for f in report.skipped_at] == [(27, "location: expression")]
    assert report.skipped == 1
    assert "1 expression values skipped" in report.summary()


def test_missing_type_data_names_the_file_to_add() -> None:
    [finding] = _findings(FIXTURES / "missing_type.bicep")
    assert finding.startswith(
        "missing_type.bicep:2: resource nat: no type data for Microsoft.Network/natGateways@2099-01-01"
    )
    assert "add generated/(network or privatedns)/microsoft.network/2099-01-01/types.json" in finding
    assert "Azure/bicep-types-az" in finding and "--vendor" in finding


def test_known_findings_must_still_be_found() -> None:
    """An entry of known_findings.txt whose defect was fixed fails the check until it is removed."""
    report = typecheck.check([FIXTURES / "wrong_enum.bicep"], roots=[typecheck.VENDORED])
    [finding] = report.findings
    report.apply_known([finding.key, "tests/static/fixtures/bicep_types/wrong_enum.bicep: gone: fixed"])
    assert report.findings == [] and report.known == [finding]
    assert report.stale == ["tests/static/fixtures/bicep_types/wrong_enum.bicep: gone: fixed"]
    assert report.failed
