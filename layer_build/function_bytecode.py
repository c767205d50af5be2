"""Add precompiled bytecode to the function zip Chalice builds (app.py, chalicelib, chalice).

Chalice zips the function's sources only, and /var/task is read-only on Lambda, so every
cold start compiled them again: ~85 ms of CPU per cold start on the benchmark machine
(docs/benchmarks.md). The .pyc files are the layer's kind (layer_build.prune): unchecked
hashes, paths relative to the zip, so the zip stays reproducible.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from layer_build.prune import compile_bytecode


def add_bytecode(function_zip: Path, python: str) -> int:
    """Append a `__pycache__/*.cpython-312.pyc` beside each module of `function_zip`
    (compiled by `python`, a 3.12 interpreter); how many were added."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "function"
        with zipfile.ZipFile(function_zip) as archive:
            present = set(archive.namelist())
            archive.extractall(tree)
        compile_bytecode(tree, python)
        compiled = [
            path for path in sorted(tree.rglob("*.pyc"))
            if path.relative_to(tree).as_posix() not in present
        ]  # fmt: skip
        with zipfile.ZipFile(function_zip, "a", zipfile.ZIP_DEFLATED) as archive:
            for path in compiled:
                archive.write(path, path.relative_to(tree).as_posix())
    return len(compiled)
