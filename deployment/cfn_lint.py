"""Run cfn-lint on a generated template (SAM transform included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ERROR, WARNING, INFO = 2, 4, 8  # cfn-lint's exit code bits; anything else means it crashed


def cfn_lint_errors(template: Path) -> list[str]:
    """cfn-lint's errors (E rules) for `template`; warnings are printed, not returned."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(template)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode & ~(ERROR | WARNING | INFO):
        raise RuntimeError(f"cfn-lint failed to run: {result.stderr.strip()}")
    print(result.stdout, end="")
    return [line for line in result.stdout.splitlines() if ":E" in line]
