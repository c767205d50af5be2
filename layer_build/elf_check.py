"""Check every ELF file of a runtime tree: built for the target machine, and needing no
glibc symbol version Lambda's Amazon Linux 2023 lacks (above 2.34).

Reads the ELF header's e_machine, the GNU version-needs section (`.gnu.version_r`, what
`objdump -p` lists under "Version References") and the libraries the file needs
(DT_NEEDED in `.dynamic`) with the standard library only, so it checks an aarch64 tree
on an x86_64 machine without cross tools.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from layer_build.platforms import GLIBC_MAX, Architecture

ELF_MAGIC = b"\x7fELF"
SHT_DYNAMIC, SHT_GNU_VERNEED, DT_NEEDED = 6, 0x6FFFFFFE, 1
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")


@dataclass(frozen=True)
class ElfFile:
    path: str  # relative to the tree
    machine: int
    glibc: tuple[int, ...]  # the highest GLIBC_x.y it needs; () when none
    needed: tuple[str, ...] = ()  # DT_NEEDED: the shared libraries it loads


@dataclass
class ElfReport:
    files: list[ElfFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def highest_glibc(self) -> tuple[int, ...]:
        return max((f.glibc for f in self.files), default=())

    def system_libraries(self) -> set[str]:
        """Libraries needed but not shipped in the tree: the system must provide them."""
        shipped = {Path(f.path).name for f in self.files}
        return {lib for f in self.files for lib in f.needed if lib not in shipped}


def read_elf(data: bytes) -> tuple[int, list[str], list[str]]:
    """(e_machine, every version name it needs, every library it needs) of a 64-bit
    little-endian ELF file."""
    if data[:4] != ELF_MAGIC or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (_, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, _) = struct.unpack_from(
        "<HHIQQQIHHHHHH", data, 16
    )
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
                for i in range(shnum if shoff else 0)]  # fmt: skip
    names: list[str] = []
    libraries: list[str] = []
    for _, kind, _, _, offset, size, link, count, _, _ in sections:
        if kind == SHT_DYNAMIC:
            strings = sections[link][4]
            for at in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, at)
                if tag == DT_NEEDED:
                    libraries.append(_string(data, strings + value))
            continue
        if kind != SHT_GNU_VERNEED:
            continue
        strings = sections[link][4]
        entry = offset
        for _ in range(count):
            _, aux_count, _, aux, next_entry = struct.unpack_from("<HHIII", data, entry)
            aux_at = entry + aux
            for _ in range(aux_count):
                _, _, _, name, next_aux = struct.unpack_from("<IHHII", data, aux_at)
                names.append(_string(data, strings + name))
                aux_at += next_aux
            entry += next_entry
    return machine, names, libraries


def _string(data: bytes, at: int) -> str:
    return data[at : data.index(b"\0", at)].decode("ascii", "replace")


def glibc_version(names: list[str]) -> tuple[int, ...]:
    """The highest GLIBC_x.y[.z] among version names; () when none."""
    versions = [tuple(int(part) for part in m.groups() if part is not None)
                for m in map(_GLIBC.match, names) if m]  # fmt: skip
    return max(versions, default=())


def check_tree(tree: Path, arch: Architecture) -> ElfReport:
    """Every ELF file under `tree`: its machine must be `arch`'s and its highest GLIBC
    version at most GLIBC_MAX; problems name the file and what is wrong."""
    report = ElfReport()
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
        with open(path, "rb") as handle:
            if handle.read(4) != ELF_MAGIC:
                continue
        shown = str(path.relative_to(tree))
        try:
            machine, names, libraries = read_elf(path.read_bytes())
        except (ValueError, struct.error) as exc:
            report.problems.append(f"{shown}: {exc}")
            continue
        elf = ElfFile(shown, machine, glibc_version(names), tuple(libraries))
        report.files.append(elf)
        if machine != arch.elf_machine:
            report.problems.append(f"{shown}: ELF machine {machine}, not {arch.machine} "
                                   f"({arch.elf_machine})")  # fmt: skip
        if elf.glibc > GLIBC_MAX:
            report.problems.append(
                f"{shown}: needs GLIBC_{'.'.join(map(str, elf.glibc))} > "
                f"{'.'.join(map(str, GLIBC_MAX))} (Amazon Linux 2023)"
            )
    return report
