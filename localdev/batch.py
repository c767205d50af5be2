"""`make batch INPUT=file.csv [WORKERS=N] [ROWS=100000] [PASS_THROUGH=id,...] [IGNORE_EXTRA=1]`:
score a file as Lambda would.

1. starts moto (S3 and SQS over HTTP, in this process) and publishes the demo model
   (trained first if needed) where the `dev` stage reads it;
2. creates the chunk queue and the input-events queue (both sent to the dead-letter
   queue after 3 receives), with the bucket's S3 -> SQS notification on the input prefix;
3. uploads the file, with the job's options as the object's metadata (the S3-event
   convention): the S3 event reaches the splitter handler through SQS;
4. runs N worker processes that long-poll the chunk queue and call the Chalice handler
   with Lambda's SQS event shape, deleting only the messages it did not report failed;
   the dead-letter queue is polled into its handler the same way;
5. prints progress, then the outcome (a failed job's reason and the columns at fault)
   and downloads the results into a new folder next to the input.

Without INPUT it first writes a demo file of synthetic applications to artifacts/.
"""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson

from chalicelib.batch_layout import InputObject, InvalidOptions, JobOptions, input_format, job_id
from chalicelib.config import APP_NAME, BatchQueues, Settings
from chalicelib.errors import NotFound
from deployment.batch_stack import batch_environment
from deployment.cli import OneLineParser
from deployment.stages import stage_environment
from localdev.servers import MotoServer, model_cache_env, s3_env
from localdev.stack import DEMO_DIR, ensure_demo_model, publish_demo
from modelops.cli_errors import UserMistake, fail
from project_paths import PROJECT_DIR

#: Lambda's SQS event source mapping retries a message this often before the DLQ.
MAX_RECEIVES = 3


def local_env(url: str, stage: str) -> dict[str, str]:
    """The stage's environment, with S3 and SQS pointed at the local moto server; a stage
    without its own batch path gets the names `configure --batch` would give it."""
    scheme = batch_environment(APP_NAME, stage)
    return scheme | stage_environment(stage) | s3_env(url) | {"AWS_ENDPOINT_URL_SQS": url}


@dataclass(frozen=True)
class Queues:
    """Queue URLs and ARNs of the local batch path."""

    chunks: str
    chunks_arn: str
    dead_letters: str
    dead_letters_arn: str
    input_events: str
    input_events_arn: str


def create_queues(
    sqs: Any, names: BatchQueues, visibility_timeout: int, max_receives: int = MAX_RECEIVES,
    events_visibility: int | None = None,
) -> Queues:  # fmt: skip
    """The chunk and input-events queues (visibility `visibility_timeout`, or
    `events_visibility` for input events), both redriven to the one dead-letter queue."""

    def create(name: str, **attributes: str) -> tuple[str, str]:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return url, arn["Attributes"]["QueueArn"]

    dlq, dlq_arn = create(names.dead_letters)
    redrive = orjson.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
    chunks, chunks_arn = create(
        names.chunks, VisibilityTimeout=str(visibility_timeout), RedrivePolicy=redrive.decode()
    )
    visibility = str(visibility_timeout if events_visibility is None else events_visibility)
    events, events_arn = create(
        names.input_events, VisibilityTimeout=visibility, RedrivePolicy=redrive.decode()
    )
    return Queues(chunks, chunks_arn, dlq, dlq_arn, events, events_arn)


def notify_on_input(s3: Any, bucket: str, prefix: str, queue_arn: str) -> None:
    """S3 -> SQS notification for objects created under `prefix` (sends s3:TestEvent)."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{
                "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
            }]
        },
    )  # fmt: skip


class LambdaContext:
    """The parts of Lambda's context object a handler may read."""

    function_name = "local-batch"
    memory_limit_in_mb = 256
    aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for messages from ReceiveMessage."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            }
            for m in messages
        ]
    }


