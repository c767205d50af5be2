"""Load an aarch64 runtime's shared objects with the aarch64 dynamic linker, under qemu.

No aarch64 CPython 3.12 is to be had from the registries this project reaches, so the
arm64 runtime can't be imported and run here. What can run is glibc's own aarch64
dynamic linker (`ld-linux-aarch64.so.1`, from Debian's arm64 `libc6`), under Debian's
`qemu-user-static`: for each shared object it finds every needed library (in the tree,
or in the Debian arm64 libc6/libstdc++6/libgcc-s1 sysroot) and binds every symbol now
(LD_BIND_NOW, LD_WARN: what `ldd -r` does). A clean result is: nothing missing, and the
only symbols left unbound are the CPython C API's, all of which a CPython 3.12 exports
(checked against this machine's libpython3.12, symbol names being the same on every
architecture). Debian 12's glibc is 2.36, newer than Lambda's 2.34: the static check
(`elf_check`) covers that.

The sysroot is downloaded once into the user cache with `apt-get download` (an apt
configuration of its own: the machine's sources and architectures are left alone).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from layer_build.cache import built_once
from layer_build.elf_check import ELF_MAGIC
from layer_build.python312 import python312
from project_paths import user_cache_dir

QEMU = "qemu-aarch64-static"
SYSROOT_PACKAGES = ("libc6:arm64", "libstdc++6:arm64", "libgcc-s1:arm64")
DEBIAN_SOURCE = "deb [arch=arm64] http://deb.debian.org/debian bookworm main"
_UNDEFINED = re.compile(r"undefined symbol: (\S+)\s")


@dataclass
class LinkReport:
    files: int = 0
    python_symbols: set[str] = field(default_factory=set)  # unbound, all CPython's
    problems: list[str] = field(default_factory=list)


def qemu() -> str | None:
    """Debian's qemu-user-static for aarch64, if installed (apt-get install qemu-user-static)."""
    return shutil.which(QEMU)


def aarch64_sysroot() -> Path:
    """Debian 12's arm64 libc6, libstdc++6 and libgcc-s1, unpacked once into the cache."""
    entry = user_cache_dir() / "aarch64-sysroot" / "bookworm"

    def build(staging: Path) -> None:
        apt, debs = staging / "apt", staging / "debs"
        for folder in (apt / "lists" / "partial", apt / "cache" / "archives" / "partial", debs):
            folder.mkdir(parents=True)
        (apt / "sources.list").write_text(DEBIAN_SOURCE + "\n")
        options = [f"-oDir::Etc::SourceList={apt / 'sources.list'}",
                   "-oDir::Etc::SourceParts=/nonexistent", f"-oDir::State::Lists={apt / 'lists'}",
                   f"-oDir::Cache={apt / 'cache'}", "-oAPT::Architectures::=arm64",
                   "-oAPT::Sandbox::User=root", "-oDebug::NoLocking=1", "-qq"]  # fmt: skip
        subprocess.run(["apt-get", *options, "update"], check=True)
        subprocess.run(["apt-get", *options, "download", *SYSROOT_PACKAGES], cwd=debs,
                       check=True)  # fmt: skip
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(staging / "root")], check=True)
        shutil.rmtree(apt)

    return built_once(entry, build) / "root"


def cpython_exports() -> set[str]:
    """Every dynamic symbol CPython 3.12 defines (this machine's libpython3.12)."""
    python = python312()
    query = (
        "import sysconfig as s; print(s.get_config_var('LIBDIR'), s.get_config_var('LDLIBRARY'))"
    )
    libdir, library = subprocess.run([python, "-c", query], capture_output=True, text=True,
                                     check=True).stdout.split()  # fmt: skip
    binary = Path(libdir) / library
    target = binary if binary.is_file() and binary.suffix != ".a" else Path(python)
    listing = subprocess.run(["nm", "-D", "--defined-only", str(target)], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    return {line.split()[-1] for line in listing.splitlines() if line.strip()}


def link_check(tree: Path, sysroot: Path, qemu_binary: str) -> LinkReport:
    """Every ELF file of `tree` loaded and bound by the aarch64 dynamic linker."""
    loader = sysroot / "lib" / "aarch64-linux-gnu" / "ld-linux-aarch64.so.1"
    library_path = ":".join(str(sysroot / d) for d in ("lib/aarch64-linux-gnu",
                                                        "usr/lib/aarch64-linux-gnu"))  # fmt: skip
    exports = cpython_exports()
    report = LinkReport()
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()):
        with open(path, "rb") as handle:
            if handle.read(4) != ELF_MAGIC:
                continue
        report.files += 1
        shown = path.relative_to(tree)
        result = subprocess.run(
            [qemu_binary, "-E", "LD_TRACE_LOADED_OBJECTS=1", "-E", "LD_BIND_NOW=1",
             "-E", "LD_WARN=yes", str(loader), "--library-path", library_path, str(path)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        output = result.stdout + result.stderr
        if result.returncode != 0:
            report.problems.append(f"{shown}: the aarch64 loader failed: {output.strip()[-300:]}")
        for line in output.splitlines():
            if "=> not found" in line:
                report.problems.append(f"{shown}: needs {line.split()[0]}, not found")
        for symbol in _UNDEFINED.findall(output):
            if symbol in exports:
                report.python_symbols.add(symbol)
            else:
                report.problems.append(f"{shown}: {symbol} is bound by nothing (not CPython's)")
    return report
