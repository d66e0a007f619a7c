"""Offline type check of Bicep templates against Bicep's own resource type data.

No Bicep CLI can run here (DESIGN.md §9), so this does the part of `bicep build` that checks resource bodies
against their types (what it warns about may fail at deployment, or be dropped silently): for every
`resource` in the given files it looks up `type@apiVersion` in the type data of Azure/bicep-types-az (the
`types.json` files `bicep build` itself loads) and reports, with file and line,

- properties the type does not have, at any depth of literal objects and arrays;
- assignments to read-only properties;
- literals of the wrong kind, or strings outside a closed set of allowed values;
- required properties left out;
- resource types or API versions missing from the data (with the file to add);
- module parameters the module does not declare, and required ones not passed.

Values that are expressions are checked when their type is known: a literal, a parameter (its declared type
and `@allowed` values), a variable holding a literal (both branches of a conditional), a function whose
result kind is fixed, another resource's property or a module output; anything else (loop items, most
functions) is skipped and counted. Each finding ends with the diagnostic code `bicep build` gives it.

Templates are read with pycep-parser's Lark grammar (the parser of tests/static/test_bicep.py), walked as a
syntax tree: it keeps line numbers and tells identifiers from string literals, which pycep's JSON does not.

Type data is looked up in `tools/bicep_types/data/` (a pruned copy kept in the repo, see README there) and
then in `$AMLOPS_BICEP_TYPES` or `<repo>/../shared/bicep-types` (full files). Refresh the pruned copy after
adding a resource type or API version to infra/:  python tools/bicep_typecheck.py --vendor

Usage: python tools/bicep_typecheck.py [FILE_OR_DIR ...]   (default: infra/; exit 1 on findings)
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Token, Tree
from lark.exceptions import LarkError
from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
VENDORED = ROOT / "tools" / "bicep_types" / "data"
KNOWN = ROOT / "tools" / "bicep_types" / "known_findings.txt"
SHARED_ENV = "AMLOPS_BICEP_TYPES"
BICEP_TYPES_REPO = "Azure/bicep-types-az"

# Property flags of the type data (ObjectTypePropertyFlags in Azure/bicep-types src/bicep-types/src/types.ts).
REQUIRED, READ_ONLY = 1, 2

# Declaration keywords of Bicep itself, not properties of the resource body type
# (https://learn.microsoft.com/azure/azure-resource-manager/bicep/resource-declaration).
RESOURCE_KEYWORDS = frozenset({"parent", "scope", "dependsOn"})
# https://learn.microsoft.com/azure/azure-resource-manager/bicep/modules#define-modules
MODULE_KEYWORDS = frozenset({"name", "params", "scope", "dependsOn", "identity"})

# Functions whose result kind is fixed (https://learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions).
STRING_FUNCTIONS = frozenset(
    {"base64", "dataUri", "dateTimeAdd", "extensionResourceId", "format", "guid", "managementGroupResourceId"}
    | {"newGuid", "padLeft", "replace", "resourceId", "string", "subscriptionResourceId", "substring"}
    | {"tenantResourceId", "toLower", "toUpper", "trim", "uniqueString", "uri", "uriComponent"}
    | {"uriComponentToString", "utcNow"}
)
BOOL_FUNCTIONS = frozenset({"bool", "contains", "empty", "endsWith", "startsWith"})
INT_FUNCTIONS = frozenset({"int", "length", "indexOf", "lastIndexOf", "min", "max"})

Type = dict[str, Any]
# A node of the Lark syntax tree (a Tree, a Token, or None for an absent optional part): lark types a tree's
# children as a union every access would have to narrow, so nodes are Any and checked with isinstance.
Node = Any


# --- type data -------------------------------------------------------------------------------------


def shared_types_dir() -> Path:
    """Full type data: `$AMLOPS_BICEP_TYPES`, else `../shared/bicep-types` beside the repository (CI copies
    shared/ there)."""
    override = os.environ.get(SHARED_ENV)
    return Path(override) if override else ROOT.parent / "shared" / "bicep-types"


@dataclass
class TypeFile:
    path: Path
    entries: list[Type]

    def get(self, ref: Type) -> Type:
        """The entry a `{"$ref": "#/n"}` points to; synthetic types (module parameters) are given inline."""
        target = ref.get("$ref")
        return self.entries[int(target[2:])] if isinstance(target, str) else ref


@dataclass
class ResourceType:
    name: str
    file: TypeFile
    body: Type
    source: Path


class TypeData:
    """Resource types by lower-cased `type@version`, loaded per namespace and version on demand."""

    def __init__(self, roots: Iterable[Path]) -> None:
        self.roots = [root for root in roots if root.is_dir()]
        self._files: dict[Path, TypeFile] = {}

    def candidates(self, namespace: str, version: str) -> Iterator[tuple[Path, Path]]:
        # bicep-types-az layout: generated/<provider folder>/<namespace, lower case>/<api version>/types.json
        for root in self.roots:
            for path in sorted(root.glob(f"*/{namespace.lower()}/{version.lower()}/types.json")):
                yield root, path

    def load(self, path: Path) -> TypeFile:
        if path not in self._files:
            self._files[path] = TypeFile(path, json.loads(path.read_text(encoding="utf-8")))
        return self._files[path]

    def find(self, type_name: str, version: str) -> ResourceType | None:
        wanted = f"{type_name}@{version}".lower()
        for root, path in self.candidates(type_name.split("/")[0], version):
            file = self.load(path)
            for entry in file.entries:
                if entry["$type"] == "ResourceType" and entry["name"].lower() == wanted:
                    return ResourceType(entry["name"], file, file.get(entry["body"]), root)
        return None

    def missing_hint(self, type_name: str, version: str) -> str:
        namespace = type_name.split("/")[0]
        full = [path for root, path in self.candidates(namespace, version) if not _same(root, VENDORED)]
        if full:
            return f"{full[0]} has no {type_name}: the resource type name is wrong for this API version"
        folders = sorted(
            {
                p.parent.parent.parent.name
                for root in self.roots
                for p in root.glob(f"*/{namespace.lower()}/*/types.json")
            }
        )
        folder = folders[0] if len(folders) == 1 else f"({' or '.join(folders)})" if folders else "<provider>"
        upstream = f"generated/{folder}/{namespace.lower()}/{version}/types.json from {BICEP_TYPES_REPO}"
        shared = shared_types_dir()
        refresh = "then run `python tools/bicep_typecheck.py --vendor`"
        if not shared.is_dir():
            return (
                f"not in {_shown(VENDORED)}, and no full type data at {shared} (set {SHARED_ENV}): "
                f"with it (add {upstream} if it lacks the file), {refresh}"
            )
        return f"add {upstream} to {shared}, {refresh}"


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --- syntax tree helpers ---------------------------------------------------------------------------

PARSER = BicepParser()


class ParseFailure(Exception):
    """A template pycep's grammar cannot read (tests/static/test_bicep.py reports those in detail)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def parse_tree(path: Path) -> Node:
    try:
        return PARSER.lark_parser.parse(path.read_text(encoding="utf-8"))
    except LarkError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        line = getattr(error, "line", 0)
        raise ParseFailure(
            f"pycep-parser cannot parse it: {first}", line if isinstance(line, int) else 0
        ) from error


