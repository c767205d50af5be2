"""Deployment tests: templates from `chalice package`, and `chalice deploy` against moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from layer_build.build import build_runtime
from layer_build.flavors import FLAVORS


@pytest.fixture(scope="package")
def lite_vendor() -> None:
    """vendor/ holds the real lite runtime (what `chalice deploy` puts in the layer)."""
    build_runtime(FLAVORS["lite"])


def load(path: Path) -> Any:
    return json.loads(path.read_text())
