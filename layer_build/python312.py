"""Locate the base Python 3.12 interpreter (not the venv's: its site-packages would leak)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

FINDER = Path(__file__).resolve().parent.parent / "scripts" / "find-python312"


@functools.cache
def python312() -> str:
    """The base interpreter behind the venv when it is 3.12, else the finder's answer."""
    base = Path(sys.base_prefix) / "bin" / "python3.12"
    if sys.version_info[:2] == (3, 12) and base.exists():
        return str(base)
    return subprocess.run([str(FINDER)], capture_output=True, text=True, check=True).stdout.strip()
