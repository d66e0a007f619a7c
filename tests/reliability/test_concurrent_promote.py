"""Session 4 hostile pass: two `amlops promote` at once. The registry stays consistent (the promotion lock), but
the command said "v3 is now the champion (was v2)" while `amlops history` recorded v1 as the previous champion:
the command read the champion before taking the lock, and the other promote moved it in between. The message now
takes the previous champion from the recorded event, read under the lock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amlops import registry
from amlops.cli import app
from amlops.config import Settings


def test_the_promote_message_names_the_champion_it_replaced_under_the_lock(
    scoring_settings: Settings,
    register_model: Callable[[Path], str],
    model_dirs: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = scoring_settings.model_name
    v1, v2, v3 = (register_model(model_dirs[k]) for k in ("v1", "v2", "v1"))
    registry.promote(scoring_settings, name, v2, reason="first", actor="test")
    real_promote = registry.promote

    def other_promote_first(client: Any, model_name: str, version: str, **kw: Any) -> Any:
        # The other `amlops promote` wins the lock between this command's read and its own promotion.
        real_promote(client, model_name, v1, reason="the other promote", actor="other")
        return real_promote(client, model_name, version, **kw)

    monkeypatch.setattr(registry, "promote", other_promote_first)
    monkeypatch.chdir(scoring_settings.base_dir)
    monkeypatch.setenv("AMLOPS_CONFIG", str(scoring_settings.base_dir / "amlops.yaml"))
    result = CliRunner().invoke(app, ["promote", v3, "--reason", "race"])

    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"v{v3} is now the champion of {name} (was v{v1})" in text
    events = registry.history(scoring_settings, name)
    assert [(e.version, e.previous) for e in events] == [(v2, None), (v1, v2), (v3, v1)]
    champion = registry.resolve_champion(registry.client_for(scoring_settings), name)
    assert champion is not None and champion[0] == v3
