"""Where things live in a checkout, for the offline tooling (Chalice never packages this).

The one definition of the project directory; `make vendor` and `make package` write
`vendor/` and `build/` here, tests never do (they use `runtime_cache_dir()` or a tmp dir).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
CHALICE_DIR = PROJECT_DIR / ".chalice"
CHALICE_CONFIG = CHALICE_DIR / "config.json"
BUILD_DIR = PROJECT_DIR / "build"
VENDOR_DIR = PROJECT_DIR / "vendor"

CACHE_DIR_VARIABLE = "KERAS_LAMBDA_CACHE_DIR"


def user_cache_dir() -> Path:
    """Built runtimes and wheels shared by every checkout: $KERAS_LAMBDA_CACHE_DIR, else
    $XDG_CACHE_HOME/keras-lambda-serving, else ~/.cache/keras-lambda-serving."""
    explicit = os.environ.get(CACHE_DIR_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "keras-lambda-serving"
