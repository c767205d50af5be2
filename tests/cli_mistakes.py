"""What every command-line user mistake looks like: one `error: ` line, exit code 2,
no traceback."""

from __future__ import annotations

import subprocess


def the_one_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a user-mistake exit; return the error line's text after `error: `."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error: " in line]
    assert len(errors) == 1, result.stderr
    assert result.returncode == 2, result.stderr
    return errors[0].split("error: ", 1)[1]
