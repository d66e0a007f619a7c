"""A fake Azure at the HTTP boundary: every request the real SDK sends is recorded and answered here.

The hook is `requests.adapters.HTTPAdapter.send`, the last step before a socket. Everything above it runs for
real: azure-ai-ml's entities, validators and REST serialisers, azure-core's pipelines (auth, retry, polling)
and azure-storage-blob's uploads. A transport passed to `MLClient(transport=...)` would not be enough: the
storage clients the SDK builds internally for uploads never receive it.

The fake is a small stateful service so that idempotency is observable: an ARM `PUT` stores the resource,
a later `GET` returns it, an unknown resource is a 404 with ARM's error body. Blob uploads are stored by
URL. Anything the fake does not know fails the test (an AssertionError, which azure-core does not retry).
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.response import HTTPResponse

SUB = "00000000-0000-0000-0000-000000000001"
RG = "rg-amlops-dev"
WS = "mlw-amlops-dev"
LOCATION = "westeurope"
WS_GUID = "11111111-2222-3333-4444-555555555555"
STORAGE_ACCOUNT = "stamlopsdev"
CONTAINER = "azureml-blobstore-" + WS_GUID
WS_PATH = (
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
)
ARM = "management.azure.com"


@dataclass
class Recorded:
    """One request as it left the process."""

    method: str
    url: str
    host: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def __repr__(self) -> str:
        return f"{self.method} {self.host}{self.path}"


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Recorded], Reply]


def _constant(reply: Reply) -> Handler:
    def answer(_req: Recorded) -> Reply:
        return reply

    return answer


def arm_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


class FakeAzure:
    """Routes requests to handlers (most recently added first), then to the ARM store, else fails."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.arm: dict[str, dict[str, Any]] = {}  # lower-cased ARM path -> stored resource
        self.blobs: dict[str, bytes] = {}  # host+path -> content
        self._handlers: list[tuple[str, re.Pattern[str], Handler]] = []

    # --- configuration ---------------------------------------------------------------------------------
    def on(self, method: str, pattern: str, handler: Handler | Reply) -> None:
        """Answer `method` requests whose `host + path` matches `pattern` (re.search)."""
        fn: Handler = handler if not isinstance(handler, Reply) else _constant(handler)
        self._handlers.insert(0, (method.upper(), re.compile(pattern), fn))

    def put_resource(self, path: str, resource: dict[str, Any]) -> None:
        """Seed the ARM store, as if the resource had been created earlier."""
        self.arm[path.lower()] = self._finish(path, resource)

    # --- queries for assertions --------------------------------------------------------------------------
    def calls(self, method: str | None = None, pattern: str = "") -> list[Recorded]:
        rx = re.compile(pattern)
        return [
            r for r in self.requests if (method is None or r.method == method) and rx.search(r.host + r.path)
        ]

    def writes(self) -> list[Recorded]:
        """Requests that create or change something (everything except reads and listSecrets-style POSTs)."""
        return [r for r in self.requests if r.method in ("PUT", "PATCH", "DELETE") or _is_action(r)]

    # --- the HTTP boundary -----------------------------------------------------------------------------
    def send(self, prepared: requests.PreparedRequest) -> requests.Response:
        parts = urlsplit(prepared.url or "")
        raw: Any = prepared.body
        if hasattr(raw, "read"):
            raw = raw.read()
        elif raw is not None and not isinstance(raw, bytes | str):
            raw = b"".join(c if isinstance(c, bytes) else str(c).encode() for c in raw)  # a streamed body
        body: bytes = raw.encode() if isinstance(raw, str) else (raw or b"")
        rec = Recorded(
            method=(prepared.method or "GET").upper(),
            url=prepared.url or "",
            host=parts.netloc,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            headers={k: v if isinstance(v, str) else v.decode() for k, v in prepared.headers.items()},
            body=body,
        )
        self.requests.append(rec)
        reply = self._dispatch(rec)
        return _response(prepared, reply)

    def _dispatch(self, req: Recorded) -> Reply:
        target = req.host + req.path
        for method, rx, fn in self._handlers:
            if method == req.method and rx.search(target):
                return fn(req)
        resource = "/providers/microsoft.machinelearningservices/" in req.path.lower()
        if resource and req.method == "POST" and req.path.endswith("/startPendingUpload"):
            return self._pending_upload(req)
        if resource and req.method == "PUT" and "/tempdatarefs/" in req.path:  # a registry's upload SAS
            return self._pending_upload(req)
        # ARM, and the registries' management front end, which serves the same resource paths.
        if req.host == ARM or (resource and req.host.endswith(".api.azureml.ms")):
            return self._arm(req)
        if req.host.endswith(".blob.core.windows.net"):
            return self._blob(req)
        raise AssertionError(f"fake Azure: unexpected request {req.method} {req.url}")

    # --- ARM: a resource store ------------------------------------------------------------------------------
    def _arm(self, req: Recorded) -> Reply:
        key = req.path.lower().rstrip("/")
        if req.method == "PUT":
            stored = self._finish(req.path, req.json() or {})
            self.arm[key] = stored
            return Reply(200, stored)
        if req.method == "GET":
            if key in self.arm:
                return Reply(200, self.arm[key])
            children = [v for k, v in self.arm.items() if k.rsplit("/", 1)[0] == key]
            if _looks_like_collection(key):
                return Reply(200, {"value": children})
            return arm_error(404, "ResourceNotFound", f"The resource {req.path} was not found.")
        if req.method == "DELETE":
            self.arm.pop(key, None)
            return Reply(200)
        raise AssertionError(f"fake Azure: unexpected ARM request {req.method} {req.url}")

    def _pending_upload(self, req: Recorded) -> Reply:
        """A code/data upload: the service hands out a SAS for a fresh container in its blob store."""
        # The real service answers with a fresh container per pending upload.
        container = uuid.uuid4().hex
        base = f"https://{STORAGE_ACCOUNT}.blob.core.windows.net/{container}"
        return Reply(
            200,
            {
                "blobReferenceForConsumption": {
                    "blobUri": base,
                    "storageAccountArmId": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/"
                    f"Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}",
                    "credential": {"credentialType": "SAS", "sasUri": base + "?sv=2024-01-01&sig=fake"},
                },
                "pendingUploadId": container,
                "pendingUploadType": "TemporaryBlobReference",
            },
        )

    @staticmethod
    def _finish(path: str, body: dict[str, Any]) -> dict[str, Any]:
        """What ARM adds to a stored resource: id, name, system data, a finished provisioning state."""
        out = json.loads(json.dumps(body))
        arm_id = re.sub(r"^/mferp/managementfrontend", "", path)
        # Assets in a registry are identified as azureml://registries/<name>/<type>/<name>/versions/<v>.
        in_registry = re.search(r"/registries/([^/]+)/(.+/versions/[^/]+)$", arm_id)
        out["id"] = (
            f"azureml://registries/{in_registry.group(1)}/{in_registry.group(2)}" if in_registry else arm_id
        )
        out["name"] = path.rstrip("/").rsplit("/", 1)[-1]
        out.setdefault("systemData", {"createdAt": "2026-11-26T10:00:00Z", "createdBy": "tester"})
        props = out.setdefault("properties", {})
        if isinstance(props, dict):
            props.setdefault("provisioningState", "Succeeded")
            if "/schedules/" in path.lower():
                props.setdefault("isEnabled", True)  # the service's default for a new schedule
            if re.search(r"/models/[^/]+/versions/", path):
                props.setdefault(
                    "flavors", {}
                )  # the service reads them from MLmodel; the SDK expects the key
        return out

    # --- Blob storage ------------------------------------------------------------------------------------
    def _blob(self, req: Recorded) -> Reply:
        key = req.host + req.path
        comp = req.query.get("comp", [""])[0]
        if req.method == "PUT" and comp == "blocklist":
            return Reply(201, headers={"ETag": '"0x1"', "Last-Modified": formatdate(usegmt=True)})
        if req.method == "PUT" and comp == "metadata":
            return Reply(200, headers={"ETag": '"0x2"'})
        if req.method == "PUT":
            self.blobs[key] = req.body
            return Reply(
                201, headers={"ETag": '"0x1"', "Last-Modified": formatdate(usegmt=True), "Content-MD5": ""}
            )
        if req.method == "GET" and comp == "list":
            prefix = req.query.get("prefix", [""])[0]
            container = req.path.strip("/")
            names = [k.split(f"/{container}/", 1)[1] for k in self.blobs if f"/{container}/" in k]
            size = {n: len(self.blobs[f"{req.host}/{container}/{n}"]) for n in names}
            items = "".join(
                f"<Blob><Name>{n}</Name><Properties><Content-Length>{size[n]}</Content-Length>"
                "<BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob>"
                for n in sorted(names)
                if n.startswith(prefix)
            )
            xml = (
                '<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Prefix>'
                f"{prefix}</Prefix><Blobs>{items}</Blobs><NextMarker /></EnumerationResults>"
            )
            return Reply(200, body=xml.encode(), headers={"Content-Type": "application/xml"})
        if req.method in ("HEAD", "GET"):
            if key not in self.blobs:
                return Reply(404, headers={"x-ms-error-code": "BlobNotFound"})
            data = self.blobs[key]
            headers = {
                "x-ms-blob-type": "BlockBlob",
                "ETag": '"0x1"',
                "Last-Modified": formatdate(usegmt=True),
            }
            wanted = re.match(
                r"bytes=(\d+)-(\d*)", req.headers.get("x-ms-range") or req.headers.get("Range") or ""
            )
            if req.method == "GET" and wanted:  # ranged download, as azure-storage-blob always asks
                start = int(wanted.group(1))
                end = min(int(wanted.group(2) or len(data) - 1), len(data) - 1)
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                return Reply(206, body=data[start : end + 1], headers=headers)
            headers["Content-Length"] = str(len(data))
            return Reply(200, body=data if req.method == "GET" else b"", headers=headers)
        raise AssertionError(f"fake Azure: unexpected blob request {req.method} {req.url}")


