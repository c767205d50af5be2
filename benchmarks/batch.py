"""Batch scoring benchmark: per-worker rows/s, a 1,000,000-row local run, peak memory
(also on hostile files: benchmarks.batch_memory), and a projection of wall time and
cost per million rows on Lambda.

    python -m benchmarks.batch [--rows 1000000] [--workers 2] [--skip-million] [--skip-memory]

Per-worker throughput is measured in a separate process (moto, serving S3 and SQS,
runs in this one): range GET, parse, validate, predict and write one 50,000-row chunk,
timed warm, median of 3. The 1,000,000-row run is `make batch`'s path: S3 event ->
splitter -> SQS -> worker processes -> summary.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import multiprocessing
import queue
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson

from benchmarks.stats import p50_p99
from chalicelib.config import Settings
from layer_build.platforms import ARM64, X86_64
from localdev.batch import create_queues, demo_input, local_env, peak_rss_mb, run_job
from localdev.servers import MotoServer
from localdev.stack import DEMO_DIR, ensure_demo_model, publish_demo

CHUNK_ROWS = 50_000
TARGET_ROWS_PER_S = 50_000
TARGET_MILLION_S = 30
TARGET_MB = 200

# Prices (USD, us-east-1) as given in issues 11 and 19, November 2026; not re-checked
# against the live price list. Lambda compute per architecture: layer_build.platforms.
PRICE_GB_S = X86_64.price_per_gb_second
ARM64_RATIO = ARM64.price_per_gb_second / X86_64.price_per_gb_second  # 0.8
PRICE_INVOCATION = 0.20 / 1e6
PRICE_SQS_REQUEST = 0.40 / 1e6
PRICE_S3_PUT = 0.005 / 1000  # also LIST
PRICE_S3_GET = 0.0004 / 1000
PRICE_API_GATEWAY_REQUEST = 3.50 / 1e6  # REST API, first 333 M requests a month
LAMBDA_MB = 256
# Lambda gives CPU in proportion to memory: one full vCPU at 1,769 MB.
LAMBDA_CPU_SHARE = LAMBDA_MB / 1769


@dataclass(frozen=True)
class WorkerRate:
    fmt: str
    rows: int
    seconds: list[float]
    cpu_seconds: list[float]
    peak_mb: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / statistics.median(self.seconds)

    @property
    def cpu_per_row(self) -> float:
        return statistics.median(self.cpu_seconds) / self.rows


def _score_child(env: dict[str, str], body: str, out: Any) -> None:
    """In a fresh process: score one chunk once warm, then 3 timed runs."""
    os.environ.update(env)
    from chalicelib.batch_layout import Chunk
    from chalicelib.wiring import build_batch_jobs

    jobs = build_batch_jobs(Settings.from_env(env))
    chunk = Chunk.from_json(body)
    jobs.score(chunk)  # loads the model; a redelivery rewrites the same objects
    walls, cpus = [], []
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        jobs.score(chunk)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    out.put((walls, cpus, peak_rss_mb()))


def _split_child(env: dict[str, str], bucket: str, key: str, out: Any) -> None:
    """In a fresh process: the splitter on one object; (seconds, peak MB)."""
    os.environ.update(env)
    from chalicelib.wiring import build_batch_jobs

    jobs = build_batch_jobs(Settings.from_env(env))
    started = time.perf_counter()
    jobs.start(bucket, key)
    out.put((time.perf_counter() - started, peak_rss_mb()))


def in_child(target: Any, *args: Any) -> Any:
    """`target(*args, out)` in a fresh (spawned) process; what it put on `out`."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=target, args=(*args, out))
    process.start()
    while True:
        try:
            result = out.get(timeout=1)
            break
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(f"{target.__name__} failed (its traceback is above)") from None
    process.join()
    return result


def measure_worker(env: dict[str, str], fmt: str, path: Path) -> WorkerRate:
    """One chunk of CHUNK_ROWS rows of `path` (CSV, or the same rows as JSONL)."""
    env = env | {
        "BATCH_ROWS_PER_CHUNK": str(CHUNK_ROWS), "BATCH_CHUNK_QUEUE": f"bench-{fmt}-chunks",
        "BATCH_DEAD_LETTER_QUEUE": f"bench-{fmt}-dlq", "BATCH_EVENTS_QUEUE": f"bench-{fmt}-events",
    }  # fmt: skip
    settings = Settings.from_env(env)
    batch = settings.batch
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    key = f"{batch.input_prefix}bench-{fmt}.{fmt}"
    s3.put_object(Bucket=batch.bucket, Key=key, Body=_first_rows(path, CHUNK_ROWS, fmt))
    queues = create_queues(sqs, batch.queues, visibility_timeout=600)
    from chalicelib.wiring import build_batch_jobs

    build_batch_jobs(settings).start(batch.bucket, key)
    message = sqs.receive_message(QueueUrl=queues.chunks)["Messages"][0]
    sqs.delete_message(QueueUrl=queues.chunks, ReceiptHandle=message["ReceiptHandle"])
    walls, cpus, peak = in_child(_score_child, env, message["Body"])
    return WorkerRate(fmt, CHUNK_ROWS, walls, cpus, peak)


