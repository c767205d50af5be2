"""The offline deploy commands' argument parser: a usage mistake is one `error:` line."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelops.cli_errors import OneLineParser
from project_paths import PROJECT_DIR

__all__ = ["OneLineParser", "stage_parser"]


def stage_parser(prog: str, doc: str) -> OneLineParser:
    """A command run against one stage: `--stage`, and `--project-dir` (hidden, for tests);
    the first paragraph of `doc` describes it."""
    parser = OneLineParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--stage", required=True, help="the Chalice stage")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    return parser
