"""Same inputs, same bytes: a fresh build of the lite runtime, packaged, gives zips
identical to those from the cached runtime (built earlier, possibly by another run). The
fresh build is `make package STAGE=dev`'s from scratch, run once for this test and the
no-litter check (`tests/fresh_build.py`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fresh_build import make_package_run

pytestmark = pytest.mark.lambda_like


def digests(package: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(package.glob("*.zip"))}  # fmt: skip


def test_rebuilding_the_lite_package_gives_identical_zips(
    packaged: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    cached = digests(packaged("lite"))
    assert set(cached) == {"deployment.zip", "layer-deployment.zip"}
    fresh = make_package_run(tmp_path_factory)  # the runtime built from scratch, packaged
    assert fresh.returncode == 0, fresh.stdout[-3000:] + fresh.stderr[-3000:]
    assert digests(fresh.package) == cached
