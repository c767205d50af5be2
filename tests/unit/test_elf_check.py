"""layer_build.elf_check on ELF files built here byte by byte (header, string table,
.dynamic, .gnu.version_r), so the machine and glibc rules are tested on both
architectures without any foreign binary."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from layer_build.elf_check import check_tree, read_elf
from layer_build.platforms import ARM64, X86_64, architecture


def tiny_elf(machine: int, versions: list[str], needed: list[str]) -> bytes:
    """A 64-bit little-endian shared object with only the sections the check reads."""
    strings = b"\0"
    offsets = {}
    for name in ["libc.so.6", *versions, *needed]:
        if name not in offsets:
            offsets[name] = len(strings)
            strings += name.encode() + b"\0"
    dynamic = b"".join(struct.pack("<qQ", 1, offsets[lib]) for lib in needed)
    dynamic += struct.pack("<qQ", 0, 0)
    aux = b"".join(struct.pack("<IHHII", 0, 0, 0, offsets[v], 16 if i < len(versions) - 1 else 0)
                   for i, v in enumerate(versions))  # fmt: skip
    verneed = struct.pack("<HHIII", 1, len(versions), offsets["libc.so.6"], 16, 0) + aux
    body_start = 64
    layout = [strings, dynamic, verneed]
    positions = []
    at = body_start
    for blob in layout:
        positions.append(at)
        at += len(blob)
    shoff = at
    sections = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    sections.append(struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, positions[0], len(strings), 0, 0, 1, 0))
    sections.append(struct.pack("<IIQQQQIIQQ", 0, 6, 0, 0, positions[1], len(dynamic), 1, 0, 8, 16))
    sections.append(struct.pack("<IIQQQQIIQQ", 0, 0x6FFFFFFE, 0, 0, positions[2], len(verneed),
                                1, 1 if versions else 0, 4, 0))  # fmt: skip
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 0, shoff, 0, 64, 56, 0, 64,
                                 len(sections), 0)  # fmt: skip
    return header + b"".join(layout) + b"".join(sections)


def test_reads_machine_versions_and_libraries() -> None:
    data = tiny_elf(183, ["GLIBC_2.17", "GLIBC_2.34"], ["libm.so.6", "libstdc++.so.6"])
    machine, versions, libraries = read_elf(data)
    assert machine == 183
    assert versions == ["GLIBC_2.17", "GLIBC_2.34"]
    assert libraries == ["libm.so.6", "libstdc++.so.6"]


def test_a_tree_for_the_right_machine_within_glibc_2_34_passes(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_ext.so").write_bytes(tiny_elf(183, ["GLIBC_2.34"], ["libc.so.6"]))
    (tmp_path / "pkg" / "libshipped.so").write_bytes(tiny_elf(183, ["GLIBC_2.17"], []))
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")  # not ELF: skipped
    report = check_tree(tmp_path, ARM64)
    assert report.problems == []
    assert report.highest_glibc == (2, 34)
    assert report.system_libraries() == {"libc.so.6"}


def test_a_foreign_machine_or_newer_glibc_is_named(tmp_path: Path) -> None:
    (tmp_path / "x86.so").write_bytes(tiny_elf(62, ["GLIBC_2.17"], []))
    (tmp_path / "new.so").write_bytes(tiny_elf(183, ["GLIBC_2.35", "GLIBC_2.2.5"], []))
    (tmp_path / "broken.so").write_bytes(b"\x7fELF\x01\x01")  # 32-bit
    problems = check_tree(tmp_path, ARM64).problems
    assert problems == [
        "broken.so: not a 64-bit little-endian ELF file",
        "new.so: needs GLIBC_2.35 > 2.34 (Amazon Linux 2023)",
        "x86.so: ELF machine 62, not aarch64 (183)",
    ]
    assert check_tree(tmp_path, X86_64).problems[1:] == [
        "new.so: ELF machine 183, not x86_64 (62)",
        "new.so: needs GLIBC_2.35 > 2.34 (Amazon Linux 2023)",
    ]


def test_architecture_names_are_chalices() -> None:
    assert architecture(None) is X86_64 and architecture("arm64") is ARM64
    assert ARM64.pip_platforms[0] == "manylinux_2_34_aarch64"
    assert ARM64.price_per_gb_second / X86_64.price_per_gb_second == pytest.approx(0.8, abs=1e-5)
    with pytest.raises(ValueError, match="no architecture 'aarch64'; architectures: x86_64, arm64"):
        architecture("aarch64")
