"""Lambda's two CPU architectures, as pip, ELF and Chalice name them.

Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34) on either architecture, so a
runtime is built from manylinux wheels up to 2_34 of the stage's architecture (Chalice's
`lambda_architecture`: x86_64 or arm64), and every shared object in it must be for that
machine and need no glibc symbol version above 2.34.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

GLIBC_MAX = (2, 34)  # Amazon Linux 2023


@dataclass(frozen=True)
class Architecture:
    name: str  # Lambda's and Chalice's name (lambda_architecture)
    machine: str  # the ELF machine / `uname -m` name
    elf_machine: int  # ELF e_machine
    # GB-second price of Lambda on this architecture (us-east-1 list price, first tier).
    price_per_gb_second: float

    @property
    def pip_platforms(self) -> tuple[str, ...]:
        """Every manylinux tag Amazon Linux 2023 can load, newest first."""
        return (f"manylinux_2_34_{self.machine}", f"manylinux_2_28_{self.machine}",
                f"manylinux_2_27_{self.machine}", f"manylinux_2_17_{self.machine}",
                f"manylinux2014_{self.machine}")  # fmt: skip

    @property
    def native(self) -> bool:
        """This machine can run the runtime's code (import, predict, prove)."""
        return platform.machine() == self.machine


X86_64 = Architecture("x86_64", "x86_64", 62, 0.0000166667)
ARM64 = Architecture("arm64", "aarch64", 183, 0.0000133334)
ARCHITECTURES = {arch.name: arch for arch in (X86_64, ARM64)}


def architecture(name: str | None) -> Architecture:
    """The architecture Chalice calls `name` (x86_64 when None); ValueError otherwise."""
    if name is None:
        return X86_64
    if name not in ARCHITECTURES:
        raise ValueError(f"no architecture {name!r}; architectures: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]
