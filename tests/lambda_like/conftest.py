"""The packaged zips, made once per session from the cached runtimes (built once per
lock-file hash outside the checkout) in a copy of the project under pytest's tmp dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deployment.cfn_lint import cfn_lint_errors
from deployment.package import chalice_package
from deployment.project import copy_project
from layer_build.cache import runtime_vendor_dir
from layer_build.flavors import FLAVORS
from tests.conftest import once


def package_flavor(name: str, vendor: Path, into: Path) -> Path:
    """`chalice package` the flavor's default stage of a project copy with `vendor`."""
    project = copy_project(into / "project", vendor)
    out = into / "package"
    chalice_package(FLAVORS[name], project_dir=project, out=out)  # includes the size gate
    return out


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """flavor name -> its package directory (deployment.zip, layer zip, sam.json); each
    flavor packaged once per run, whichever worker asks first."""

    def make(name: str, into: Path) -> None:
        package_dir = package_flavor(name, runtime_vendor_dir(FLAVORS[name]), into)
        assert cfn_lint_errors(package_dir / "sam.json") == []

    def package(name: str) -> Path:
        return once(tmp_path_factory, f"packaged-{name}", lambda into: make(name, into)) / "package"

    return package
