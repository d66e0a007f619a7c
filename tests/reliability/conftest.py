"""Fixtures of the reliability tests (faults and hostile inputs): see README.md in this folder for the list."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
