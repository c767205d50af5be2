"""Same inputs, same bytes: a fresh build of the lite runtime, packaged, gives zips
identical to those from the cached runtime (built earlier, possibly by another run)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from layer_build.build import build_runtime
from layer_build.flavors import FLAVORS
from tests.lambda_like.conftest import package_flavor

pytestmark = pytest.mark.lambda_like


def digests(package: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(package.glob("*.zip"))}  # fmt: skip


def test_rebuilding_the_lite_package_gives_identical_zips(
    packaged: Callable[[str], Path], tmp_path: Path
) -> None:
    cached = digests(packaged("lite"))
    assert set(cached) == {"deployment.zip", "layer-deployment.zip"}
    build_runtime(FLAVORS["lite"], vendor_dir=tmp_path / "vendor", work_dir=tmp_path / "work")
    assert digests(package_flavor("lite", tmp_path / "vendor", tmp_path / "fresh")) == cached
