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
from layer_build.flavors import MB, Flavor
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
    max_abs_diff: float
    seconds: float


def build_runtime(
    flavor: Flavor,
    vendor_dir: Path = VENDOR_DIR,
    work_dir: Path = BUILD_DIR,
    pip_cache: Path = PIP_CACHE,
    log: Callable[[str], None] = print,
) -> RuntimeBuild:
    """Install wheels into <work_dir>/<flavor>/site-packages, prune with proof, and fill
    `vendor_dir` (replacing it). `make vendor` builds into the checkout's vendor/ and build/."""
    started = time.perf_counter()
    tree = work_dir / flavor.name / "site-packages"
    shutil.rmtree(tree, ignore_errors=True)
    log(
        f"==> [{flavor.name}] installing pinned manylinux cp312 wheels ({flavor.requirements.name})"
    )
    install_wheels(tree, requirements_file=flavor.requirements, cache_dir=pip_cache)
    installed = tree_bytes(tree)
    log(
        f"==> [{flavor.name}] installed {installed / MB:.1f} MB; proving it predicts before pruning"
    )
    baseline = prove(tree, list(flavor.engines))

    def proven(step: str) -> None:
        try:
            prove(tree, list(flavor.engines))
        except ProofFailed as exc:
            raise BuildFailed(f"pruning step '{step}' broke the runtime: {exc}") from exc

    steps: list[Callable[[], StepReport]] = [
        partial(apply_rule, tree, r) for r in rules_for(flavor.name)
    ]
    steps += [partial(strip_shared_objects, tree), partial(compile_bytecode, tree, python312())]
    log(f"==> [{flavor.name}] pruning; each step is proven by importing and predicting")
    reports = run_steps(steps, proven, log)
    result = prove(tree, list(flavor.engines))
    pruned = tree_bytes(tree)
    log(f"==> [{flavor.name}] {installed / MB:.1f} MB -> {pruned / MB:.1f} MB; fixture predictions "
        f"within {max(result.max_abs_diff, baseline.max_abs_diff):.1e} of Keras")  # fmt: skip
    _fill_vendor(flavor, tree, vendor_dir, pip_cache, log)
    return RuntimeBuild(flavor, installed, pruned, reports, result.max_abs_diff,
                        time.perf_counter() - started)  # fmt: skip


def _fill_vendor(
    flavor: Flavor, tree: Path, vendor: Path, pip_cache: Path, log: Callable[[str], None]
) -> None:
    shutil.rmtree(vendor, ignore_errors=True)
    if not flavor.archived:
        shutil.copytree(tree, vendor, symlinks=True)
        return
    vendor.mkdir(parents=True)
    log(f"==> [{flavor.name}] packing the tree into {vendor.name}/{ARCHIVE_NAME} (zstd, ~1 minute)")
    pack(tree, vendor / ARCHIVE_NAME)
    install_wheels(vendor, UNPACKER, cache_dir=pip_cache)  # decompresses the archive
    for rule in rules_for("unpacker"):
        apply_rule(vendor, rule)
    strip_shared_objects(vendor)
    compile_bytecode(vendor, python312())
    log(f"    {vendor.name}/{ARCHIVE_NAME}: {(vendor / ARCHIVE_NAME).stat().st_size / MB:.1f} MB")
