"""Warm in-process latency of POST /predict: an API Gateway proxy event through the
Chalice app (JSON parse, validation, encoding, LiteRT, response JSON)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from benchmarks.stats import p50_p99
from localdev.apigw_events import LambdaContext, proxy_event
from localdev.servers import MotoServer, s3_env
from modelops.examples import encode_records, holdout_records

BATCH_SIZES = (1, 100, 1000)
TARGET_P50_MS = {1: 1.0, 1000: 15.0}


@dataclass(frozen=True)
class LatencyResult:
    fmt: str
    records: int
    p50_ms: float
    p99_ms: float
    runs: int


def run_handler_benchmarks(model_dir: Path, tmp_dir: Path) -> list[LatencyResult]:
    """Publish the model to a private moto server, then time the warm handler."""
    with served_app(model_dir, tmp_dir) as app:
        records, _ = holdout_records(model_dir, max(BATCH_SIZES))
        encoded = encode_records(model_dir, records)
        results = []
        for fmt, rows in (("raw", records), ("encoded", encoded)):
            for size in BATCH_SIZES:
                results.append(_time_handler(app, fmt, rows[:size]))
        return results


@contextlib.contextmanager
def served_app(model_dir: Path, tmp_dir: Path) -> Iterator[Any]:
    """The Chalice app serving `model_dir`'s model, published to a private moto server."""
    server = MotoServer().start()
    saved = dict(os.environ)
    try:
        os.environ.update(s3_env(server.url))
        os.environ.update({"MODEL_BUCKET": "bench", "MODEL_PREFIX": "m",
                           "MODEL_CACHE_DIR": str(tmp_dir), "MAX_RECORDS": "1000"})  # fmt: skip
        boto3.client("s3").create_bucket(Bucket="bench")
        from modelops.publish import main as publish

        assert publish(["--model", str(model_dir / "model.keras"), "--name", "loan-grade",
                        "--version", "1", "--bucket", "bench", "--prefix", "m", "--overwrite",
                        "--preprocessing", str(model_dir / "preprocessing.json"),
                        "--labels", str(model_dir / "labels.json"),
                        "--feature-stats", str(model_dir / "feature_stats.json")]) == 0  # fmt: skip
        from app import app

        # The app prints its EMF and log lines per request, as on Lambda: still written
        # (their cost is part of the latency), to /dev/null instead of the console.
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            yield app
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


def _time_handler(app: Any, fmt: str, rows: list[dict[str, Any]]) -> LatencyResult:
    event = proxy_event("POST", "/predict", {"instances": rows})
    context = LambdaContext()
    response = app(event, context)
    assert response["statusCode"] == 200, response["body"][:300]
    runs = 2000 if len(rows) == 1 else 300 if len(rows) <= 100 else 100
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        app(event, context)
        timings.append((time.perf_counter() - started) * 1000)
    p50, p99 = p50_p99(timings)
    return LatencyResult(fmt, len(rows), p50, p99, runs)
