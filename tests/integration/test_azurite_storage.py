"""Storage by URL against Azurite: fsspec/adlfs round trips, the runner reading and writing abfs://, and MLflow
artifacts on wasbs:// (directly, and through an MLflow server)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from amlops import storage
from amlops.config import Settings
from amlops.runner.local import run_pipeline

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "runner" / "fixtures"


@pytest.fixture
def blob_env(azurite_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string)
    from azure.storage.blob import BlobServiceClient

    container = f"t{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite_connection_string).create_container(container)
    return container


def test_upload_download_round_trip(blob_env: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")
    url = f"abfs://{blob_env}/data/v1"
    storage.upload(src, url)
    assert storage.exists(f"{url}/sub/b.txt")
    back = storage.download(url, tmp_path / "back")
    assert (back / "a.txt").read_text() == "alpha"
    assert (back / "sub" / "b.txt").read_text() == "beta"
    with pytest.raises(FileNotFoundError):
        storage.download(f"abfs://{blob_env}/nope", tmp_path / "nope")


def test_runner_reads_abfs_input_and_writes_abfs_output(
    blob_env: str, tmp_path: Path, settings: Settings
) -> None:
    storage.upload(FIXTURES / "data" / "files", f"abfs://{blob_env}/raw")
    src = tmp_path / "p"
    shutil.copytree(FIXTURES, src)
    yml = src / "pipelines" / "basic.yml"
    yml.write_text(
        yml.read_text().replace(
            "  total:\n    type: uri_file\n",
            f"  total:\n    type: uri_file\n    path: abfs://{blob_env}/out/total.json\n",
        )
    )
    result = run_pipeline(yml, {"raw": f"abfs://{blob_env}/raw"}, settings, quiet=True)
    with storage.open_file(f"abfs://{blob_env}/out/total.json") as fh:
        delivered = json.loads(fh.read())
    assert delivered["total"] == pytest.approx(5 * 2.5)
    assert json.loads(result.outputs["total"].read_text()) == delivered


def test_mlflow_artifacts_on_wasbs_with_a_connection_string(blob_env: str, tmp_path: Path) -> None:
    import mlflow

    from amlops.tracking import ensure_experiment

    account = "devstoreaccount1"
    settings = Settings(base_dir=tmp_path)
    settings.mlflow.artifact_root = f"wasbs://{blob_env}@{account}.blob.core.windows.net/mlartifacts"
    ensure_experiment(settings, "wasbs-test")
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_experiment("wasbs-test")
    (tmp_path / "note.txt").write_text("hello blob")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "note.txt"))
    assert run.info.artifact_uri.startswith(f"wasbs://{blob_env}@")
    fetched = mlflow.artifacts.download_artifacts(
        f"runs:/{run.info.run_id}/note.txt", dst_path=str(tmp_path / "d")
    )
    assert Path(fetched).read_text() == "hello blob"


def test_mlflow_server_proxies_artifacts_to_azurite(
    mlflow_server_uri: str, azurite_connection_string: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow
    from azure.storage.blob import BlobServiceClient

    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)  # the client needs no storage secret
    mlflow.set_tracking_uri(mlflow_server_uri)
    mlflow.set_experiment(f"server-{uuid.uuid4().hex[:8]}")
    (tmp_path / "m.txt").write_text("via server")
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
        mlflow.log_artifact(str(tmp_path / "m.txt"))
    blobs = BlobServiceClient.from_connection_string(azurite_connection_string).get_container_client("mlflow")
    names = [b.name for b in blobs.list_blobs()]
    assert any(n.endswith(f"{run.info.run_id}/artifacts/m.txt") for n in names), names
    assert mlflow.get_run(run.info.run_id).data.metrics["x"] == 1.0