def line_of(node: Any) -> int:
    if isinstance(node, Token):
        return node.line or 0
    if isinstance(node, Tree) and not node.meta.empty:
        return node.meta.line
    return 0


def unquote(text: str) -> str:
    """A Bicep single-quoted string literal's value (escapes: \\' \\\\ \\n \\r \\t \\$)."""
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)), body)


def literal_string(node: Any) -> str | None:
    """The value of a string literal without interpolation, else None."""
    if isinstance(node, Tree) and node.data in ("string", "multi_line_string"):
        token: Node = node.children[0]
        if token.type == "MULTI_LINE_STRING":
            return str(token)[3:-3]
        if token.type == "QUOTED_INTERPOLATION" and not re.search(r"(?<!\\)\$\{", token):
            return unquote(str(token))
    return None


def token_type(node: Node) -> str | None:
    return node.type if isinstance(node, Token) else None


def identifier(node: Any) -> str | None:
    if isinstance(node, Tree) and node.data == "string" and token_type(node.children[0]) == "STRING":
        return str(node.children[0])
    return None


def key_name(pair: Node) -> str | None:
    """A pair's key, or None for an interpolated key ('${x}')."""
    token = pair.children[0].children[0]
    if token.type == "QUOTED_INTERPOLATION" or token.type == "QUOTED_STRING":
        return None if "${" in token else unquote(str(token))
    return str(token)


def body_object(node: Any) -> Node | None:
    """The object of a resource or module body, through `if (...)` and `[for ...]`."""
    while isinstance(node, Tree) and node.data in ("deploy_condition", "loop"):
        node = node.children[-1]
    return node if isinstance(node, Tree) and node.data == "object" else None


def pairs(obj: Node) -> Iterator[Node]:
    for child in obj.children:
        if isinstance(child, Tree) and child.data == "pair":
            yield child


def lift_conditional(node: Any) -> Any:
    """Undo a precedence slip of pycep's grammar: `a > 0 ? b : c` parses as `a > (0 ? b : c)` (and likewise
    for `!`, `&&`, `==`, `.`, ...), while Bicep's `?:` binds loosest. Rebuilds `(a > 0) ? b : c`."""
    kind = operator_kind(node)
    if kind is None or kind == "conditional":
        return node
    inner = node.children[0]
    last = lift_conditional(inner.children[-1])
    if operator_kind(last) != "conditional":
        return node
    condition, when_true, when_false = last.children[0].children
    rebuilt = Tree(
        "operator", [Tree(kind, [*inner.children[:-1], condition], meta=inner.meta)], meta=node.meta
    )
    return Tree(
        "operator",
        [Tree("conditional", [lift_conditional(rebuilt), when_true, when_false], meta=inner.meta)],
        meta=node.meta,
    )


def operator_kind(node: Any) -> str | None:
    if isinstance(node, Tree) and node.data == "operator":
        inner = node.children[0]
        return inner.data if isinstance(inner, Tree) else None
    return None


# --- templates -------------------------------------------------------------------------------------


@dataclass
class Param:
    name: str
    line: int
    type: str
    allowed: list[Any] | None
    required: bool


@dataclass
class Template:
    path: Path
    tree: Node
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)  # symbol: (type, api version)
    modules: dict[str, str] = field(default_factory=dict)  # symbol: module path
    outputs: dict[str, str] = field(default_factory=dict)  # name: declared type

    @classmethod
    def load(cls, path: Path) -> Template:
        template = cls(path, parse_tree(path))
        lines = path.read_text(encoding="utf-8").splitlines()
        for element in template.tree.children:
            if not isinstance(element, Tree):
                continue
            if element.data == "param":
                template.params[str(element.children[1])] = _param(element, lines)
            elif element.data == "var":
                template.variables[str(element.children[1])] = element.children[3]
            elif element.data == "resource":
                type_name, _, version = unquote(str(element.children[2].children[0])).partition("@")
                template.resources[str(element.children[1])] = (type_name, version)
            elif element.data == "module":
                template.modules[str(element.children[1])] = unquote(str(element.children[2].children[0]))
            elif element.data == "output":
                template.outputs[str(element.children[1])] = _type_text(element.children[2])
        return template

    def elements(self, kind: str) -> Iterator[Node]:
        for element in self.tree.children:
            if isinstance(element, Tree) and element.data == kind:
                yield element


