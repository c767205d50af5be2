"""`make package STAGE=dev` on a copy of the project with no vendor/: a fresh build of the
lite runtime (install, prune with proof), packaged. Run once per test run and read by
two tests: the no-litter check (it ran with an empty /tmp, or TMPDIR, to watch) and the
reproducible-build check (its zips are byte-identical to the cached runtime's package).
The build is the expensive part (about a minute of CPU); one proves both."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployment.project import copy_project
from project_paths import PROJECT_DIR
from tests.conftest import once

RESULT = "result.json"


@dataclass(frozen=True)
class MakePackageRun:
    """The run's project copy, its exit code and output, and what it left where it could
    have written temporary files (with `private_tmp`, /tmp was a tmpfs of its own and what
    was left is listed in stdout after "LEFT IN TMP:")."""

    project: Path
    returncode: int
    stdout: str
    stderr: str
    private_tmp: bool
    left_in_tmpdir: list[str]

    @property
    def package(self) -> Path:
        return self.project / "build" / "lite" / "dev-cloudformation"


def private_tmp() -> bool:
    """A mount namespace with an empty /tmp can be had (root and unshare(1))."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def _run(into: Path) -> None:
    """In a mount namespace of its own whose /tmp is an empty tmpfs (the copy reached
    through /var/tmp, where the real /tmp is bound), whatever writes to /tmp, by TMPDIR or
    by a path of its own, shows up there; without one, TMPDIR (pip's, Chalice's, every
    tempfile's) is an empty directory watched afterwards."""
    project = copy_project(into / "project", into / "no-vendor")
    command = [sys.executable, "-m", "deployment.package", "--stage", "dev", "--project-dir"]
    scratch = into / "tmpdir"
    if private_tmp():
        # Under /tmp the copy is hidden by the new tmpfs; elsewhere (TMPDIR set) it stays put.
        in_tmp = project.is_relative_to("/tmp")
        seen_as = Path("/var/tmp") / project.relative_to("/tmp") if in_tmp else project
        script = ("mount --bind /tmp /var/tmp && mount -t tmpfs tmpfs /tmp && "
                  f"{' '.join(command)} {seen_as} && echo LEFT IN TMP: && ls -A /tmp")  # fmt: skip
        run = ["unshare", "-m", "sh", "-c", script]
        env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    else:
        scratch.mkdir()
        run = [*command, str(project)]
        env = {**os.environ, "TMPDIR": str(scratch)}
    result = subprocess.run(run, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900,
                            check=False, env=env)  # fmt: skip
    left = sorted(p.name for p in scratch.iterdir()) if scratch.is_dir() else []
    (into / RESULT).write_text(json.dumps({
        "returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr,
        "private_tmp": private_tmp(), "left_in_tmpdir": left,
    }))  # fmt: skip


def make_package_run(tmp_path_factory: pytest.TempPathFactory) -> MakePackageRun:
    """The run's one `make package STAGE=dev` from scratch (read it, never change it)."""
    folder = once(tmp_path_factory, "make-package-fresh", _run)
    return MakePackageRun(folder / "project", **json.loads((folder / RESULT).read_text()))