def poll_once(
    sqs: Any,
    url: str,
    arn: str,
    handler: Callable[[dict[str, Any], Any], Any],
    batch_size: int = 1,
    wait_seconds: int = 1,
) -> int:
    """One receive -> handler -> delete round, as the event source mapping does it:
    messages the handler lists in batchItemFailures (or all, if it raises) stay and
    reappear after the visibility timeout. Returns how many were received."""
    messages = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=batch_size,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"],
    ).get("Messages", [])
    if not messages:
        return 0
    try:
        answer = handler(sqs_event(messages, arn), LambdaContext()) or {}
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
    except Exception:  # the whole batch is retried
        failed = {m["MessageId"] for m in messages}
    done = [m for m in messages if m["MessageId"] not in failed]
    for first in range(0, len(done), 10):
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[first : first + 10])
            ],
        )
    return len(messages)


def worker_main(
    env: dict[str, str], queues: Queues, batch_size: int, stop: Any, out: Any,
    log_path: Path | None = None,
) -> None:  # fmt: skip
    """A worker process: the chunk handler polled until `stop` is set; reports peak RSS.
    With `log_path`, what the function prints (its EMF and JSON log lines, CloudWatch's
    on Lambda) goes there instead of the console the progress bar is drawn on."""
    if log_path is not None:
        sys.stdout = open(log_path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)
    os.environ.update(env)
    import app

    sqs = boto3.client("sqs")
    try:
        while not stop.is_set():
            poll_once(sqs, queues.chunks, queues.chunks_arn, app.score_batch_chunks, batch_size)
    finally:
        out.put(peak_rss_mb())


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, it starts afresh
    at exec, so a spawned worker does not report its parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Workers:
    """Running worker processes, and each stopped one's peak RSS in MB."""

    processes: list[Any]
    peaks: list[float]


@contextmanager
def worker_processes(
    env: dict[str, str], queues: Queues, count: int, batch_size: int = 1,
    log_dir: Path | None = None,
) -> Iterator[Workers]:  # fmt: skip
    """`count` worker processes for the duration; `peaks` fills once they stopped (a
    killed one reports none). With `log_dir`, worker N prints to `worker-N.log` there."""
    context = multiprocessing.get_context("spawn")
    stop, out = context.Event(), context.Queue()
    logs = [None if log_dir is None else log_dir / f"worker-{n}.log" for n in range(count)]
    workers = Workers(
        [
            context.Process(target=worker_main, args=(env, queues, batch_size, stop, out, log))
            for log in logs
        ],
        [],
    )
    for process in workers.processes:
        process.start()
    try:
        yield workers
    finally:
        stop.set()
        for process in workers.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        while not out.empty():
            workers.peaks.append(out.get())