def _is_action(req: Recorded) -> bool:
    """POSTs that change state; reads dressed as POST (listSecrets, listKeys, discovery) are not writes."""
    if req.method != "POST":
        return False
    return not re.search(r"/(listSecrets|listKeys|listCredentials|list|discovery)$", req.path, re.IGNORECASE)


_COLLECTIONS = re.compile(
    r"/(jobs|schedules|batchEndpoints|deployments|versions|components|data|models)$", re.I
)


def _looks_like_collection(path: str) -> bool:
    return bool(_COLLECTIONS.search(path))


def _response(prepared: requests.PreparedRequest, reply: Reply) -> requests.Response:
    body = reply.body
    headers = {"x-ms-request-id": str(uuid.uuid4()), "Date": formatdate(usegmt=True)}
    if reply.json is not None:
        body = json.dumps(reply.json).encode()
        headers["Content-Type"] = "application/json; charset=utf-8"
    headers.update(reply.headers)
    headers.setdefault("Content-Length", str(len(body)))
    raw = HTTPResponse(
        body=io.BytesIO(body),
        headers=headers,
        status=reply.status,
        preload_content=False,
        decode_content=False,
        request_method=prepared.method,
    )
    resp = requests.Response()
    resp.status_code = reply.status
    resp.headers = CaseInsensitiveDict(headers)
    resp.raw = raw
    resp.url = prepared.url or ""
    resp.request = prepared
    resp.reason = {
        200: "OK",
        201: "Created",
        202: "Accepted",
        204: "No Content",
        206: "Partial Content",
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
    }.get(reply.status, "Status")
    resp.encoding = "utf-8"
    return resp


TENANT = "22222222-3333-4444-5555-666666666666"


class FakeCredential:
    """A TokenCredential handing out unsigned JWTs for the requested audience (the SDK reads `aud` and
    `tid`)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        audience = scopes[0].removesuffix("/.default") if scopes else ""
        expires = int(time.time()) + 3600
        claims = {
            "aud": audience,
            "tid": TENANT,
            "oid": "33333333-0000-0000-0000-000000000000",
            "exp": expires,
        }
        token = ".".join(_b64(part) for part in ({"alg": "none", "typ": "JWT"}, claims)) + ".sig"
        return AccessToken(token, expires)


def _b64(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
