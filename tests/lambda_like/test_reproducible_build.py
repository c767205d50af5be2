"""Same inputs, same bytes: rebuilding and repackaging the lite flavor changes no hash."""

from __future__ import annotations

import hashlib

import pytest

from deployment.package import chalice_package, package_dir
from layer_build.build import build_runtime
from layer_build.flavors import FLAVORS

pytestmark = pytest.mark.lambda_like


def digests() -> dict[str, str]:
    flavor = FLAVORS["lite"]
    build_runtime(flavor)
    chalice_package(flavor)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(package_dir(flavor).glob("*.zip"))}  # fmt: skip


def test_rebuilding_the_lite_package_gives_identical_zips() -> None:
    first = digests()
    assert set(first) == {"deployment.zip", "layer-deployment.zip"}
    assert digests() == first
