"""Warm in-process latency of 1,000 rows through an API Gateway event into the
Chalice app: the project's POST /predict (raw and encoded records) next to the Open
Inference Protocol's infer (binary FP32 tensor, JSON tensor, V2 columnar raw fields),
each with its body size and its JSON-parse floor (orjson.loads of its JSON alone)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.handler_latency import served_app
from benchmarks.stats import p50_p99
from localdev.apigw_events import LambdaContext, proxy_event, route_event
from modelops.examples import encode_records, holdout_records

ROWS = 1000
RUNS = 100
INFER = "/v2/models/{name}/infer"
#: p50 targets in ms (issue 13; /predict's own target is in handler_latency).
TARGET_P50_MS = {"v2 binary tensor": 3.0, "v2 JSON tensor": 10.0, "v2 columnar raw": 10.0,
                 "/predict encoded": 15.0, "/predict raw": 15.0}  # fmt: skip


@dataclass(frozen=True)
class BodyLatency:
    body: str
    body_kb: float
    parse_floor_ms: float
    p50_ms: float
    p99_ms: float
    runs: int


def run_v2_benchmarks(model_dir: Path, tmp_dir: Path) -> list[BodyLatency]:
    """Time every body of ROWS rows through the same warm app."""
    with served_app(model_dir, tmp_dir) as app:
        records, _ = holdout_records(model_dir, ROWS)
        encoded = encode_records(model_dir, records)
        names = list(encoded[0])
        matrix = np.array([[r[n] for n in names] for r in encoded], dtype=np.float32)
        bodies = {
            "/predict raw": _predict(records),
            "/predict encoded": _predict(encoded),
            "v2 binary tensor": _binary_tensor(matrix),
            "v2 JSON tensor": _json_v2(
                [
                    {
                        "name": "features",
                        "datatype": "FP32",
                        "shape": list(matrix.shape),
                        "data": matrix.tolist(),
                    }
                ]
            ),
            "v2 columnar raw": _json_v2(_columns(records)),
        }
        return [_time(app, label, *event) for label, event in bodies.items()]


def print_table(results: list[BodyLatency]) -> None:
    print(f"\nWarm {ROWS:,} rows through the Chalice app (in process, LiteRT engine)")
    print(f"{'body':<18}{'KB':>8}{'parse floor':>13}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'target p50':>13}{'runs':>6}")  # fmt: skip
    for r in results:
        target = TARGET_P50_MS.get(r.body)
        verdict = (
            "" if target is None else f"<= {target:g} {'ok' if r.p50_ms <= target else 'MISS'}"
        )
        print(f"{r.body:<18}{r.body_kb:>8.0f}{r.parse_floor_ms:>13.3f}{r.p50_ms:>9.3f}"
              f"{r.p99_ms:>9.3f}{verdict:>13}{r.runs:>6}")  # fmt: skip


Event = tuple[dict[str, Any], bytes, bytes]


def _predict(rows: list[dict[str, Any]]) -> Event:
    body = json.dumps({"instances": rows}).encode()
    return proxy_event("POST", "/predict", body.decode()), body, body


def _json_v2(inputs: list[dict[str, Any]]) -> Event:
    body = json.dumps({"inputs": inputs}).encode()
    event = route_event("POST", INFER, {"name": "loan-grade"}, body,
                        {"Content-Type": "application/json"}, binary=False)  # fmt: skip
    return event, body, body


def _binary_tensor(matrix: np.ndarray) -> Event:
    header = json.dumps({"inputs": [{"name": "features", "datatype": "FP32",
                                     "shape": list(matrix.shape),
                                     "parameters": {"binary_data_size": matrix.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()  # fmt: skip
    body = header + matrix.astype("<f4").tobytes()
    event = route_event("POST", INFER, {"name": "loan-grade"}, body,
                        {"Content-Type": "application/octet-stream",
                         "Accept": "application/octet-stream",
                         "Inference-Header-Content-Length": str(len(header))})  # fmt: skip
    return event, body, header


def _columns(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    columns = []
    for name in records[0]:
        values = [record[name] for record in records]
        datatype = "BYTES" if isinstance(values[0], str) else "FP64"
        columns.append({"name": name, "datatype": datatype, "shape": [len(values)],
                        "data": values})  # fmt: skip
    return columns


def _time(app: Callable[..., Any], label: str, event: dict[str, Any], body: bytes,
          json_part: bytes) -> BodyLatency:  # fmt: skip
    context = LambdaContext()
    response = app(event, context)
    assert response["statusCode"] == 200, (label, str(response["body"])[:300])
    timings, floor = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        app(event, context)
        timings.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        orjson.loads(json_part)
        floor.append((time.perf_counter() - started) * 1000)
    p50, p99 = p50_p99(timings)
    return BodyLatency(label, len(body) / 1024, p50_p99(floor)[0], p50, p99, RUNS)