def _param(element: Node, lines: list[str]) -> Param:
    decorators, name, data_type, default = element.children[:4]
    line = line_of(name)
    allowed = None
    for decorator in decorators.children if isinstance(decorators, Tree) else []:
        if str(decorator.children[0]) == "allowed" and len(decorator.children) > 1:
            values = decorator.children[1]
            allowed = [_literal_value(item) for item in values.children] if isinstance(values, Tree) else None
    type_text = _type_text(data_type)
    # pycep drops the `?` of a nullable type (`param x string?`); a nullable parameter is optional.
    nullable = bool(re.search(rf"\bparam\s+{re.escape(str(name))}\s+[^=\s]+\?", lines[line - 1]))
    return Param(str(name), line, type_text, allowed, required=default is None and not nullable)


def _type_text(data_type: Node) -> str:
    if data_type.children[1:]:  # array suffix: string[]
        return "array"
    return "".join(str(t) for t in data_type.scan_values(lambda t: isinstance(t, Token)))


def _literal_value(node: Any) -> Any:
    text = literal_string(node)
    if text is not None:
        return text
    if isinstance(node, Tree):
        if node.data == "int_type":
            return int(str(node.children[0]))
        if node.data in ("true", "false"):
            return node.data == "true"
    return None


# --- the checker -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.shown_path}:{self.line}: {self.message}"

    @property
    def shown_path(self) -> str:
        try:
            return str(self.path.relative_to(ROOT))
        except ValueError:
            return str(self.path)

    @property
    def key(self) -> str:
        """The finding without its line number, as listed in known_findings.txt (lines move, defects not)."""
        return f"{self.shown_path}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    resources: int = 0
    modules: int = 0
    properties: int = 0  # property names looked up in a type
    checked: int = 0  # values whose kind / allowed values were checked
    skipped: int = 0  # expression values whose type is unknown here
    skipped_at: list[Finding] = field(default_factory=list)
    fallback: set[str] = field(default_factory=set)  # types found only outside the vendored copy
    checked_files: list[Path] = field(default_factory=list)
    known: list[Finding] = field(default_factory=list)  # findings listed in known_findings.txt
    stale: list[str] = field(default_factory=list)  # known_findings.txt entries no longer found

    @property
    def failed(self) -> bool:
        return bool(self.findings or self.stale)

    def summary(self) -> str:
        return (
            f"bicep types: {self.files} files, {self.resources} resources, {self.modules} modules; "
            f"{self.properties} properties checked, {self.checked} values checked, "
            f"{self.skipped} expression values skipped; {len(self.findings)} findings"
            + (f" ({len(self.known)} more known, in {KNOWN.relative_to(ROOT)})" if self.known else "")
        )

    def apply_known(self, entries: Iterable[str]) -> None:
        """Set aside findings listed as known defects; an entry that matches nothing is stale (fixed)."""
        wanted = set(entries)
        self.known = [f for f in self.findings if f.key in wanted]
        self.findings = [f for f in self.findings if f.key not in wanted]
        # Only entries about the files checked this time can be stale.
        checked = {f"{Finding(path, 0, '').shown_path}: " for path in self.checked_files}
        found = {f.key for f in self.known}
        self.stale = sorted(e for e in wanted - found if any(e.startswith(prefix) for prefix in checked))


@dataclass
class Context:
    """Where a value sits: its template, the type file its type refers into, the property path, and the
    variables it came through (for the message)."""

    template: Template
    file: TypeFile
    path: str
    via: tuple[str, ...] = ()
    loop_items: frozenset[str] = frozenset()

    def at(self, name: str) -> Context:
        path = f"{self.path}{name}" if name == "[]" else f"{self.path}.{name}" if self.path else name
        return Context(self.template, self.file, path, self.via, self.loop_items)


