"""Deployment tests: templates from `chalice package`, and `chalice deploy` against moto.

They package a copy of the project whose vendor/ is the lite runtime from the cache
outside the checkout (built once per lock-file hash); the checkout is never written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from layer_build.cache import runtime_vendor_dir
from layer_build.flavors import FLAVORS


@pytest.fixture(scope="session")
def lite_vendor() -> Path:
    """The real lite runtime (what `chalice deploy` puts in the layer)."""
    return runtime_vendor_dir(FLAVORS["lite"])


def load(path: Path) -> Any:
    return json.loads(path.read_text())
