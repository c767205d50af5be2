"""Apply pruning rules, strip shared objects and precompile bytecode, proving each step."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from layer_build.prune_rules import PruneRule


@dataclass(frozen=True)
class StepReport:
    step: str
    bytes_removed: int
    files_removed: int


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def apply_rule(tree: Path, rule: PruneRule) -> StepReport:
    """Delete everything the rule's globs match under `tree`."""
    removed_bytes = removed_files = 0
    for pattern in rule.globs:
        for path in sorted(tree.glob(pattern), reverse=True):
            if not path.exists():
                continue
            if path.is_dir() and not path.is_symlink():
                removed_bytes += tree_bytes(path)
                removed_files += sum(1 for p in path.rglob("*") if p.is_file())
                shutil.rmtree(path)
            else:
                removed_bytes += path.stat().st_size
                removed_files += 1
                path.unlink()
    return StepReport(rule.name, removed_bytes, removed_files)


def strip_shared_objects(tree: Path) -> StepReport:
    """`strip --strip-unneeded` every .so except auditwheel-vendored ones in *.libs/.

    Stripping those breaks loading ("ELF load command address/offset not page-aligned").
    """
    before = tree_bytes(tree)
    objects = sorted(
        p for p in tree.rglob("*.so*")
        if p.is_file() and not any(part.endswith(".libs") for part in p.relative_to(tree).parts)
    )  # fmt: skip
    for path in objects:
        subprocess.run(["strip", "--strip-unneeded", str(path)], check=True)
    return StepReport(f"strip {len(objects)} shared objects (not *.libs/)",
                      before - tree_bytes(tree), 0)  # fmt: skip


def compile_bytecode(tree: Path, python: str) -> StepReport:
    """Precompile .pyc for 3.12 with unchecked hashes: /var/task is read-only, so
    otherwise every cold start compiles again; hashes (not mtimes) and source paths recorded
    relative to the tree (-s: not where it was built) keep it reproducible, and -f replaces
    any bytecode an earlier import wrote."""
    before = tree_bytes(tree)
    subprocess.run(
        [python, "-I", "-m", "compileall", "-q", "-f", "-j", "0", "--invalidation-mode",
         "unchecked-hash", "-s", str(tree), str(tree)],
        check=True,
    )  # fmt: skip
    return StepReport("precompile .pyc (unchecked-hash)", before - tree_bytes(tree), 0)


def run_steps(
    steps: list[Callable[[], StepReport]], prove: Callable[[str], None], log: Callable[[str], None]
) -> list[StepReport]:
    """Run each step, then the proof; a failing proof names the step that broke it."""
    reports = []
    for step in steps:
        report = step()
        log(f"    {report.step:<44} -{report.bytes_removed / 1e6:7.1f} MB")
        prove(report.step)
        reports.append(report)
    return reports