class Checker:
    def __init__(self, types: TypeData, vendored: Path | None = VENDORED) -> None:
        self.types = types
        self.vendored = vendored
        self.report = Report()
        self._templates: dict[Path, Template] = {}

    def template(self, path: Path) -> Template:
        path = path.resolve()
        if path not in self._templates:
            self._templates[path] = Template.load(path)
        return self._templates[path]

    def find(self, ctx: Context, node: Any, message: str, code: str) -> None:
        """A finding, tagged with the diagnostic `bicep build` gives for it
        (https://learn.microsoft.com/azure/azure-resource-manager/bicep/diagnostics/<code>)."""
        via = f" (through {' -> '.join(ctx.via)})" if ctx.via else ""
        where = f"{ctx.path}: " if ctx.path else ""
        text = f"{where}{message}{via} [{code}]"
        self.report.findings.append(Finding(ctx.template.path, line_of(node), text))

    # -- files

    def check_file(self, path: Path) -> None:
        self.report.files += 1
        try:
            template = self.template(path)
        except ParseFailure as error:
            self.report.findings.append(Finding(path.resolve(), error.line, str(error)))
            self.report.checked_files.append(path.resolve())
            return
        self.report.checked_files.append(template.path)
        for element in template.elements("resource"):
            self.check_resource(template, element)
        for element in template.elements("module"):
            self.check_module(template, element)

    def check_resource(self, template: Template, element: Node) -> None:
        _, symbol, type_pair, existing, body = element.children[:5]
        self.check_declaration(template, str(symbol), type_pair.children[0], existing, body, None, None)

    def check_declaration(
        self,
        template: Template,
        symbol: str,
        type_token: Node,
        existing: Any,
        body: Any,
        parent: str | None,
        parent_version: str | None,
    ) -> None:
        type_name, _, version = unquote(str(type_token)).partition("@")
        self.report.resources += 1
        if parent is not None and "." not in type_name.split("/")[0]:
            # A nested child resource names its type relative to its parent's, and may leave out the version.
            type_name, version = f"{parent}/{type_name}", version or str(parent_version)
        if not version or "${" in type_name:
            message = (
                f"resource {symbol}: {unquote(str(type_token))!r} is not 'Namespace/type@apiVersion' [BCP029]"
            )
            self.report.findings.append(Finding(template.path, line_of(type_token), message))
            return
        resource = self.types.find(type_name, version)
        if resource is None:
            hint = self.types.missing_hint(type_name, version)
            message = f"resource {symbol}: no type data for {type_name}@{version}: {hint} [BCP081]"
            self.report.findings.append(Finding(template.path, line_of(type_token), message))
            return
        if self.vendored is not None and not resource.source.resolve().is_relative_to(
            self.vendored.resolve()
        ):
            self.report.fallback.add(resource.name)
        obj = body_object(body)
        if obj is None:
            return
        for child in obj.children:
            if isinstance(child, Tree) and child.data == "child_resource":
                child_symbol, child_type, child_existing, child_body = child.children[:4]
                self.check_declaration(
                    template, str(child_symbol), child_type, child_existing, child_body, type_name, version
                )
        if existing is not None:
            return  # `existing` declares name/scope only; nothing is deployed
        loop_items = frozenset(_loop_items(body))
        ctx = Context(template, resource.file, "", (), loop_items)
        self.check_object(ctx, obj, resource.body, keywords=RESOURCE_KEYWORDS, label=f"resource {symbol}")

    # -- values

    def check_value(self, ctx: Context, node: Any, type_ref: Type) -> None:
        t = ctx.file.get(type_ref)
        kind = t["$type"]
        node = lift_conditional(node)
        if kind == "AnyType":
            self.report.checked += 1
            return
        if isinstance(node, Tree) and node.data == "null":
            self.report.checked += 1  # null leaves a property unset
            return
        if (
            isinstance(node, Tree)
            and node.data == "object"
            and kind in ("ObjectType", "DiscriminatedObjectType")
        ):
            self.report.checked += 1
            self.check_object(ctx, node, t)
            return
        if isinstance(node, Tree) and node.data == "array" and kind == "ArrayType":
            self.report.checked += 1
            for item in node.children:
                self.check_value(ctx.at("[]"), item, t["itemType"])
            return
        if isinstance(node, Tree) and node.data == "loop" and kind == "ArrayType":
            self.report.checked += 1
            inner = Context(
                ctx.template, ctx.file, ctx.path, ctx.via, ctx.loop_items | set(_loop_items(node))
            )
            self.check_value(inner.at("[]"), node.children[-1], t["itemType"])
            return
        if kind == "UnionType" and _is_object_or_array(node):
            self.check_union(ctx, node, t)
            return
        literal = _literal_kind(node)
        if literal is not None:
            self.check_literal(ctx, node, literal, t)
            return
        self.check_expression(ctx, node, type_ref)

    def check_literal(self, ctx: Context, node: Any, literal: tuple[str, Any], t: Type) -> None:
        self.report.checked += 1
        kind, value = literal
        expected = describe(ctx.file, t)
        if not accepts(ctx.file, t, kind, value):
            shown = repr(value) if kind != "object" else kind
            close = ""
            if isinstance(value, str):
                options = allowed_strings(ctx.file, t)
                match = difflib.get_close_matches(value, options, n=1) if options else []
                close = f"; did you mean {match[0]!r}?" if match else ""
            self.find(ctx, node, f"{shown} is not allowed: expected {expected}{close}", "BCP036")

    def check_union(self, ctx: Context, node: Any, union: Type) -> None:
        """An object or array against a union of types: fine when one member takes it without findings."""
        best: list[Finding] | None = None
        for element in union["elements"]:
            before = self.report.findings
            self.report.findings = []
            self.check_value(ctx, node, element)
            found, self.report.findings = self.report.findings, before
            if best is None or len(found) < len(best):
                best = found
            if not found:
                return
        self.report.findings.extend(best or [])

    def check_expression(self, ctx: Context, node: Any, type_ref: Type) -> None:
        """A value that is not a literal: follow parameters, variables and conditionals to what is known."""
        name = identifier(node)
        if name is not None and name not in ctx.loop_items:
            if name in ctx.template.params:
                self.check_param_use(ctx, node, ctx.template.params[name], type_ref)
                return
            if name in ctx.template.variables and name not in ctx.via:
                via = Context(ctx.template, ctx.file, ctx.path, (*ctx.via, name), ctx.loop_items)
                self.check_value(via, ctx.template.variables[name], type_ref)
                return
        op = operator_kind(node)
        if op == "conditional":
            _, when_true, when_false = node.children[0].children
            self.check_value(ctx, when_true, type_ref)
            self.check_value(ctx, when_false, type_ref)
            return
        if op in ("property_accessor", "index_accessor"):
            target = self.resolve_member(ctx, node) if op == "property_accessor" else None
            if target is not None:
                member_ctx, value = target
                self.check_value(member_ctx, value, type_ref)
                return
            typed = self.reference_type(ctx, node)
            if typed is not None:
                self.check_typed(ctx, node, *typed, type_ref)
                return
        result = _result_kind(node)
        if result is not None:
            self.report.checked += 1
            t = ctx.file.get(type_ref)
            if not accepts(ctx.file, t, result, None):
                message = f"a {result} expression is not allowed: expected {describe(ctx.file, t)}"
                self.find(ctx, node, message, "BCP036")
            return
        self.skip(ctx, node, "expression")

    def skip(self, ctx: Context, node: Any, why: str) -> None:
        self.report.skipped += 1
        via = f" (through {' -> '.join(ctx.via)})" if ctx.via else ""
        self.report.skipped_at.append(Finding(ctx.template.path, line_of(node), f"{ctx.path}: {why}{via}"))

    def resolve_member(self, ctx: Context, node: Node) -> tuple[Context, Any] | None:
        """`var.a.b` where var holds a literal object: the member's syntax node (pycep nests `a.b.c` to the
        right: a . (b . c))."""
        base, member = node.children[0].children
        name = identifier(base)
        if name is None or name not in ctx.template.variables or name in ctx.loop_items or name in ctx.via:
            return None
        value: Any = ctx.template.variables[name]
        keys: list[str] = []
        while operator_kind(member) == "property_accessor":
            first, member = member.children[0].children
            if identifier(first) is None:
                return None
            keys.append(str(identifier(first)))
        if identifier(member) is None:
            return None
        keys.append(str(identifier(member)))
        for key in keys:
            if not (isinstance(value, Tree) and value.data == "object"):
                return None
            found = [p.children[1] for p in pairs(value) if key_name(p) == key]
            if not found:
                return None
            value = found[0]
        return Context(
            ctx.template, ctx.file, ctx.path, (*ctx.via, f"{name}.{'.'.join(keys)}"), ctx.loop_items
        ), value

    def reference_type(self, ctx: Context, node: Any) -> tuple[str, TypeFile, Type] | None:
        """(label, type file, type) of `resource.a.b` (read from the type data, read-only properties
        included) or `module.outputs.x` (the module's declared output type)."""
        steps = _steps(node)
        if not steps or steps[0] in ctx.loop_items or steps[0] in ctx.template.params:
            return None
        symbol, rest = steps[0], steps[1:]
        label = ".".join(steps).replace(".[]", "[]")
        if rest[:1] == ["[]"]:  # one instance of a resource or module loop
            rest = rest[1:]
        if symbol in ctx.template.modules and len(rest) == 2 and rest[0] == "outputs":
            path = (ctx.template.path.parent / ctx.template.modules[symbol]).resolve()
            try:
                declared = self.template(path).outputs.get(rest[1]) if path.suffix == ".bicep" else None
            except (OSError, ParseFailure):
                declared = None
            if declared is None:
                return None
            synthetic = Param(rest[1], 0, declared, None, False)
            return label, TypeFile(path, []), param_type(synthetic)
        if symbol not in ctx.template.resources:
            return None
        resource = self.types.find(*ctx.template.resources[symbol])
        if resource is None:
            return None
        file, t = resource.file, resource.body
        for step in rest:
            t = file.get(t)
            if step == "[]" and t["$type"] == "ArrayType":
                t = t["itemType"]
            elif t["$type"] == "ObjectType" and step in t.get("properties", {}):
                t = t["properties"][step]["type"]
            else:
                return None
        return label, file, file.get(t)

    def check_typed(
        self, ctx: Context, node: Any, label: str, file: TypeFile, source: Type, type_ref: Type
    ) -> None:
        """A value whose type is known from elsewhere (another resource's property, a module output)."""
        t = ctx.file.get(type_ref)
        kind = _kind_of(file, source)
        if kind is None:
            self.skip(ctx, node, f"{label} has type {describe(file, source)}")
            return
        values = allowed_strings(file, source) if not open_string(file, source) else []
        if kind == "string" and not values and allowed_strings(ctx.file, t) and not open_string(ctx.file, t):
            self.skip(ctx, node, f"{label} is any string, used as {describe(ctx.file, t)}")
            return
        self.report.checked += 1
        bad = [v for v in values if not accepts(ctx.file, t, "string", v)]
        if bad or (not values and not accepts(ctx.file, t, kind, None)):
            shown = f"may be {bad[0]!r}" if bad else f"is {describe(file, source)}"
            self.find(ctx, node, f"{label} {shown}: expected {describe(ctx.file, t)}", "BCP036")

    def check_param_use(self, ctx: Context, node: Any, param: Param, type_ref: Type) -> None:
        t = ctx.file.get(type_ref)
        if param.allowed:
            self.report.checked += 1
            for value in param.allowed:
                kind = _python_kind(value)
                if not accepts(ctx.file, t, kind, value):
                    self.find(
                        ctx,
                        node,
                        f"parameter {param.name} allows {value!r} (line {param.line}), "
                        f"not allowed here: expected {describe(ctx.file, t)}",
                        "BCP036",
                    )
            return
        declared = param.type if param.type in ("string", "int", "bool", "object", "array") else None
        if declared is None:
            self.skip(ctx, node, f"parameter {param.name} of type {param.type}")
            return
        if allowed_strings(ctx.file, t) and not open_string(ctx.file, t) and declared == "string":
            # any string: only the deployment's value can be checked
            self.skip(ctx, node, f"parameter {param.name} without @allowed, used as {describe(ctx.file, t)}")
            return
        self.report.checked += 1
        if not accepts(ctx.file, t, declared, None):
            message = f"parameter {param.name} is {param.type}: expected {describe(ctx.file, t)}"
            self.find(ctx, node, message, "BCP036")

    # -- objects

    def check_object(
        self, ctx: Context, obj: Node, t: Type, keywords: frozenset[str] = frozenset(), label: str = ""
    ) -> None:
        properties, extra = self.object_schema(ctx, obj, t)
        if properties is None:
            return
        given: set[str] = set()
        dynamic = False
        for pair in pairs(obj):
            name = key_name(pair)
            value = pair.children[1]
            if name is None:
                dynamic = True
                if extra is not None:
                    self.check_value(ctx.at("*"), value, extra)
                else:
                    self.skip(ctx, pair, "interpolated property name")
                continue
            given.add(name)
            if name in keywords:
                continue
            self.report.properties += 1
            spec = properties.get(name)
            if spec is None:
                if extra is not None:
                    self.check_value(ctx.at(name), value, extra)
                    continue
                self.report_unknown(ctx, pair, name, properties, label)
                continue
            if spec.get("flags", 0) & READ_ONLY:
                self.find(
                    ctx.at(name), pair, "read-only property: Azure sets it, a template cannot", "BCP073"
                )
                continue
            self.check_value(ctx.at(name), value, spec["type"])
        if dynamic:
            return  # an interpolated key might be any property
        for name, spec in properties.items():
            if spec.get("flags", 0) & REQUIRED and not spec.get("flags", 0) & READ_ONLY and name not in given:
                what = f"{label}: " if label and not ctx.path else ""
                self.find(ctx, obj, f"{what}required property {name!r} is missing", "BCP035")

    def report_unknown(
        self, ctx: Context, pair: Node, name: str, properties: dict[str, Type], label: str
    ) -> None:
        writable = [n for n, s in properties.items() if not s.get("flags", 0) & READ_ONLY]
        match = difflib.get_close_matches(name, writable, n=1, cutoff=0.6)
        lower = [n for n in writable if n.lower() == name.lower()]
        hint = f"; did you mean {(lower or match)[0]!r}?" if lower or match else ""
        what = f"{label}: " if label and not ctx.path else ""
        self.find(ctx.at(name), pair, f"{what}unknown property {name!r}{hint}", "BCP037")

    def object_schema(self, ctx: Context, obj: Node, t: Type) -> tuple[dict[str, Type] | None, Type | None]:
        """(properties, additionalProperties type) of an object type; a discriminated type is resolved by the
        object's discriminator value."""
        if t["$type"] == "ObjectType":
            return dict(t.get("properties", {})), t.get("additionalProperties")
        if t["$type"] != "DiscriminatedObjectType":
            return None, None
        discriminator = t["discriminator"]
        values = [p.children[1] for p in pairs(obj) if key_name(p) == discriminator]
        if not values:
            message = f"required property {discriminator!r} is missing (it selects the object's shape)"
            self.find(ctx, obj, message, "BCP035")
            return None, None
        chosen = self._discriminator_value(ctx, values[0])
        if chosen is None:
            self.skip(ctx.at(discriminator), values[0], "discriminator value unknown: object shape unknown")
            return None, None
        elements = t["elements"]
        if chosen not in elements:
            match = difflib.get_close_matches(chosen, list(elements), n=1)
            hint = f"; did you mean {match[0]!r}?" if match else ""
            self.find(
                ctx.at(discriminator),
                values[0],
                f"{chosen!r} is not allowed: expected one of {sorted(elements)}{hint}",
                "BCP036",
            )
            return None, None
        element = ctx.file.get(elements[chosen])
        return {**t.get("baseProperties", {}), **element.get("properties", {})}, element.get(
            "additionalProperties"
        )

    def _discriminator_value(self, ctx: Context, node: Any) -> str | None:
        text = literal_string(node)
        if text is None and identifier(node) in ctx.template.variables:
            text = literal_string(ctx.template.variables[str(identifier(node))])
        return text

    # -- modules

    def check_module(self, template: Template, element: Node) -> None:
        _, symbol, module_path, body = element.children[:4]
        self.report.modules += 1
        obj = body_object(body)
        source = unquote(str(module_path.children[0]))
        if obj is None:
            return
        for pair in pairs(obj):
            name = key_name(pair)
            if name is not None and name not in MODULE_KEYWORDS:
                hint = difflib.get_close_matches(name, sorted(MODULE_KEYWORDS), n=1)
                more = f"; did you mean {hint[0]!r}?" if hint else ""
                self.report.findings.append(
                    Finding(
                        template.path,
                        line_of(pair),
                        f"module {symbol}: unknown property {name!r}{more} [BCP037]",
                    )
                )
        if ":" in source.split("/")[0]:  # br:, ts: registry modules cannot be read offline
            self.skip(
                Context(template, TypeFile(template.path, []), f"module {symbol}"),
                module_path,
                "registry module",
            )
            return
        target_path = (template.path.parent / source).resolve()
        if not target_path.is_file():
            message = f"module {symbol}: {source} does not exist"
            self.report.findings.append(Finding(template.path, line_of(module_path), message))
            return
        if target_path.suffix != ".bicep":  # an ARM JSON template: its parameters are not read here
            self.skip(
                Context(template, TypeFile(target_path, []), f"module {symbol}"), module_path, "JSON module"
            )
            return
        try:
            target = self.template(target_path)
        except ParseFailure as error:
            message = f"module {symbol}: {source}: {error}"
            self.report.findings.append(Finding(template.path, line_of(module_path), message))
            return
        params = [p.children[1] for p in pairs(obj) if key_name(p) == "params"]
        loop_items = frozenset(_loop_items(body))
        ctx = Context(template, TypeFile(target_path, []), f"module {symbol}: params", (), loop_items)
        if params and isinstance(params[0], Tree) and params[0].data == "object":
            self.check_object(ctx, params[0], module_params_type(target), label="")
        elif params:
            self.skip(ctx, params[0], "params is an expression")
        else:
            required = [p.name for p in target.params.values() if p.required]
            if required:
                self.find(ctx, obj, f"required parameters {required} are not passed", "BCP035")


