"""Generate the AML environment's pinned pip requirements from uv.lock (never edit components/environment/conda.yml
by hand). `--write` regenerates it, `--check` fails when it disagrees with the lock (make test runs the check).

    python tools/gen_env_requirements.py --write | --check
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_FILE = ROOT / "components" / "environment" / "conda.yml"
HEADER = """\
# GENERATED from uv.lock by `make env-requirements` (tools/gen_env_requirements.py). Do not edit by hand:
# a test fails when this file and the lock disagree.
name: amlops
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def find_uv() -> str:
    found = shutil.which("uv") or str(ROOT / "tools" / ".venv-uv" / "bin" / "uv")
    if not Path(found).exists():
        raise SystemExit("error: uv not found (run `make setup`)")
    return found


def pinned_requirements() -> list[str]:
    """Runtime (non-dev) dependencies of the project, pinned as in uv.lock, with their environment markers."""
    text = subprocess.run(
        [
            find_uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted(
        (ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), key=str.lower
    )


def render(requirements: list[str]) -> str:
    return HEADER + "".join(f'      - "{req}"\n' for req in requirements)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    expected = render(pinned_requirements())
    if args.write:
        CONDA_FILE.write_text(expected, encoding="utf-8")
        print(f"wrote {_shown(CONDA_FILE)}")
        return 0
    current = CONDA_FILE.read_text(encoding="utf-8") if CONDA_FILE.exists() else ""
    if current != expected:
        print(
            f"error: {_shown(CONDA_FILE)} disagrees with uv.lock: run `make env-requirements`",
            file=sys.stderr,
        )
        return 1
    print(f"{_shown(CONDA_FILE)} matches uv.lock")
    return 0


if __name__ == "__main__":
    sys.exit(main())