def _first_rows(path: Path, rows: int, fmt: str) -> bytes:
    """The first `rows` rows of the demo CSV, as CSV or as the same records in JSONL."""
    with path.open("rb") as handle:
        lines = [handle.readline() for _ in range(rows + 1)]
    if fmt == "csv":
        return b"".join(lines)
    header = lines[0].decode().rstrip("\r\n").split(",")
    return b"".join(_json_line(header, line) + b"\n" for line in lines[1:])


def _json_line(header: list[str], line: bytes) -> bytes:
    from chalicelib.batch_rows import json_number
    from modelops.loan_schema import categorical_fields

    text = set(categorical_fields())
    values = line.decode().rstrip("\r\n").split(",")
    return orjson.dumps({name: value if name in text else json_number(value)
                         for name, value in zip(header, values, strict=True)})  # fmt: skip


def sample_rows() -> tuple[bytes, bytes, bytes]:
    """The demo CSV's header, its first row, and that row as a JSON line."""
    with demo_input(100_000).open("rb") as handle:
        header, row = (handle.readline().rstrip(b"\r\n") for _ in range(2))
    return header, row, _json_line(header.decode().split(","), row)


def http_seconds_per_request(records: int = 1000, runs: int = 20) -> float:
    """Warm in-process cost of one /predict body of `records` raw records: parse JSON,
    validate, predict, serialise (the HTTP path's Lambda work, without API Gateway)."""
    import orjson

    from chalicelib.wiring import get_service
    from modelops.examples import holdout_records

    rows, _ = holdout_records(DEMO_DIR, records)
    body = orjson.dumps({"instances": rows})
    service = get_service()
    service.predict(rows)
    samples = []
    for _ in range(runs):
        started = time.process_time()
        orjson.dumps(service.predict(orjson.loads(body)["instances"]))
        samples.append(time.process_time() - started)
    return p50_p99(samples)[0]