def module_params_type(template: Template) -> Type:
    """A module's parameters as a synthetic object type: required unless given a default or nullable, and
    values restricted to `@allowed`."""
    properties: dict[str, Type] = {}
    for param in template.params.values():
        properties[param.name] = {"type": param_type(param), "flags": REQUIRED if param.required else 0}
    return {"$type": "ObjectType", "name": str(template.path.name), "properties": properties}


def param_type(param: Param) -> Type:
    if param.allowed:
        return {
            "$type": "UnionType",
            "elements": [
                {"$type": "StringLiteralType", "value": v}
                if isinstance(v, str)
                else {"$type": "IntegerType", "minValue": v, "maxValue": v}
                for v in param.allowed
            ],
        }
    by_type: dict[str, Type] = {
        "string": {"$type": "StringType"},
        "int": {"$type": "IntegerType"},
        "bool": {"$type": "BooleanType"},
        "array": {"$type": "ArrayType", "itemType": {"$type": "AnyType"}},
        "object": {"$type": "ObjectType", "additionalProperties": {"$type": "AnyType"}},
    }
    return by_type.get(param.type, {"$type": "AnyType"})


# --- kinds -----------------------------------------------------------------------------------------


def _loop_items(node: Any) -> Iterator[str]:
    while isinstance(node, Tree) and node.data in ("deploy_condition", "loop"):
        if node.data == "loop":
            head = node.children[0]
            for child in head.children:
                if isinstance(child, Token) and child.type == "STRING":
                    yield str(child)
        node = node.children[-1]


