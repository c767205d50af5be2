"""The offline deploy commands' argument parser: a usage mistake is one `error:` line."""

from __future__ import annotations

import argparse
from typing import NoReturn

from modelops.cli_errors import USER_MISTAKE_EXIT


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option prints `error: ...` alone (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USER_MISTAKE_EXIT, f"error: {message} (--help lists the options)\n")
