"""Assemble, prune and prove a flavor's runtime, then place it in a vendor/ directory."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from chalicelib.bundled_runtime import ARCHIVE_NAME
from layer_build.archive import pack
from layer_build.elf_check import check_tree
from layer_build.flavors import MB, Flavor
from layer_build.platforms import GLIBC_MAX, X86_64, Architecture
from layer_build.proof import ProofFailed, prove
from layer_build.prune import (
    StepReport,
    apply_rule,
    compile_bytecode,
    run_steps,
    strip_shared_objects,
    tree_bytes,
)
from layer_build.prune_rules import rules_for
from layer_build.python312 import python312
from layer_build.wheels import install_wheels
from project_paths import BUILD_DIR, VENDOR_DIR, user_cache_dir

PIP_CACHE = user_cache_dir() / "pip"  # wheels, shared by every checkout
UNPACKER = "zstandard==0.25.0"


class BuildFailed(RuntimeError):
    """A pruning step broke the runtime; the message names the step and the module."""


@dataclass(frozen=True)
class RuntimeBuild:
    flavor: Flavor
    installed_bytes: int
    pruned_bytes: int
    steps: list[StepReport]
    max_abs_diff: float | None  # None: built for another architecture, not run here
    seconds: float
    arch: Architecture = X86_64
    elf_files: int = 0
    highest_glibc: tuple[int, ...] = ()


def build_runtime(
    flavor: Flavor,
    vendor_dir: Path = VENDOR_DIR,
    work_dir: Path = BUILD_DIR,
    pip_cache: Path = PIP_CACHE,
    log: Callable[[str], None] = print,
    arch: Architecture = X86_64,
) -> RuntimeBuild:
    """Install `arch`'s wheels into <work_dir>/<flavor>-<arch>/site-packages, prune with
    proof, check every ELF file, fill `vendor_dir` (replacing it) and remove the work tree.
    `make vendor` builds into the checkout's vendor/ and build/.

    The proof runs the tree, so it runs on a machine of `arch` only. On another one the
    same rules are applied without it (each was proven on the same lock file on x86_64)
    and shared objects are left unstripped (the host's strip does not know the target);
    the ELF check (machine, glibc <= 2.34) runs either way."""
    started = time.perf_counter()
    work = work_dir / f"{flavor.name}-{arch.name}"
    tree = work / "site-packages"
    shutil.rmtree(work, ignore_errors=True)
    log(f"==> [{flavor.name}] installing pinned manylinux cp312 {arch.machine} wheels "
        f"({' '.join([flavor.requirements.name, *flavor.engine_wheels])})")  # fmt: skip
    install_wheels(tree, *flavor.engine_wheels, requirements_file=flavor.requirements,
                   cache_dir=pip_cache, arch=arch)  # fmt: skip
    installed = tree_bytes(tree)
    baseline = None
    if arch.native:
        log(f"==> [{flavor.name}] installed {installed / MB:.1f} MB; proving it predicts "
            "before pruning")  # fmt: skip
        baseline = prove(tree, list(flavor.engines))
    else:
        log(f"==> [{flavor.name}] installed {installed / MB:.1f} MB; {arch.machine} code "
            "can't run here: the pruning rules proven on x86_64 apply unproven")  # fmt: skip

    def proven(step: str) -> None:
        if not arch.native:
            return
        try:
            prove(tree, list(flavor.engines))
        except ProofFailed as exc:
            raise BuildFailed(f"pruning step '{step}' broke the runtime: {exc}") from exc

    steps: list[Callable[[], StepReport]] = [
        partial(apply_rule, tree, r) for r in rules_for(flavor.name)
    ]
    if arch.native:
        steps.append(partial(strip_shared_objects, tree))
    steps.append(partial(compile_bytecode, tree, python312()))
    log(f"==> [{flavor.name}] pruning" + ("; each step is proven by importing and predicting"
                                          if arch.native else ""))  # fmt: skip
    reports = run_steps(steps, proven, log)
    pruned = tree_bytes(tree)
    max_abs_diff = None
    if baseline is not None:
        result = prove(tree, list(flavor.engines))
        max_abs_diff = max(result.max_abs_diff, baseline.max_abs_diff)
        log(f"==> [{flavor.name}] {installed / MB:.1f} MB -> {pruned / MB:.1f} MB; fixture "
            f"predictions within {max_abs_diff:.1e} of Keras")  # fmt: skip
    else:
        log(f"==> [{flavor.name}] {installed / MB:.1f} MB -> {pruned / MB:.1f} MB")
    elf = check_tree(tree, arch)
    if elf.problems:
        raise BuildFailed(f"{len(elf.problems)} shared object(s) would not load on Lambda "
                          f"{arch.name}: {'; '.join(elf.problems[:5])}")  # fmt: skip
    glibc, limit = (".".join(map(str, v)) for v in (elf.highest_glibc, GLIBC_MAX))
    log(f"==> [{flavor.name}] {len(elf.files)} ELF files: all {arch.machine}, highest glibc "
        f"{glibc} (<= {limit})")  # fmt: skip
    _fill_vendor(flavor, tree, vendor_dir, pip_cache, log, arch)
    shutil.rmtree(work, ignore_errors=True)  # vendor/ holds the runtime now
    return RuntimeBuild(flavor, installed, pruned, reports, max_abs_diff,
                        time.perf_counter() - started, arch, len(elf.files),
                        elf.highest_glibc)  # fmt: skip


def _fill_vendor(
    flavor: Flavor, tree: Path, vendor: Path, pip_cache: Path, log: Callable[[str], None],
    arch: Architecture,
) -> None:  # fmt: skip
    shutil.rmtree(vendor, ignore_errors=True)
    if not flavor.archived:
        vendor.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(tree, vendor)  # same file system: a rename, not a copy
        return
    vendor.mkdir(parents=True)
    log(f"==> [{flavor.name}] packing the tree into {vendor.name}/{ARCHIVE_NAME} (zstd, ~1 minute)")
    pack(tree, vendor / ARCHIVE_NAME)
    install_wheels(vendor, UNPACKER, cache_dir=pip_cache, arch=arch)  # the decompressor
    for rule in rules_for("unpacker"):
        apply_rule(vendor, rule)
    if arch.native:
        strip_shared_objects(vendor)
    compile_bytecode(vendor, python312())
    log(f"    {vendor.name}/{ARCHIVE_NAME}: {(vendor / ARCHIVE_NAME).stat().st_size / MB:.1f} MB")