def wait_for_summary(
    jobs: Any,
    job: str,
    poll: Callable[[], None],
    timeout: float,
    show: Callable[[dict[str, Any], float], None] | None = None,
) -> dict[str, Any]:
    """Run `poll` (dead letters) and report progress until the job's summary is there."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        poll()
        state = jobs.progress(job)
        if show is not None:
            show(state, time.monotonic() - started)
        if state["status"] != "running":
            return dict(state)
        time.sleep(0.3)
    raise TimeoutError(f"job {job} did not finish in {timeout:.0f} s")


def show_progress(state: dict[str, Any], seconds: float) -> None:
    if state["status"] == "failed":  # ended before any row: the outcome line says why
        return
    done = state["scored"] + state["rejected"]
    total = state["rows"] or 1
    rate = done / seconds if seconds else 0.0
    eta = (total - done) / rate if rate else float("inf")
    width = 30
    bar = "#" * int(width * done / total)
    print(
        f"\r[{bar:<{width}}] {done:>10,}/{total:,} rows  {rate:>9,.0f} rows/s  "
        f"ETA {eta:>5.0f} s  parts {state.get('parts_done', state['parts'])}/{state['parts']}",
        end="",
        flush=True,
    )


def results_dir(input_path: Path, job: str) -> Path:
    """A new folder next to the input, never an existing one."""
    base = input_path.with_name(f"{input_path.stem}-results-{job}")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def download_results(s3: Any, bucket: str, prefix: str, target: Path) -> int:
    """Every object of the job but its state markers, into `target` (created)."""
    target.mkdir(parents=True)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix) :]
            if not name.startswith("state/"):
                s3.download_file(bucket, item["Key"], str(target / name))
                count += 1
    return count


def demo_input(rows: int) -> Path:
    """A CSV of `rows` synthetic applications in artifacts/ (made once per size)."""
    from modelops.loan_schema import GRADE_COLUMN, raw_columns

    path = PROJECT_DIR / "artifacts" / f"batch-demo-{rows}.csv"
    if not path.exists():
        print(f"==> writing {rows:,} synthetic applications to {path.relative_to(PROJECT_DIR)}")
        write_demo_csv(path, rows, [c for c in raw_columns() if c != GRADE_COLUMN])
    return path


def write_demo_csv(path: Path, rows: int, columns: list[str], seed: int = 99) -> None:
    import csv

    from modelops.demo_data import generate

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for first in range(0, rows, 100_000):
            data = generate(min(100_000, rows - first), seed + first)
            values = [data[c].tolist() if hasattr(data[c], "tolist") else data[c] for c in columns]
            writer.writerows(zip(*values, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="make batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, help="a .csv or .jsonl file (default: demo)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the demo file")
    parser.add_argument("--rows-per-chunk", type=int, default=None)
    parser.add_argument("--pass-through", default="", help="columns copied into every "
                        "output and error line, comma-separated (e.g. application_id)")  # fmt: skip
    parser.add_argument("--ignore-extra-columns", action="store_true",
                        help="ignore columns that are not model fields")  # fmt: skip
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    try:
        path, options = _checked(args)
    except UserMistake as exc:
        return fail(str(exc))
    with MotoServer() as server, tempfile.TemporaryDirectory(prefix="keras-batch-") as scratch:
        env = local_env(server.url, args.stage) | model_cache_env(Path(scratch))
        if args.rows_per_chunk:
            env["BATCH_ROWS_PER_CHUNK"] = str(args.rows_per_chunk)
        os.environ.update(env)
        ensure_demo_model(DEMO_DIR)
        publish_demo(DEMO_DIR, args.stage, "1")
        summary, target, peaks = run_job(env, path, args.workers, args.timeout, options)
    print(f"\n{outcome(summary)}")
    if peaks:
        print(f"==> peak memory per worker: {max(peaks):.0f} MB")
    print(f"==> results: {target}")
    return 0 if summary["status"] == "completed" else 1


def _checked(args: argparse.Namespace) -> tuple[Path, JobOptions]:
    """The input file and the job's options; UserMistake says which option to fix."""
    for value, option in ((args.workers, "--workers"), (args.rows, "--rows")):
        if value < 1:
            raise UserMistake(f"{option}={value} must be 1 or more")
    names = tuple(name.strip() for name in args.pass_through.split(",") if name.strip())
    try:
        options = JobOptions(names, args.ignore_extra_columns)
    except InvalidOptions as exc:
        raise UserMistake(f"--pass-through=: {exc}") from None
    if args.input is not None and not args.input.is_file():
        raise UserMistake(f"--input={args.input} is not a file: give a .csv or .jsonl file, "
                          "or leave --input out for the demo file")  # fmt: skip
    if args.input is not None and input_format(args.input.name) is None:
        raise UserMistake(f"--input={args.input} must end in .csv or .jsonl")
    return (args.input or demo_input(args.rows)).resolve(), options


