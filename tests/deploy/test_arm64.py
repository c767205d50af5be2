"""The lite runtime for arm64 (Graviton). No aarch64 CPython 3.12 can be had from the
registries this project reaches, so it is never imported or run here (docs/deploy.md
says what was tried). Proven instead: every shared object is aarch64 and needs glibc
<= 2.34, it needs no system library the x86_64 runtime does not, every wheel is an
aarch64 (or pure) one, the same pruning rules left nothing behind, the package passes
the size gate, a rebuild gives the same bytes, and -- where Debian's qemu-user-static is
installed -- glibc's aarch64 dynamic linker, run under qemu, loads every shared object
and binds every symbol but the CPython C API's, all of which CPython 3.12 exports."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from deployment.package import chalice_package
from deployment.project import copy_project
from layer_build.build import build_runtime
from layer_build.elf_check import check_tree
from layer_build.flavors import FLAVORS
from layer_build.platforms import ARM64, GLIBC_MAX, X86_64
from layer_build.prune_rules import rules_for
from layer_build.qemu_check import aarch64_sysroot, link_check, qemu
from layer_build.size_report import measure
from tests.deploy.conftest import load
from tests.packages import Package, Packages

pytestmark = pytest.mark.deploy

LOADERS = {"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


@pytest.fixture(scope="module")
def arm64_vendor() -> Path:
    from layer_build.cache import runtime_vendor_dir

    return runtime_vendor_dir(FLAVORS["lite"], arch=ARM64)


def test_every_shared_object_is_aarch64_within_glibc_2_34(
    arm64_vendor: Path, lite_vendor: Path
) -> None:
    report = check_tree(arm64_vendor, ARM64)
    assert report.problems == []
    assert len(report.files) >= 20 and {f.machine for f in report.files} == {183}
    assert report.highest_glibc <= GLIBC_MAX
    assert any(f.path.startswith("ai_edge_litert/") for f in report.files)
    assert any(f.path.startswith("numpy/_core/") for f in report.files)
    # Nothing from the system that the x86_64 runtime (run Lambda-like in CI) doesn't need.
    x86 = check_tree(lite_vendor, X86_64)
    assert report.system_libraries() - LOADERS <= x86.system_libraries() - LOADERS
    # Same packages, same files apart from the platform-specific ones.
    assert {p.name for p in arm64_vendor.iterdir()} == {p.name for p in lite_vendor.iterdir()}


def test_every_wheel_is_aarch64_or_pure(arm64_vendor: Path) -> None:
    tags = {}
    for wheel in arm64_vendor.glob("*.dist-info/WHEEL"):
        lines = wheel.read_text().splitlines()
        tags[wheel.parent.name] = [line.split(": ", 1)[1] for line in lines
                                   if line.startswith("Tag: ")]  # fmt: skip
    assert len(tags) >= 7
    assert any(dist.startswith("onnxruntime-") for dist in tags)  # the aarch64 ORT wheel
    for dist, dist_tags in tags.items():
        assert dist_tags, dist
        for tag in dist_tags:
            assert tag.endswith("aarch64") or tag.endswith("-any"), (dist, tag)
            assert "x86_64" not in tag, (dist, tag)
    native = [t for ts in tags.values() for t in ts if t.endswith("aarch64")]
    assert any(t.startswith("cp312-cp312-") for t in native)  # numpy, orjson, LiteRT, ORT


def test_the_same_pruning_rules_left_nothing_behind(arm64_vendor: Path) -> None:
    for rule in rules_for("lite"):
        for pattern in rule.globs:
            left = [p for p in arm64_vendor.glob(pattern) if "__pycache__" not in p.parts]
            if rule.name == "stale bytecode":  # recompiled afterwards, by design
                continue
            assert left == [], (rule.name, pattern, left[:3])


def digests(package: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(package.glob("*.zip"))}  # fmt: skip


def test_the_arm64_package_passes_the_size_gate_and_rebuilds_byte_identical(
    arm64_vendor: Path, packages: Packages, tmp_path: Path
) -> None:
    # The run's prod-arm64 package (test_templates.py's too); chalice_package gated its size.
    cached = packages(Package("prod-arm64", runtime="lite-arm64"))
    sizes = [measure(path) for path in sorted(cached.glob("*.zip"))]
    assert sum(s.zipped for s in sizes) < 50 * 2**20  # the lite target holds on arm64 too
    function = load(cached / "sam.json")["Resources"]["APIHandler"]["Properties"]
    assert function["Architectures"] == ["arm64"]
    with zipfile.ZipFile(cached / "layer-deployment.zip") as layer:
        names = layer.namelist()
        layer.extractall(tmp_path / "layer")
    assert any(n.endswith("-aarch64-linux-gnu.so") for n in names)
    assert not any("x86_64" in n for n in names)
    in_zip = check_tree(tmp_path / "layer", ARM64)  # the zip itself, as Lambda unpacks it
    assert in_zip.problems == [] and len(in_zip.files) == len(check_tree(arm64_vendor, ARM64).files)

    build_runtime(FLAVORS["lite"], vendor_dir=tmp_path / "vendor", work_dir=tmp_path / "work",
                  arch=ARM64)  # fmt: skip
    fresh = tmp_path / "fresh"
    again = copy_project(tmp_path / "again", tmp_path / "vendor")
    chalice_package(FLAVORS["lite"], "prod-arm64", project_dir=again, out=fresh)
    assert digests(fresh) == digests(cached)


@pytest.fixture(scope="module")
def qemu_binary() -> str:
    binary = qemu()
    if binary is None:
        pytest.skip("qemu-aarch64-static is not installed (apt-get install qemu-user-static)")
    return binary


def test_the_aarch64_loader_binds_every_shared_object_under_qemu(
    arm64_vendor: Path, qemu_binary: str
) -> None:
    report = link_check(arm64_vendor, aarch64_sysroot(), qemu_binary)
    assert report.problems == []
    assert report.files >= 20
    # The extension modules leave exactly the C API unbound, for the interpreter to bind.
    assert {"PyExc_ValueError", "PyObject_SelfIter", "PyBool_Type"} <= report.python_symbols


def test_the_qemu_check_names_what_would_not_load(
    arm64_vendor: Path, lite_vendor: Path, qemu_binary: str, tmp_path: Path
) -> None:
    [x86] = lite_vendor.glob("numpy/_core/_multiarray_umath.*.so")
    shutil.copy2(x86, tmp_path / x86.name)
    wrapper = arm64_vendor / "ai_edge_litert" / "_pywrap_litert_interpreter_wrapper.so"
    shutil.copy2(wrapper, tmp_path / wrapper.name)  # without the library it needs
    problems = link_check(tmp_path, aarch64_sysroot(), qemu_binary).problems
    assert any(p.startswith(f"{x86.name}: the aarch64 loader failed") for p in problems)
    assert f"{wrapper.name}: needs libpywrap_litert_common.so, not found" in problems
