"""layer_build's pure parts: rules, zip normaliser, size gate, archive round trip."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from chalicelib import bundled_runtime
from layer_build.archive import pack
from layer_build.flavors import FLAVORS, MB
from layer_build.function_bytecode import add_bytecode
from layer_build.prune import apply_rule
from layer_build.prune_rules import RULES, PruneRule, rules_for
from layer_build.python312 import python312
from layer_build.reproducible_zip import normalise
from layer_build.size_report import SizeLimitExceeded, ZipSize, check_limits, report


def test_every_rule_says_why_and_stays_inside_the_tree() -> None:
    for rule in RULES:
        assert rule.why and rule.globs, rule.name
        assert all(not g.startswith(("/", "..")) for g in rule.globs), rule.name
        assert set(rule.flavors) <= {*FLAVORS, "unpacker"}, rule.name
    assert any(r.name == "LiteRT accelerators and plugins" for r in rules_for("lite"))
    assert not any(r.name == "libclang" for r in rules_for("lite"))


def test_apply_rule_removes_matches_only(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "tests").mkdir(parents=True)
    (tmp_path / "pkg" / "tests" / "test_a.py").write_text("x" * 10)
    (tmp_path / "pkg" / "core.py").write_text("keep")
    report = apply_rule(tmp_path, PruneRule("tests", ("**/tests",), "why"))
    assert (report.files_removed, report.bytes_removed) == (1, 10)
    assert (tmp_path / "pkg" / "core.py").exists() and not (tmp_path / "pkg" / "tests").exists()


def make_zip(path: Path, names: list[str]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            archive.writestr(info, f"content of {name}")


def test_normalised_zips_are_byte_identical_whatever_order_and_time(tmp_path: Path) -> None:
    make_zip(tmp_path / "a.zip", ["b.py", "a/x.so", "runtime.tar.zst"])
    time.sleep(1.1)
    make_zip(tmp_path / "b.zip", ["runtime.tar.zst", "a/x.so", "b.py"])
    for name in ("a.zip", "b.zip"):
        normalise(tmp_path / name)
    digests = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.zip", "b.zip")}
    assert len(digests) == 1
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert archive.namelist() == sorted(archive.namelist())
        assert archive.getinfo("runtime.tar.zst").compress_type == zipfile.ZIP_STORED


def test_a_cached_normalisation_gives_the_same_bytes_as_a_fresh_one(tmp_path: Path) -> None:
    """The layer cache: a zip with the same files (any order, any dates) is copied from the
    cache, byte-identical to what normalising it afresh gives; other contents miss."""
    cache = tmp_path / "cache"
    make_zip(tmp_path / "first.zip", ["b.py", "a/x.so", "runtime.tar.zst"])
    normalise(tmp_path / "first.zip", cache_dir=cache)
    (entry,) = cache.glob("*.zip")
    assert entry.read_bytes() == (tmp_path / "first.zip").read_bytes()

    time.sleep(1.1)
    make_zip(tmp_path / "again.zip", ["runtime.tar.zst", "a/x.so", "b.py"])
    shutil.copyfile(tmp_path / "again.zip", tmp_path / "fresh.zip")
    normalise(tmp_path / "again.zip", cache_dir=cache)
    normalise(tmp_path / "fresh.zip")
    assert (tmp_path / "again.zip").read_bytes() == (tmp_path / "fresh.zip").read_bytes()
    assert list(cache.glob("*.zip")) == [entry]

    make_zip(tmp_path / "other.zip", ["b.py", "c.py"])
    normalise(tmp_path / "other.zip", cache_dir=cache)
    assert len(list(cache.glob("*.zip"))) == 2
    assert not list(cache.glob("*.partial"))


@pytest.mark.slow  # compiles the function twice, ~2.6 s
def test_function_zip_gets_reproducible_unchecked_bytecode(tmp_path: Path) -> None:
    """Lambda's /var/task is read-only: without .pyc in the zip every cold start compiles."""
    sources = ["app.py", "chalicelib/__init__.py", "chalicelib/store.py", "chalice/app.py"]
    for name in ("a.zip", "b.zip"):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            for source in sources:
                info = zipfile.ZipInfo(source, date_time=time.localtime()[:6])
                archive.writestr(info, f"NAME = {source!r}\n")
        assert add_bytecode(tmp_path / name, python312()) == len(sources)
        normalise(tmp_path / name)
        time.sleep(1.1)  # a later build: timestamps must not reach the bytes
    digests = {hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.zip", "b.zip")}
    assert len(digests) == 1
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert "chalicelib/__pycache__/store.cpython-312.pyc" in archive.namelist()
        header = archive.read("__pycache__/app.cpython-312.pyc")[:8]
    # PEP 552: flags 0b01 = hash-based, check_source off (the source is never re-read).
    assert int.from_bytes(header[4:8], "little") == 0b01


def test_size_gate_names_the_largest_parts() -> None:
    big = ZipSize("layer-deployment.zip", 60 * MB, 240 * MB,
                  Counter({"tensorflow": 200 * MB, "numpy": 40 * MB}))  # fmt: skip
    app = ZipSize("deployment.zip", 1 * MB, 20 * MB, Counter({"app.py": 20 * MB}))
    with pytest.raises(SizeLimitExceeded, match=r"260.0 MB > 250 MB.*tensorflow \(200.0 MB\)"):
        check_limits(FLAVORS["tensorflow"], [big, app])
    with pytest.raises(SizeLimitExceeded, match="direct upload"):
        check_limits(FLAVORS["lite"], [big])
    check_limits(FLAVORS["tensorflow"], [big])  # S3-deployed: 50 MB zipped does not apply
    assert "10 largest components" in report(FLAVORS["lite"], [big, app])


def test_archive_unpacks_once_and_goes_first_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree" / "packed_pkg"
    tree.mkdir(parents=True)
    (tree / "__init__.py").write_text("VALUE = 42\n")
    layer = tmp_path / "layer"
    layer.mkdir()
    pack(tmp_path / "tree", layer / bundled_runtime.ARCHIVE_NAME)
    monkeypatch.setattr(sys, "path", [str(layer), *sys.path])
    first = bundled_runtime.activate_bundled_runtime(str(tmp_path / "unpacked"))
    assert first is not None and first.unpacked and sys.path[0] == first.directory
    second = bundled_runtime.activate_bundled_runtime(str(tmp_path / "unpacked"))
    assert second is not None and not second.unpacked
    import packed_pkg

    assert packed_pkg.VALUE == 42
    assert not [n for n in os.listdir(tmp_path / "unpacked") if n.startswith(".tf-runtime-")]
    monkeypatch.delitem(sys.modules, "packed_pkg")


def test_no_archive_means_no_op(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert bundled_runtime.activate_bundled_runtime() is None


def test_archive_is_reproducible(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "m.py").write_text("x = 1\n")
    pack(tree, tmp_path / "one.tar.zst")
    os.utime(tree / "pkg" / "m.py", (1, 1))
    pack(tree, tmp_path / "two.tar.zst")
    assert (tmp_path / "one.tar.zst").read_bytes() == (tmp_path / "two.tar.zst").read_bytes()