def outcome(summary: dict[str, Any]) -> str:
    """The job's end as `make batch` prints it: counts, and the reason when it did not
    complete cleanly (with the columns at fault)."""
    line = (f"==> {summary['status']}: {summary['scored']:,} scored, "
            f"{summary['rejected']:,} rejected of {summary['rows']:,} rows")  # fmt: skip
    model = summary.get("model")
    if model:
        line += f"; model {model['name']} v{model['version']}"
    if summary.get("reason"):
        line += f"\n==> reason: {summary['reason']}"
    for problem in summary.get("problems", []):
        line += f"\n    {problem['field'] or 'header'}: {problem['problem']}"
    return line


def _shown(path: Path) -> Path:
    """`path` relative to the project when inside it."""
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path


def run_job(
    env: dict[str, str], path: Path, workers: int, timeout: float,
    options: JobOptions | None = None,
) -> tuple[dict[str, Any], Path, list[float]]:  # fmt: skip
    """Upload `path` (`options` as its metadata) and score it with `workers` processes;
    (summary, results, peaks)."""
    options = options or JobOptions()
    import app
    from chalicelib.wiring import build_batch_jobs

    settings = Settings.from_env(env)
    batch = settings.batch
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    if batch.bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=batch.bucket)
    queues = create_queues(sqs, batch.queues, visibility_timeout=60, events_visibility=10)
    notify_on_input(s3, batch.bucket, batch.input_prefix, queues.input_events_arn)
    key = f"{batch.input_prefix}{path.name}"
    print(
        f"==> uploading {path.name} ({path.stat().st_size / 1e6:.1f} MB) to s3://{batch.bucket}/{key}"
    )
    s3.upload_file(str(path), batch.bucket, key,
                   ExtraArgs={"Metadata": options.to_metadata()})  # fmt: skip
    jobs = build_batch_jobs(settings)
    # The functions' own output (EMF metrics, JSON log lines: CloudWatch's on Lambda) goes
    # to files, so the console shows the progress bar.
    log_dir = PROJECT_DIR / "artifacts" / "batch-logs" / path.stem
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        worker_processes(env, queues, workers, batch.queues.worker_batch_size, log_dir) as pool,
        open(log_dir / "splitter.log", "a") as splitter_log,
    ):
        print(f"==> splitting (input event -> splitter handler); {workers} worker process(es)")

        def dead_letters() -> None:
            with contextlib.redirect_stdout(splitter_log):
                poll_once(sqs, queues.dead_letters, queues.dead_letters_arn,
                          app.fail_batch_chunks, batch_size=10, wait_seconds=0)  # fmt: skip

        with contextlib.redirect_stdout(splitter_log):
            job = _split(sqs, queues, app.start_batch_jobs, jobs, (batch.bucket, key, options),
                         dead_letters)  # fmt: skip
        print(f"==> job {job}; the functions' metrics and logs: {_shown(log_dir)}/")

        summary = wait_for_summary(jobs, job, dead_letters, timeout, show_progress)
    target = results_dir(path, job)
    download_results(s3, batch.bucket, f"{batch.output_prefix}{job}/", target)
    return summary, target, pool.peaks


def _split(
    sqs: Any, queues: Queues, handler: Any, jobs: Any, upload: tuple[str, str, JobOptions],
    dead_letters: Callable[[], None],
) -> str:  # fmt: skip
    """Deliver input events to the splitter handler (and dead letters to theirs, so an
    input that fails every attempt ends its job) until the job of `upload` exists."""
    bucket, key, options = upload
    head = boto3.client("s3").head_object(Bucket=bucket, Key=key)
    job = job_id(InputObject.from_head(bucket, key, head), options)
    for _ in range(600):
        poll_once(sqs, queues.input_events, queues.input_events_arn, handler, wait_seconds=1)
        dead_letters()
        try:
            jobs.progress(job)
        except NotFound:  # not split yet
            continue
        return job
    raise TimeoutError("the input event did not start a job")


if __name__ == "__main__":
    sys.exit(main())
