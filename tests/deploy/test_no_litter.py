"""Builds leave nothing behind: `make package` writes only the project's build/ and
vendor/ (and the runtime cache), leaves /tmp and its temporary directory as they were, and
packaging an archived runtime never unpacks it (it once left 881 MB in /tmp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.bundled_runtime import ARCHIVE_NAME
from deployment.package import chalice_package
from deployment.project import copy_project
from layer_build.archive import pack
from layer_build.flavors import FLAVORS
from tests.fresh_build import make_package_run

pytestmark = [pytest.mark.deploy, pytest.mark.slow]


def test_make_package_leaves_tmp_as_it_was(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What `make package STAGE=dev` runs, on a copy of the project, with a /tmp (or a
    TMPDIR) of its own that is empty afterwards (`tests/fresh_build.py`; the same run's
    zips are the reproducible-build check's)."""
    run = make_package_run(tmp_path_factory)
    project = run.project
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    if run.private_tmp:
        assert run.stdout.split("LEFT IN TMP:")[1].split() == []
    else:
        assert run.left_in_tmpdir == []
    # build/ holds the package only: the install-and-prune tree is gone once vendor/ is.
    built = [p.relative_to(project / "build").as_posix() for p in (project / "build").glob("*/*")]
    assert built == ["lite/dev-cloudformation"]
    assert sorted(p.name for p in (project / "build/lite/dev-cloudformation").iterdir()) == [
        "deployment.zip", "layer-deployment.zip", "merge-template.json", "sam.json"]  # fmt: skip
    assert (project / "vendor" / "numpy").is_dir()
    assert "layer-deployment.zip" in run.stdout  # the size table
    assert "build/ holds" in run.stdout and "make clean frees both" in run.stdout
    assert "x86_64: $0.0000166667 per GB-s" in run.stdout


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
