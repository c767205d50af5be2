"""Install pinned manylinux cp312 x86_64 wheels into a directory, without Docker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux tag up to 2_34.
PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64")  # fmt: skip


def install_wheels(requirements: Path, target: Path, cache_dir: Path) -> None:
    """`pip install --target` the requirements for Lambda's platform, binary wheels only."""
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               "--no-deps", "--only-binary=:all:", "--implementation", "cp",
               "--python-version", "3.12", "--target", str(target), "--cache-dir", str(cache_dir),
               "--progress-bar", "on", "-r", str(requirements)]  # fmt: skip
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command, check=True)
