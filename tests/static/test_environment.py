"""The AML environment's pins come from uv.lock; the test fails when they drift apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "gen_env_requirements.py"


def test_environment_requirements_match_the_lock() -> None:
    proc = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_check_fails_when_a_pin_is_edited_by_hand(tmp_path: Path, monkeypatch) -> None:
    sys.path.insert(0, str(TOOL.parent))
    import gen_env_requirements as gen

    edited = tmp_path / "conda.yml"
    edited.write_text(gen.CONDA_FILE.read_text().replace("pandas==", "pandas==0.0.0+", 1))
    monkeypatch.setattr(gen, "CONDA_FILE", edited)
    assert gen.main(["--check"]) == 1


def test_environment_pins_every_runtime_library() -> None:
    conda = yaml.safe_load((ROOT / "components" / "environment" / "conda.yml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    names = {line.split("==")[0].lower() for line in pip}
    for lib in ("pandas", "scikit-learn", "mlflow", "pyarrow", "azure-ai-ml", "scipy", "pandera"):
        assert lib in names
    assert all("==" in line for line in pip)
