"""The packaged zips, made once per run from the cached runtimes (built once per
lock-file hash outside the checkout) in a copy of the project under pytest's tmp dir
(`tests.packages`: the deploy tier reads the same packages)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from layer_build.flavors import FLAVORS
from tests.packages import Package, Packages, lint_errors


def flavor_package(name: str) -> Package:
    """The flavor's default stage, packaged with its own runtime (what `make package`
    FLAVOR=name makes)."""
    return Package(FLAVORS[name].stage, runtime=name, flavor=name)


@pytest.fixture(scope="session")
def packaged(packages: Packages) -> Callable[[str], Path]:
    """flavor name -> its package directory (deployment.zip, layer zip, sam.json), made
    once per run, whichever worker asks first; its template passes cfn-lint."""

    def package(name: str) -> Path:
        package_dir = packages(flavor_package(name))
        assert lint_errors(package_dir) == []
        return package_dir

    return package
