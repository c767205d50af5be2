"""Install pinned manylinux cp312 wheels of one architecture into a directory, without
Docker (`pip --platform`: pip never runs the wheels' code, so any host works)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from layer_build.platforms import X86_64, Architecture


def install_wheels(
    target: Path,
    *requirements: str,
    requirements_file: Path | None = None,
    cache_dir: Path | None = None,
    with_dependencies: bool = False,
    arch: Architecture = X86_64,
) -> None:
    """`pip install --target` binary wheels built for Lambda's platform and Python.

    A lock file is installed without dependency resolution (`--no-deps`): it pins
    every package, and the proof catches anything it forgot.
    """
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12",
               "--target", str(target)]  # fmt: skip
    for platform in arch.pip_platforms:  # Amazon Linux 2023: manylinux up to 2_34
        command += ["--platform", platform]
    if not with_dependencies:
        command.append("--no-deps")
    if cache_dir is not None:
        command += ["--cache-dir", str(cache_dir)]
    if requirements_file is not None:
        command += ["-r", str(requirements_file)]
    subprocess.run([*command, *requirements], check=True)
