"""Batch memory on hostile files: the splitter's and a worker's peak RSS (VmHWM, each in
a fresh process, the model loaded) for files with 50 MB lines and with many lines just
under the 1 MiB line cap. Target: <= 200 MB for any input file.

    python -m benchmarks.batch_memory   (also part of `python -m benchmarks.batch`)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import orjson

from chalicelib.config import Settings
from localdev.batch import create_queues, local_env, peak_rss_mb

TARGET_MB = 200
LONG = 50 << 20
UNDER_CAP = (1 << 20) - 16
GOOD_ROWS = 200


@dataclass(frozen=True)
class MemoryRow:
    name: str
    size_mb: float
    rows: int
    rejected: int
    status: str
    splitter_mb: float
    worker_mb: float | None
    seconds: float


def hostile_files(csv_header: bytes, csv_row: bytes, json_row: bytes) -> dict[str, bytes]:
    """name -> file body: good rows around the hostile lines."""
    good_csv = (csv_row + b"\n") * GOOD_ROWS
    good_json = (json_row + b"\n") * GOOD_ROWS
    objects = b"[" + b"{}," * ((UNDER_CAP - 2) // 3) + b"{}]"
    return {
        "csv: a 50 MB line of commas": csv_header + b"\n" + good_csv + b"," * LONG + b"\n"
        + good_csv,
        "csv: a 50 MB quoted value": csv_header + b"\n" + good_csv + b'"' + b"x" * LONG + b'"\n'
        + good_csv,
        "csv: 40 lines of 1 MiB commas": csv_header + b"\n" + good_csv
        + (b"," * UNDER_CAP + b"\n") * 40 + good_csv,
        "csv: a 50 MB header": b"a" * LONG + b"\n" + good_csv,
        "jsonl: a 50 MB line of [{},...]": good_json + b"[" + b"{}," * (LONG // 3) + b"{}]\n"
        + good_json,
        "jsonl: one 50 MB JSON string": good_json + b'"' + b"x" * LONG + b'"\n' + good_json,
        "jsonl: 40 lines of 1 MiB [{},...]": good_json + (objects + b"\n") * 40 + good_json,
    }  # fmt: skip


def _split_then_score(env: dict[str, str], bucket: str, key: str, out: Any) -> None:
    """In a fresh process: split the object; (seconds, peak MB, chunk message bodies)."""
    os.environ.update(env)
    from chalicelib.wiring import build_batch_jobs

    jobs = build_batch_jobs(Settings.from_env(env))
    started = time.perf_counter()
    job = jobs.start(bucket, key)
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=Settings.from_env(env).batch.queues.chunks)["QueueUrl"]
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    out.put((job, time.perf_counter() - started, peak_rss_mb(), bodies))


def _score(env: dict[str, str], bodies: list[str], job: str, out: Any) -> None:
    """In a fresh process: score every chunk of the job; (summary, peak MB)."""
    os.environ.update(env)
    from chalicelib.batch_layout import Chunk
    from chalicelib.wiring import build_batch_jobs

    jobs = build_batch_jobs(Settings.from_env(env))
    for body in bodies:
        jobs.score(Chunk.from_json(body))
    out.put((jobs.progress(job), peak_rss_mb()))


def measure(
    env: dict[str, str], files: dict[str, bytes], in_child: Callable[..., Any]
) -> list[MemoryRow]:
    env = env | {"BATCH_CHUNK_QUEUE": "memory-chunks", "BATCH_DEAD_LETTER_QUEUE": "memory-dlq",
                 "BATCH_EVENTS_QUEUE": "memory-events"}  # fmt: skip
    settings = Settings.from_env(env)
    batch = settings.batch
    create_queues(boto3.client("sqs"), batch.queues, visibility_timeout=600)
    s3 = boto3.client("s3")
    rows = []
    for number, (name, body) in enumerate(files.items()):
        key = f"{batch.input_prefix}memory-{number}.{name.split(':')[0]}"
        s3.put_object(Bucket=batch.bucket, Key=key, Body=body)
        started = time.perf_counter()
        job, _, splitter_mb, bodies = in_child(_split_then_score, env, batch.bucket, key)
        worker_mb = None
        if bodies:
            summary, worker_mb = in_child(_score, env, bodies, job)
        else:
            summary = orjson.loads(s3.get_object(Bucket=batch.bucket,
                                                 Key=f"{batch.output_prefix}{job}/summary.json")[
                "Body"].read())  # fmt: skip
        rows.append(MemoryRow(name, len(body) / 1e6, summary["rows"], summary["rejected"],
                              summary["status"], splitter_mb, worker_mb,
                              time.perf_counter() - started))  # fmt: skip
    return rows


def print_table(rows: list[MemoryRow], clean_worker_mb: float | None = None) -> None:
    print("\nHostile batch files: peak RSS of the splitter and of a worker scoring every chunk")
    print("(each a fresh process with the model loaded; VmHWM)")
    print(f"{'file':<36}{'MB':>6}{'rows':>6}{'rejected':>9}{'status':>11}{'splitter':>10}"
          f"{'worker':>8}{'s':>6}   target <= {TARGET_MB} MB")  # fmt: skip
    for r in rows:
        peak = max(r.splitter_mb, r.worker_mb or 0)
        worker = "-" if r.worker_mb is None else f"{r.worker_mb:.0f}"
        print(f"{r.name:<36}{r.size_mb:>6.0f}{r.rows:>6}{r.rejected:>9}{r.status:>11}"
              f"{r.splitter_mb:>10.0f}{worker:>8}{r.seconds:>6.1f}   "
              f"{'ok' if peak <= TARGET_MB else 'MISS'}")  # fmt: skip
    if clean_worker_mb is not None:
        print(f"(a clean 50,000-row CSV chunk, for comparison: worker {clean_worker_mb:.0f} MB)")


def main() -> int:
    from benchmarks.batch import in_child, sample_rows
    from localdev.servers import MotoServer
    from localdev.stack import DEMO_DIR, ensure_demo_model, publish_demo

    ensure_demo_model(DEMO_DIR)
    with MotoServer() as server:
        env = local_env(server.url, "dev")
        os.environ.update(env)
        publish_demo(DEMO_DIR, "dev", "1")
        print_table(measure(env, hostile_files(*sample_rows()), in_child))
    return 0


if __name__ == "__main__":
    sys.exit(main())