def _steps(node: Any) -> list[str] | None:
    """`a.b[0].c` as ["a", "b", "[]", "c"]; None when a part is not a plain name or index."""
    name = identifier(node)
    if name is not None:
        return [name]
    op = operator_kind(node)
    if op == "property_accessor":
        left, right = node.children[0].children
        first, second = _steps(left), _steps(right)
        return first + second if first is not None and second is not None else None
    if op == "index_accessor":
        base = _steps(node.children[0].children[0])
        return [*base, "[]"] if base is not None else None
    return None


def _kind_of(file: TypeFile, t: Type) -> str | None:
    """The kind of value a type holds, None when it may hold several."""
    t = file.get(t)
    kinds = {
        "StringType": "string",
        "StringLiteralType": "string",
        "IntegerType": "int",
        "BooleanType": "bool",
        "ObjectType": "object",
        "DiscriminatedObjectType": "object",
        "ArrayType": "array",
    }
    if t["$type"] == "UnionType":
        found = {_kind_of(file, e) for e in t["elements"]}
        return found.pop() if len(found) == 1 else None
    return kinds.get(t["$type"])


def _is_object_or_array(node: Any) -> bool:
    return isinstance(node, Tree) and node.data in ("object", "array", "loop")


def _literal_kind(node: Any) -> tuple[str, Any] | None:
    """(kind, value) of a literal: ("string", text), ("int", n), ("bool", b), ("object"/"array", None);
    ("string", None) for an interpolated string (a string, value unknown)."""
    if not isinstance(node, Tree):
        return None
    text = literal_string(node)
    if text is not None:
        return "string", text
    if node.data == "string" and token_type(node.children[0]) == "QUOTED_INTERPOLATION":
        return "string", None
    if node.data == "int_type":
        return "int", int(str(node.children[0]))
    if operator_kind(node) == "minus" and isinstance(node.children[0].children[0], Tree):
        inner = node.children[0].children[0]
        if inner.data == "int_type":
            return "int", -int(str(inner.children[0]))
    if node.data in ("true", "false"):
        return "bool", node.data == "true"
    if node.data in ("object", "array", "loop"):
        return ("array" if node.data == "loop" else node.data), None
    return None


