"""Prove a runtime tree works: an isolated Python 3.12 imports it and predicts."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chalicelib.engines.registry import ENGINES
from layer_build.python312 import python312
from project_paths import PROJECT_DIR, user_cache_dir

PROOF_SCRIPT = Path(__file__).resolve().parent / "proof_script.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


class ProofFailed(RuntimeError):
    """The pruned tree no longer imports or predicts; the message names the module."""


@dataclass(frozen=True)
class ProofResult:
    max_abs_diff: float
    seconds: float
    top_modules: list[str]


def prove(tree: Path, engines: list[str], env: dict[str, str] | None = None) -> ProofResult:
    """Run the fixture model through `engines` with only `tree` (and stdlib) importable."""
    import time

    started = time.perf_counter()
    fixtures = fixtures_for(engines)
    command = [python312(), "-I", "-S", "-B", str(PROOF_SCRIPT), str(tree), str(PROJECT_DIR),
               ",".join(engines), str(fixtures)]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )  # fmt: skip
    if result.returncode != 0:
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("PROOF FAILED")]
        detail = lines[0] if lines else result.stderr.strip().splitlines()[-1:]
        raise ProofFailed(f"{detail} (exit {result.returncode})")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return ProofResult(report["max_abs_diff"], time.perf_counter() - started, report["top_modules"])


def fixtures_for(engines: list[str]) -> Path:
    """A directory with the tiny fixture model for each engine: the committed one
    (`fixtures/tiny.<suffix>`, make_fixture.py), or for an engine with none, its
    registry converter's conversion of `tiny.keras`, made once into the user cache."""
    missing = [kind for kind in engines
               if not (FIXTURES / f"tiny{ENGINES[kind].suffixes[0]}").exists()]  # fmt: skip
    if not missing:
        return FIXTURES
    from layer_build.cache import built_once  # imports the build, which imports this module

    digest = hashlib.sha256((FIXTURES / "tiny.keras").read_bytes())
    digest.update(repr(sorted((k, ENGINES[k].converter) for k in missing)).encode())

    def convert(staging: Path) -> None:
        for path in FIXTURES.iterdir():
            shutil.copy2(path, staging / path.name)
        for kind in missing:
            spec = ENGINES[kind]
            (staging / f"tiny{spec.suffixes[0]}").write_bytes(spec.convert(FIXTURES / "tiny.keras"))

    return built_once(user_cache_dir() / "fixtures" / digest.hexdigest()[:16], convert)
