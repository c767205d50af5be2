"""`chalice package` outputs made once per test run and read by every test that needs the
same one: the deploy tier's template checks, Terraform, cfn-lint and the Lambda-like
runs. Each package (stage, format, flavor, API key, batch path on or off, runtime as
vendor/) is made by whichever worker asks first, under a file lock, in the run's shared
folder (`tests.conftest.once`); the others wait and reuse it. A package is read, never
changed: a test that changes one copies it first.

Packages of the same runtime and batch setting come from one shared copy of the project,
as a user packages stage after stage from one checkout (Chalice reuses the layer zip it
built for the first); runs of Chalice in that copy hold its lock."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployment.cfn_lint import cfn_lint_errors
from deployment.package import chalice_package
from deployment.project import copy_project
from layer_build.cache import runtime_vendor_dir
from layer_build.flavors import FLAVORS
from layer_build.platforms import ARM64
from tests.batch_stages import with_batch
from tests.conftest import once

#: vendor/ of a project copy: the cached runtime of a flavor (and architecture).
RUNTIMES = {
    "lite": lambda: runtime_vendor_dir(FLAVORS["lite"]),
    "lite-arm64": lambda: runtime_vendor_dir(FLAVORS["lite"], arch=ARM64),
    "tensorflow": lambda: runtime_vendor_dir(FLAVORS["tensorflow"]),
}
LINT = "cfn-lint.json"


@dataclass(frozen=True)
class Package:
    """One `chalice package` run; `flavor` defaults to the stage's engine's."""

    stage: str
    pkg_format: str = "cloudformation"
    api_key: bool = False
    batch: bool = False
    runtime: str = "lite"
    flavor: str = ""

    @property
    def flavor_name(self) -> str:
        return self.flavor or ("tensorflow" if self.stage.endswith("tensorflow") else "lite")

    @property
    def name(self) -> str:
        parts = [self.stage, self.pkg_format, self.flavor_name, f"vendor-{self.runtime}"]
        parts += ["api-key"] * self.api_key + ["batch"] * self.batch
        return "package-" + "-".join(parts)


class Packages:
    """The run's shared project copies and packages."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory

    def project(self, runtime: str = "lite", batch: bool = False) -> Path:
        """A copy of the project with `runtime` as vendor/ (and, with `batch`, every
        stage's batch path switched on). Read it freely; run Chalice in it only
        inside `chalice_in`."""

        def make(into: Path) -> None:
            project = copy_project(into / "project", RUNTIMES[runtime]())
            if batch:
                with_batch(project)

        name = f"project-{runtime}" + "-batch" * batch
        return once(self.tmp_path_factory, name, make) / "project"

    @contextmanager
    def chalice_in(self, runtime: str = "lite", batch: bool = False) -> Iterator[Path]:
        """The shared project, locked: Chalice writes its cache (.chalice/deployments)."""
        project = self.project(runtime, batch)
        with open(project.parent / "chalice.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield project
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def __call__(self, package: Package) -> Path:
        """The package's folder (deployment.zip, the layer zip, the template); with
        CloudFormation, cfn-lint's verdict beside it (`lint_errors`)."""

        def make(into: Path) -> None:
            flavor = FLAVORS[package.flavor_name]
            with self.chalice_in(package.runtime, package.batch) as project:
                chalice_package(flavor, package.stage, package.pkg_format, package.api_key,
                                project_dir=project, out=into / "package")  # fmt: skip
            if package.pkg_format == "cloudformation":
                errors = cfn_lint_errors(into / "package" / "sam.json")
                (into / LINT).write_text(json.dumps(errors))

        return once(self.tmp_path_factory, package.name, make) / "package"


def lint_errors(package_dir: Path) -> list[str]:
    """cfn-lint's errors for a shared CloudFormation package's sam.json."""
    errors: list[str] = json.loads((package_dir.parent / LINT).read_text())
    return errors
