"""Runtimes built once per input hash, in a cache outside the checkout (tests, benchmarks).

`runtime_vendor_dir(flavor, arch)` is `<cache>/runtimes/<flavor>-<arch>-<hash>/vendor`:
what `make vendor` would put in `vendor/`, built the first time its inputs (the flavor's
lock file and its engines' wheels, the architecture, the pruning rules and the code that
installs, prunes and packs) are seen. Entries appear
atomically (built in a staging directory, then renamed) and a lock file serialises
concurrent builders, so parallel test runs share one build.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from layer_build.build import build_runtime
from layer_build.flavors import Flavor
from layer_build.platforms import X86_64, Architecture
from layer_build.prune_rules import engine_rules
from project_paths import user_cache_dir

LAYER_BUILD_DIR = Path(__file__).resolve().parent
# The modules that decide the runtime's bytes (not the proof, the gate or the drivers).
RUNTIME_SOURCES = ("build.py", "prune.py", "prune_rules.py", "archive.py", "wheels.py",
                   "platforms.py")  # fmt: skip
_COMPLETE = ".complete"


def engine_rules_for(flavor: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(rule.name, rule.globs) for rule in engine_rules() if flavor in rule.flavors]


def runtime_key(flavor: Flavor, arch: Architecture = X86_64) -> str:
    """A hash of everything that decides the runtime's bytes."""
    digest = hashlib.sha256(flavor.requirements.read_bytes() + arch.name.encode())
    for name in RUNTIME_SOURCES:
        digest.update(name.encode() + b"\0" + (LAYER_BUILD_DIR / name).read_bytes())
    # The engine registry adds wheels and pruning rules to the flavors carrying them.
    digest.update(repr((flavor.engine_wheels, engine_rules_for(flavor.name))).encode())
    return digest.hexdigest()[:16]


def runtime_vendor_dir(
    flavor: Flavor, cache_root: Path | None = None, log: Callable[[str], None] = print,
    arch: Architecture = X86_64,
) -> Path:  # fmt: skip
    """The flavor's vendor/ tree for `arch`, built into the cache unless already there."""
    root = (cache_root or user_cache_dir()) / "runtimes"
    entry = root / f"{flavor.name}-{arch.name}-{runtime_key(flavor, arch)}"

    def build(staging: Path) -> None:
        build_runtime(flavor, vendor_dir=staging / "vendor", work_dir=staging / "work",
                      pip_cache=root.parent / "pip", log=log, arch=arch)  # fmt: skip
        shutil.rmtree(staging / "work", ignore_errors=True)

    return built_once(entry, build) / "vendor"


def built_once(entry: Path, build: Callable[[Path], None]) -> Path:
    """`entry`, made by `build(staging_dir)` unless a complete one exists."""
    if (entry / _COMPLETE).exists():
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry.with_name(entry.name + ".lock")):
        if (entry / _COMPLETE).exists():  # another process built it meanwhile
            return entry
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
        try:
            build(staging)
            (staging / _COMPLETE).touch()
            shutil.rmtree(entry, ignore_errors=True)  # an incomplete leftover
            staging.rename(entry)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return entry


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
