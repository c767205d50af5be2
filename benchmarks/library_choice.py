"""Powertools for AWS Lambda (Logger + Metrics) against chalicelib.observability: the
import cost in a fresh isolated interpreter after what the app imports anyway, and the
zipped size each adds. Not part of `make bench` (Powertools is not a dependency):

    pip install --target /tmp/pt aws-lambda-powertools     # a scratch dir, not the venv
    .venv/bin/python -m benchmarks.library_choice --powertools /tmp/pt
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

from layer_build.python312 import python312

PROJECT = Path(__file__).resolve().parent.parent
SITE = next((PROJECT / ".venv" / "lib").glob("python3.*/site-packages"))
#: Imported by the app before any logging library: only the difference is measured.
PRELUDE = "import chalice.app, json, logging, dataclasses, traceback, hashlib, hmac, random, uuid"
OURS = (
    "from chalicelib.observability import Telemetry, MetricWriter; "
    "from chalicelib.observability.logs import configure_json_logging"
)
POWERTOOLS = (
    "from aws_lambda_powertools import Logger, Metrics; "
    "Logger(service='s'); Metrics(namespace='n', service='s')"
)


def import_ms(path: Path, statement: str) -> float:
    code = (f"import sys, time; sys.path[:0] = [{str(path)!r}, {str(SITE)!r}]; {PRELUDE}; "
            f"t = time.perf_counter(); {statement}; print(time.perf_counter() - t)")  # fmt: skip
    run = subprocess.run([python312(), "-I", "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return float(run.stdout) * 1000


def zipped_mb(paths: list[Path]) -> float:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for root in paths:
            files = [root] if root.is_file() else sorted(root.rglob("*"))
            for file in files:
                if file.is_file() and "__pycache__" not in file.parts:
                    archive.write(file, file.relative_to(root.parent))
    return len(buffer.getvalue()) / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--powertools", type=Path, required=True, help="a pip --target dir")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    timings: dict[str, list[float]] = {"powertools": [], "ours": []}
    for _ in range(args.runs):  # interleaved: machine load hits both alike
        timings["powertools"].append(import_ms(args.powertools, POWERTOOLS))
        timings["ours"].append(import_ms(PROJECT, OURS))
    sizes = {
        "powertools": zipped_mb([p for p in args.powertools.iterdir()
                                 if p.name != "bin" and not p.name.endswith(".dist-info")]),
        "ours": zipped_mb([PROJECT / "chalicelib" / "observability"]),
    }  # fmt: skip
    print(f"{'library':<12}{'import ms p50':>15}{'min':>8}{'zipped MB':>11}")
    for name, values in timings.items():
        print(f"{name:<12}{statistics.median(values):>15.1f}{min(values):>8.1f}"
              f"{sizes[name]:>11.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