def _python_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "int" if isinstance(value, int) else "string"


def _result_kind(node: Any) -> str | None:
    """The kind of value a function call or operator yields, when it does not depend on its arguments."""
    if isinstance(node, Tree) and node.data == "function":
        name = str(node.children[0]).rstrip("(").split(".")[-1]
        if name in STRING_FUNCTIONS:
            return "string"
        if name in BOOL_FUNCTIONS:
            return "bool"
        if name in INT_FUNCTIONS:
            return "int"
        return None
    op = operator_kind(node)
    if op in (
        "not_op",
        "and_op",
        "or_op",
        "equals",
        "not_equals",
        "equals_case_insens",
        "not_equals_case_insens",
    ):
        return "bool"
    if op in ("greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals"):
        return "bool"
    if op in ("divide", "modulo", "multiply", "substract"):
        return "int"
    return None


def accepts(file: TypeFile, t: Type, kind: str, value: Any) -> bool:
    """Whether a value of this kind (and value, when known) fits the type."""
    t = file.get(t)
    match t["$type"]:
        case "AnyType":
            return True
        case "StringType":
            if kind != "string":
                return False
            if isinstance(value, str):
                return bool(t.get("minLength", 0) <= len(value) <= t.get("maxLength", len(value)))
            return True
        case "StringLiteralType":
            return kind == "string" and (value is None or value == t["value"])
        case "IntegerType":
            if kind != "int":
                return False
            return value is None or t.get("minValue", value) <= value <= t.get("maxValue", value)
        case "BooleanType":
            return kind == "bool"
        case "ObjectType" | "DiscriminatedObjectType":
            return kind == "object"
        case "ArrayType":
            return kind == "array"
        case "UnionType":
            return any(accepts(file, e, kind, value) for e in t["elements"])
        case "NullType":
            return False
    return True  # a type kind this checker does not know: do not guess


