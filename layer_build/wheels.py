"""Install pinned manylinux cp312 x86_64 wheels into a directory, without Docker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux tag up to 2_34.
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64")  # fmt: skip


def install_wheels(
    target: Path,
    *requirements: str,
    requirements_file: Path | None = None,
    cache_dir: Path | None = None,
    with_dependencies: bool = False,
) -> None:
    """`pip install --target` binary wheels built for Lambda's platform and Python.

    A lock file is installed without dependency resolution (`--no-deps`): it pins
    every package, and the proof catches anything it forgot.
    """
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12",
               "--target", str(target)]  # fmt: skip
    for platform in PLATFORMS:
        command += ["--platform", platform]
    if not with_dependencies:
        command.append("--no-deps")
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    if requirements_file is not None:
        command += ["-r", str(requirements_file)]
    subprocess.run([*command, *requirements], check=True)
