"""Builds leave nothing behind: `make package` writes only the project's build/ and
vendor/ (and the runtime cache), leaves /tmp and its temporary directory as they were, and
packaging an archived runtime never unpacks it (it once left 881 MB in /tmp)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.bundled_runtime import ARCHIVE_NAME
from deployment.package import chalice_package
from deployment.project import copy_project
from layer_build.archive import pack
from layer_build.flavors import FLAVORS
from project_paths import PROJECT_DIR

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


def private_tmp() -> bool:
    """A mount namespace with an empty /tmp can be had (root and unshare(1))."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def test_make_package_leaves_tmp_as_it_was(tmp_path: Path) -> None:
    """What `make package STAGE=dev` runs, on a copy of the project. In a mount namespace
    of its own whose /tmp is an empty tmpfs (the copy reached through /var/tmp, where the
    real /tmp is bound), whatever writes to /tmp, by TMPDIR or by a path of its own, shows
    up there; without one, TMPDIR (pip's, Chalice's, every tempfile's) is an empty
    directory watched afterwards."""
    project = copy_project(tmp_path / "project", tmp_path / "no-vendor")
    command = [sys.executable, "-m", "deployment.package", "--stage", "dev", "--project-dir"]
    if private_tmp():
        seen_as = Path("/var/tmp") / project.relative_to("/tmp")
        script = ("mount --bind /tmp /var/tmp && mount -t tmpfs tmpfs /tmp && "
                  f"{' '.join(command)} {seen_as} && echo LEFT IN TMP: && ls -A /tmp")  # fmt: skip
        run = ["unshare", "-m", "sh", "-c", script]
        env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
    else:
        scratch = tmp_path / "tmpdir"
        scratch.mkdir()
        run = [*command, str(project)]
        env = {**os.environ, "TMPDIR": str(scratch)}
    result = subprocess.run(run, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=900,
                            check=False, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    if private_tmp():
        assert result.stdout.split("LEFT IN TMP:")[1].split() == []
    else:
        assert list(scratch.iterdir()) == []
    # build/ holds the package only: the install-and-prune tree is gone once vendor/ is.
    built = [p.relative_to(project / "build").as_posix() for p in (project / "build").glob("*/*")]
    assert built == ["lite/dev-cloudformation"]
    assert sorted(p.name for p in (project / "build/lite/dev-cloudformation").iterdir()) == [
        "deployment.zip", "layer-deployment.zip", "merge-template.json", "sam.json"]  # fmt: skip
    assert (project / "vendor" / "numpy").is_dir()
    assert "layer-deployment.zip" in result.stdout  # the size table
    assert "build/ holds" in result.stdout and "make clean frees both" in result.stdout
    assert "x86_64: $0.0000166667 per GB-s" in result.stdout


def test_packaging_an_archived_runtime_never_unpacks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chalice imports app.py to package it; with an archive in vendor/, app.py would
    unpack it (858 MB for tensorflow) unless it knows it runs under the Chalice CLI."""
    tree = tmp_path / "tree"
    (tree / "marker").mkdir(parents=True)
    (tree / "marker" / "__init__.py").write_text("")
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    pack(tree, vendor / ARCHIVE_NAME)
    project = copy_project(tmp_path / "project", vendor)
    unpack_root = tmp_path / "unpack"
    monkeypatch.setenv("RUNTIME_UNPACK_DIR", str(unpack_root))
    chalice_package(FLAVORS["tensorflow"], "dev-tensorflow", project_dir=project,
                    out=tmp_path / "package")  # fmt: skip
    assert (tmp_path / "package" / "sam.json").exists()
    assert not unpack_root.exists()