def allowed_strings(file: TypeFile, t: Type) -> list[str]:
    t = file.get(t)
    if t["$type"] == "StringLiteralType":
        return [t["value"]]
    if t["$type"] == "UnionType":
        return [v for e in t["elements"] for v in allowed_strings(file, e)]
    return []


def open_string(file: TypeFile, t: Type) -> bool:
    """A union that also takes any string (bicep-types marks non-strict enums so)."""
    t = file.get(t)
    if t["$type"] in ("StringType", "AnyType"):
        return True
    return t["$type"] == "UnionType" and any(open_string(file, e) for e in t["elements"])


def describe(file: TypeFile, t: Type) -> str:
    t = file.get(t)
    kind = t["$type"]
    if kind == "UnionType":
        strings = allowed_strings(file, t)
        others = sorted(
            {describe(file, e) for e in t["elements"] if file.get(e)["$type"] != "StringLiteralType"}
        )
        parts = ([f"one of {strings}"] if strings else []) + others
        return " or ".join(parts)
    if kind == "StringLiteralType":
        return repr(t["value"])
    if kind == "IntegerType" and ("minValue" in t or "maxValue" in t):
        return f"an int in [{t.get('minValue', '-inf')}, {t.get('maxValue', 'inf')}]"
    if kind == "StringType" and ("minLength" in t or "maxLength" in t):
        return f"a string of length [{t.get('minLength', 0)}, {t.get('maxLength', 'inf')}]"
    names = {
        "StringType": "a string",
        "IntegerType": "an int",
        "BooleanType": "a bool",
        "ObjectType": "an object",
        "DiscriminatedObjectType": "an object",
        "ArrayType": "an array",
        "AnyType": "any value",
    }
    return names.get(kind, str(kind))


# --- vendoring -------------------------------------------------------------------------------------


def used_types(files: Iterable[Path]) -> set[tuple[str, str]]:
    used = set()
    for path in files:
        for element in Template.load(path).elements("resource"):
            type_name, _, version = unquote(str(element.children[2].children[0])).partition("@")
            used.add((type_name, version))
    return used


def prune(entries: list[Type], roots: list[int]) -> list[Type]:
    """The entries reachable from `roots`, renumbered in their original order, descriptions dropped."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        index = stack.pop()
        if index not in seen:
            seen.add(index)
            stack.extend(int(ref[2:]) for ref in re.findall(r'"(#/\d+)"', json.dumps(entries[index])))
    order = sorted(seen)
    renumber = {f"#/{old}": f"#/{new}" for new, old in enumerate(order)}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: renumber[v] if k == "$ref" else rewrite(v)
                for k, v in node.items()
                if not (k == "description" and isinstance(v, str))  # a property's text, not a property
            }
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return [rewrite(entries[i]) for i in order]


def vendor(files: list[Path], source: Path, target: Path) -> list[str]:
    """Rewrite `target` with the pruned type files of every resource type the templates use; returns the
    types missing from `source`."""
    data = TypeData([source])
    wanted: dict[Path, list[str]] = {}
    missing = []
    for type_name, version in sorted(used_types(files)):
        found = data.find(type_name, version)
        if found is None:
            missing.append(f"{type_name}@{version}: {data.missing_hint(type_name, version)}")
            continue
        wanted.setdefault(found.file.path, []).append(found.name.lower())
    if missing:
        return missing
    for old in sorted(target.glob("*/*/*/types.json")):
        old.unlink()
    for path, names in sorted(wanted.items()):
        entries = data.load(path).entries
        roots = [
            i for i, e in enumerate(entries) if e["$type"] == "ResourceType" and e["name"].lower() in names
        ]
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        # One entry per line: reviewable diffs when a type is added.
        lines = [json.dumps(e, separators=(",", ":")) for e in prune(entries, roots)]
        out.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    for empty in sorted(target.glob("**/"), reverse=True):
        if empty.is_dir() and not any(empty.iterdir()):
            empty.rmdir()
    return []


# --- entry points ----------------------------------------------------------------------------------


def bicep_files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("*.bicep")) if path.is_dir() else [path])
    return found


def known_findings(path: Path = KNOWN) -> list[str]:
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def check(
    paths: Iterable[Path],
    roots: Iterable[Path] | None = None,
    vendored: Path | None = VENDORED,
    known: Iterable[str] = (),
) -> Report:
    roots = list(roots) if roots is not None else [VENDORED, shared_types_dir()]
    checker = Checker(TypeData(roots), vendored)
    for path in bicep_files(paths):
        checker.check_file(path)
    checker.report.findings.sort(key=lambda f: (str(f.path), f.line, f.message))
    checker.report.apply_known(known)
    return checker.report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", type=Path, default=[INFRA])
    parser.add_argument(
        "--vendor", action="store_true", help="refresh tools/bicep_types/data from the full data"
    )
    parser.add_argument("--show-skipped", action="store_true", help="list the values left unchecked")
    args = parser.parse_args(argv)
    if args.vendor:
        missing = vendor(bicep_files(args.paths), shared_types_dir(), VENDORED)
        for line in missing:
            print(f"missing: {line}", file=sys.stderr)
        return 1 if missing else 0
    report = check(args.paths, known=known_findings())
    for finding in report.findings:
        print(finding)
    for finding in report.known:
        print(f"known: {finding}")
    for entry in report.stale:
        print(f"{KNOWN.relative_to(ROOT)}: {entry!r} is no longer found: remove it")
    for skipped in report.skipped_at if args.show_skipped else []:
        print(f"skipped: {skipped}")
    for name in sorted(report.fallback):
        print(
            f"note: {name} is not in {VENDORED.relative_to(ROOT)}: run `python tools/bicep_typecheck.py --vendor`"
        )
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
