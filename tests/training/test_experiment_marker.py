"""The note that an experiment exists (which saves a step MLflow's import) is checked against the store: after a
registry reset a new database can take the old one's inode, and a stale note must not name a missing experiment."""

from __future__ import annotations

from pathlib import Path

from amlops.config import Settings
from amlops.tracking import _marker, ensure_experiment


def test_a_stale_note_is_not_trusted(tmp_path: Path) -> None:
    settings = Settings(base_dir=tmp_path)
    real = ensure_experiment(settings, "amlops-scoring")
    marker = _marker(settings, "amlops-scoring")
    assert marker is not None and marker.read_text() == real
    marker.write_text("42")  # what a reset registry reusing the inode looks like: an id this store lacks
    assert ensure_experiment(settings, "amlops-scoring") == real
    assert marker.read_text() == real
