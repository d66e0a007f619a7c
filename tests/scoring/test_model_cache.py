"""One model cache for scoring and the loop: keyed by the artifact, verified, atomic."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scoring_helpers import PIPELINE, bare_predictions, read_predictions

from amlops import registry
from amlops.config import Settings, load_settings
from amlops.console import UserError

NAME = "demand-cache"
MANIFEST = ".amlops-cache.json"


def settings_on(root: Path, registry_dir: Path) -> Settings:
    """Settings rooted in `root` (the model cache lives there) on the SQLite registry in `registry_dir`."""
    store = {
        "tracking_uri": f"sqlite:///{registry_dir / 'mlflow.db'}",
        "artifact_root": str(registry_dir / "art"),
    }
    (root / "amlops.yaml").write_text(
        yaml.safe_dump({"model_name": NAME, "experiment": "cache", "mlflow": store})
    )
    return load_settings(root / "amlops.yaml", environ={})


def register_champion(settings: Settings, folder: Path) -> str:
    """Log `folder` as a run's `model` artifact, register it and make it champion (as the pipeline does)."""
    client = registry.client_for(settings)
    found = client.get_experiment_by_name("cache")
    experiment_id = (
        found.experiment_id
        if found
        else client.create_experiment(
            "cache", artifact_location=Path(settings.artifact_root).resolve().as_uri()
        )
    )
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, str(folder), "model")
    client.set_terminated(run.info.run_id)
    registry.ensure_registered_model(client, NAME)
    mv = client.create_model_version(NAME, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    registry.promote(client, NAME, mv.version, reason="test", actor="test")
    return str(mv.version)


def contents(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def download(settings: Settings, version: str = "1") -> Path:
    from amlops.scoring import download_model

    return download_model(settings, registry.client_for(settings), NAME, version)


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty MLflow database: copying it is seconds cheaper than creating one per registry."""
    root = tmp_path_factory.mktemp("cache-template")
    settings = settings_on(root, root / "registry")
    registry.client_for(settings).search_experiments()
    return root / "registry" / "mlflow.db"


@pytest.fixture
def reg(tmp_path: Path, empty_db: Path) -> Path:
    return new_registry(tmp_path / "registry", empty_db)


def new_registry(folder: Path, empty_db: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copyfile(empty_db, folder / "mlflow.db")
    return folder


_PHASE = """
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from test_model_cache import download, register_champion, settings_on

from amlops.loop import champion

settings = settings_on(Path(sys.argv[2]), Path(sys.argv[3]))
register_champion(settings, Path(sys.argv[4]))
print(download(settings))
print(champion(settings).model_dir)
"""


def phase(root: Path, registry_dir: Path, model: Path) -> list[Path]:
    """Register `model` as the champion and fetch it, in a process of its own: a registry reset happens
    between processes (in one process MLflow keeps the deleted database open)."""
    here = str(Path(__file__).parent)
    proc = subprocess.run(
        [sys.executable, "-c", _PHASE, here, str(root), str(registry_dir), str(model)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [Path(line) for line in proc.stdout.split()[-2:]]


def test_a_reset_registry_never_serves_the_stale_model(
    tmp_path: Path, reg: Path, empty_db: Path, model_dirs: dict[str, Path]
) -> None:
    """Fails on a cache keyed by name and version: after the reset, v1 is another model."""
    for path in phase(tmp_path, reg, model_dirs["v1"]):  # score's download_model and the loop's champion
        assert contents(path) == contents(model_dirs["v1"])

    shutil.rmtree(reg)  # the registry is reset: a new database at the same URI, the same name and version
    for path in phase(tmp_path, new_registry(reg, empty_db), model_dirs["v2"]):
        assert contents(path) == contents(model_dirs["v2"])


@pytest.mark.parametrize("fault", ["truncated", "no-manifest", "other-mlmodel", "file-deleted"])
def test_a_damaged_entry_is_downloaded_again(
    tmp_path: Path, reg: Path, model_dirs: dict[str, Path], fault: str
) -> None:
    """Fails on a cache that trusts any folder with an MLmodel file."""
    settings = settings_on(tmp_path, reg)
    register_champion(settings, model_dirs["v1"])
    entry = download(settings)
    biggest = max(
        (p for p in entry.rglob("*") if p.is_file() and p.name != MANIFEST), key=lambda p: p.stat().st_size
    )
    if fault == "truncated":
        biggest.write_bytes(biggest.read_bytes()[:100])
    elif fault == "no-manifest":
        (entry / MANIFEST).unlink()
    elif fault == "other-mlmodel":
        (entry / "MLmodel").write_text(
            (entry / "MLmodel").read_text().replace("python_function", "python_fn")
        )
    else:
        biggest.unlink()
    again = download(settings)
    assert contents(again) == contents(model_dirs["v1"])


def test_a_failed_download_leaves_nothing_behind(
    tmp_path: Path, reg: Path, model_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.artifacts

    settings = settings_on(tmp_path, reg)
    register_champion(settings, model_dirs["v1"])
    real = mlflow.artifacts.download_artifacts

    def dies_half_way(*args: Any, dst_path: str, **kwargs: Any) -> str:
        (Path(dst_path) / "model").mkdir()
        (Path(dst_path) / "model" / "MLmodel").write_text("flavors: {}\n")  # half a model
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", dies_half_way)
    with pytest.raises(UserError, match=f"model {NAME} v1: cannot download .*No space left"):
        download(settings)
    cache = settings.state_path / "models" / NAME
    assert [p.name for p in cache.iterdir()] == []  # no entry, no temporary folder
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", real)
    assert contents(download(settings)) == contents(model_dirs["v1"])


def test_an_unknown_version_is_one_line(tmp_path: Path, reg: Path, model_dirs: dict[str, Path]) -> None:
    settings = settings_on(tmp_path, reg)
    register_champion(settings, model_dirs["v1"])
    with pytest.raises(UserError, match=f"model '{NAME}' has no version 7"):
        download(settings, "7")


@pytest.mark.slow
def test_scoring_after_a_reset_uses_the_new_model(
    tmp_path: Path,
    reg: Path,
    empty_db: Path,
    model_dirs: dict[str, Path],
    demand: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`amlops score` end to end: the predictions after the reset are the new model's."""

    phase(tmp_path, reg, model_dirs["v1"])
    week = demand.head(200)
    data = tmp_path / "week.parquet"
    week.to_parquet(data, index=False)
    amlops = str(Path(sys.executable).with_name("amlops"))
    args = [amlops, "score", "--pipeline", str(PIPELINE), "--input", str(data)]
    env = {**os.environ, "AMLOPS_CONFIG": str(tmp_path / "amlops.yaml")}
    first = subprocess.run([*args, "--out", "s1"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr

    shutil.rmtree(reg)  # reset: from another process, as a user would
    phase(tmp_path, new_registry(reg, empty_db), model_dirs["v2"])
    second = subprocess.run([*args, "--out", "s2"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stdout + second.stderr
    scored = read_predictions(tmp_path / "s2")
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), bare_predictions(model_dirs["v2"], week))
