"""Prove a runtime tree works: an isolated Python 3.12 imports it and predicts."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from layer_build.python312 import python312
from project_paths import PROJECT_DIR

PROOF_SCRIPT = Path(__file__).resolve().parent / "proof_script.py"


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
    result = subprocess.run(
        [python312(), "-I", "-S", "-B", PROOF_SCRIPT, tree, PROJECT_DIR, ",".join(engines)],
        capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )  # fmt: skip
    if result.returncode != 0:
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith("PROOF FAILED")]
        detail = lines[0] if lines else result.stderr.strip().splitlines()[-1:]
        raise ProofFailed(f"{detail} (exit {result.returncode})")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return ProofResult(report["max_abs_diff"], time.perf_counter() - started, report["top_modules"])
