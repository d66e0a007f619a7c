"""`register_snapshot`: upload to the workspace's datastore, the data asset PUT, digest tag, idempotency."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakeazure import CONTAINER, STORAGE_ACCOUNT, WS_PATH, FakeAzure

from amlops.azure.data_assets import register_snapshot, snapshot_digest, version_for
from amlops.config import Settings
from amlops.console import UserError


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    folder = tmp_path / "snap"
    (folder / "part").mkdir(parents=True)
    (folder / "part" / "a.csv").write_text("date,units_sold\n2026-01-01,3\n")
    (folder / "b.csv").write_text("date,units_sold\n2026-01-02,4\n")
    return folder


def test_register_uploads_and_creates_a_versioned_asset(
    fake: FakeAzure, settings: Settings, snapshot: Path
) -> None:
    digest = snapshot_digest(snapshot)
    asset = register_snapshot(snapshot, "demand-raw", settings)

    version = version_for(digest)
    assert asset == f"azureml:demand-raw:{version}"
    # The files went to the workspace's default blob datastore (credentials from listSecrets).
    assert fake.calls("POST", r"/datastores/workspaceblobstore/listSecrets$")
    uploaded = {k.split("/snap/", 1)[1]: v for k, v in fake.blobs.items() if "/snap/" in k}
    assert uploaded == {
        "part/a.csv": (snapshot / "part" / "a.csv").read_bytes(),
        "b.csv": (snapshot / "b.csv").read_bytes(),
    }
    blob_host = f"{STORAGE_ACCOUNT}.blob.core.windows.net"
    assert all(k.startswith(f"{blob_host}/{CONTAINER}/LocalUpload/") for k in fake.blobs if "/snap/" in k)
    # The data asset version: PUT with the datastore path, the type and the digest tag.
    [put] = fake.calls("PUT", r"/data/demand-raw/versions/")
    assert put.path == f"{WS_PATH}/data/demand-raw/versions/{version}"
    props = put.json()["properties"]
    assert props["dataType"] == "uri_folder"
    assert re.fullmatch(
        r"azureml://datastores/workspaceblobstore/paths/LocalUpload/[0-9a-f]{64}/snap", props["dataUri"]
    )
    assert props["tags"]["data.digest"] == digest


def test_registering_the_same_snapshot_again_uploads_nothing(
    fake: FakeAzure, settings: Settings, snapshot: Path
) -> None:
    first = register_snapshot(snapshot, "demand-raw", settings)
    before = len(fake.requests)
    second = register_snapshot(snapshot, "demand-raw", settings)

    assert second == first
    after = fake.requests[before:]
    assert [r.method for r in after] == ["GET"]


def test_changed_snapshot_gets_a_new_version(fake: FakeAzure, settings: Settings, snapshot: Path) -> None:
    first = register_snapshot(snapshot, "demand-raw", settings)
    (snapshot / "b.csv").write_text("date,units_sold\n2026-01-02,5\n")
    second = register_snapshot(snapshot, "demand-raw", settings)

    assert first != second
    assert len(fake.calls("PUT", r"/data/demand-raw/versions/")) == 2


def test_explicit_version_with_other_content_is_refused(
    fake: FakeAzure, settings: Settings, snapshot: Path, tmp_path: Path
) -> None:
    register_snapshot(snapshot, "demand-raw", settings, version="1")
    other = tmp_path / "other"
    other.mkdir()
    (other / "c.csv").write_text("x\n1\n")
    with pytest.raises(UserError, match=r"demand-raw:1 already exists with different content"):
        register_snapshot(other, "demand-raw", settings, version="1")
    assert len(fake.calls("PUT", r"/data/demand-raw/versions/")) == 1


def test_mltable_needs_an_mltable_file(fake: FakeAzure, settings: Settings, snapshot: Path) -> None:
    with pytest.raises(UserError, match="no MLTable file"):
        register_snapshot(snapshot, "demand-raw", settings, kind="mltable")
    (snapshot / "MLTable").write_text(
        "paths:\n  - pattern: ./*.csv\ntransformations:\n  - read_delimited:\n"
        "      delimiter: ','\n      header: all_files_same_headers\n"
    )
    register_snapshot(snapshot, "demand-table", settings, kind="mltable")
    [put] = fake.calls("PUT", r"/data/demand-table/versions/")
    assert put.json()["properties"]["dataType"] == "mltable"


def test_digest_ignores_caches_but_not_content(tmp_path: Path, snapshot: Path) -> None:
    base = snapshot_digest(snapshot)
    (snapshot / "__pycache__").mkdir()
    (snapshot / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert snapshot_digest(snapshot) == base
    (snapshot / "part" / "a.csv").rename(snapshot / "part" / "renamed.csv")
    assert snapshot_digest(snapshot) != base


def test_not_a_folder(fake: FakeAzure, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a folder"):
        register_snapshot(tmp_path / "missing", "demand-raw", settings)
    assert fake.requests == []