def projection(cpu_per_row: float, rows_per_chunk: int, concurrency: int) -> dict[str, float]:
    """Wall time and cost of 1,000,000 rows on 256 MB Lambdas (CPU-bound scaling)."""
    rows = 1_000_000
    chunks = -(-rows // rows_per_chunk)
    lambda_per_row = cpu_per_row / LAMBDA_CPU_SHARE
    chunk_seconds = rows_per_chunk * lambda_per_row
    waves = -(-chunks // concurrency)
    gb_s = rows * lambda_per_row * LAMBDA_MB / 1024
    sqs_requests = chunks / 10 + 2 * chunks  # SendMessageBatch, receive, delete
    s3_puts = 3 * chunks + 1  # part, done marker, LIST of markers; the summary
    s3_gets = 1 + chunks + chunks  # splitter read, range GETs, markers read once at the end
    costs = {
        "compute": gb_s * PRICE_GB_S,
        "invocations": (chunks + 1) * PRICE_INVOCATION,
        "sqs": sqs_requests * PRICE_SQS_REQUEST,
        "s3": s3_puts * PRICE_S3_PUT + s3_gets * PRICE_S3_GET,
    }
    return {"chunks": chunks, "chunk_s": chunk_seconds, "wall_s": waves * chunk_seconds,
            **costs, "total": sum(costs.values())}  # fmt: skip


def http_projection(seconds_per_request: float, concurrency: int) -> dict[str, float]:
    requests = 1000  # 1,000 records each
    lambda_seconds = seconds_per_request / LAMBDA_CPU_SHARE
    costs = {
        "compute": requests * lambda_seconds * LAMBDA_MB / 1024 * PRICE_GB_S,
        "invocations": requests * PRICE_INVOCATION,
        "api_gateway": requests * PRICE_API_GATEWAY_REQUEST,
    }
    waves = -(-requests // concurrency)
    return {"wall_s": waves * lambda_seconds, **costs, "total": sum(costs.values())}


def print_tables(
    rates: list[WorkerRate],
    million: tuple[float, dict[str, Any], list[float]] | None,
    split: tuple[float, float] | None,
    http_s: float,
) -> None:
    print("\nPer worker, end to end (range GET, parse, validate, predict, write), 50,000 rows")
    print(f"{'format':<7}{'rows/s':>10}{'CPU µs/row':>12}{'rows/s on CPU':>15}{'peak MB':>9}")
    for r in rates:
        verdict = "ok" if r.rows_per_s >= TARGET_ROWS_PER_S else "MISS"
        verdict = f"   target >= {TARGET_ROWS_PER_S:,} {verdict}" if r.fmt == "csv" else ""
        print(f"{r.fmt:<7}{r.rows_per_s:>10,.0f}{r.cpu_per_row * 1e6:>12.1f}"
              f"{1 / r.cpu_per_row:>15,.0f}{r.peak_mb:>9.0f}"
              f"{verdict}")  # fmt: skip
    if million is not None:
        seconds, summary, peaks = million
        print(
            f"\n{summary['rows']:,} rows, {len(peaks)} workers: {seconds:.1f} s wall "
            f"({summary['rows'] / seconds:,.0f} rows/s), status {summary['status']}; "
            f"target <= {TARGET_MILLION_S} s {'ok' if seconds <= TARGET_MILLION_S else 'MISS'}"
        )
        print(f"peak memory per worker: {', '.join(f'{p:.0f}' for p in peaks)} MB "
              f"(target <= {TARGET_MB})")  # fmt: skip
    if split is not None:
        print(f"splitter on that file: {split[0]:.1f} s, peak memory {split[1]:.0f} MB")
    csv_rate = next(r for r in rates if r.fmt == "csv")
    print(
        f"\nProjection per 1,000,000 raw CSV rows on Lambda {LAMBDA_MB} MB "
        f"({LAMBDA_CPU_SHARE:.3f} vCPU), from {csv_rate.cpu_per_row * 1e6:.1f} CPU µs/row"
    )
    print(
        f"prices: compute ${X86_64.price_per_gb_second:.10f}/GB-s x86_64, "
        f"${ARM64.price_per_gb_second:.10f}/GB-s arm64, invocations $0.20/M, SQS $0.40/M, "
        "S3 PUT/LIST $0.005/1k, GET $0.0004/1k, API Gateway REST $3.50/M (Nov 2026); arm64 "
        "assumes the same CPU time per row (not measured here: no aarch64 interpreter)"
    )
    print(f"{'path':<26}{'concur.':>8}{'chunks':>8}{'chunk s':>9}{'wall s':>8}{'compute':>10}"
          f"{'invoc.':>9}{'SQS':>9}{'S3':>9}{'API GW':>9}{'total $':>9}"
          f"{'arm64 $':>9}")  # fmt: skip
    for concurrency in (100, 1000):
        for rows_per_chunk in (CHUNK_ROWS, max(1_000_000 // concurrency, 1)):
            p = projection(csv_rate.cpu_per_row, rows_per_chunk, concurrency)
            print(f"{f'batch, {rows_per_chunk:,} rows/chunk':<26}{concurrency:>8}"
                  f"{p['chunks']:>8.0f}{p['chunk_s']:>9.1f}{p['wall_s']:>8.1f}"
                  f"{p['compute']:>10.4f}{p['invocations']:>9.5f}{p['sqs']:>9.5f}"
                  f"{p['s3']:>9.5f}{'':>9}{p['total']:>9.4f}{arm64_total(p):>9.4f}")  # fmt: skip
        h = http_projection(http_s, concurrency)
        print(f"{'HTTP, 1,000 records/req':<26}{concurrency:>8}{1000:>8}"
              f"{http_s / LAMBDA_CPU_SHARE:>9.2f}{h['wall_s']:>8.1f}{h['compute']:>10.4f}"
              f"{h['invocations']:>9.5f}{'':>9}{'':>9}{h['api_gateway']:>9.5f}"
              f"{h['total']:>9.4f}{arm64_total(h):>9.4f}")  # fmt: skip


def arm64_total(costs: dict[str, float]) -> float:
    """The same projection on arm64: compute at Graviton's GB-second price."""
    return costs["total"] - costs["compute"] * (1 - ARM64_RATIO)


def run_batch_benchmarks(
    rows: int, workers: int, skip_million: bool = False, skip_memory: bool = False
) -> None:
    from benchmarks import batch_memory

    ensure_demo_model(DEMO_DIR)
    sample = demo_input(100_000)
    with MotoServer() as server:
        env = local_env(server.url, "dev")
        os.environ.update(env)
        publish_demo(DEMO_DIR, "dev", "1")
        rates = [measure_worker(env, fmt, sample) for fmt in ("csv", "jsonl")]
        http_s = http_seconds_per_request()
        million = split = None
        if not skip_million:
            path = demo_input(rows)
            started = time.perf_counter()
            summary, _, peaks = run_job(env, path, workers, timeout=1800)
            million = (time.perf_counter() - started, summary, peaks)
            settings = Settings.from_env(env)
            key = f"{settings.batch.input_prefix}{path.name}"
            again = f"{key.removesuffix('.csv')}-again.csv"  # another job: split it afresh
            boto3.client("s3").upload_file(str(path), settings.batch.bucket, again)
            split = in_child(_split_child, env, settings.batch.bucket, again)
        memory = None
        if not skip_memory:
            memory = batch_memory.measure(env, batch_memory.hostile_files(*sample_rows()),
                                          in_child)  # fmt: skip
    print_tables(rates, million, split, http_s)
    if memory is not None:
        csv_rate = next(r for r in rates if r.fmt == "csv")
        batch_memory.print_table(memory, csv_rate.peak_mb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--skip-memory", action="store_true", help="no hostile-file rows")
    args = parser.parse_args(argv)
    run_batch_benchmarks(args.rows, args.workers, args.skip_million, args.skip_memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
