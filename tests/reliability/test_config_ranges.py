"""Session 4 hostile pass: `train.seed` outside what scikit-learn takes ([0, 2**32 - 1]) passed the config check
and failed only in the train step, after prep had run, with scikit-learn's InvalidParameterError in the step log.
Issue 15 asks for range validation at load time (one line naming the key, exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.config import ConfigError, load_settings


@pytest.mark.parametrize("seed", [-1, 2**32], ids=["negative", "above-uint32"])
def test_a_seed_scikit_learn_refuses_is_a_config_error(tmp_path: Path, seed: int) -> None:
    config = tmp_path / "amlops.yaml"
    config.write_text(f"train:\n  seed: {seed}\n", encoding="utf-8")
    before = config.read_bytes()
    with pytest.raises(ConfigError, match=r"train\.seed") as caught:
        load_settings(config, environ={})
    assert caught.value.exit_code == 2
    assert config.read_bytes() == before
