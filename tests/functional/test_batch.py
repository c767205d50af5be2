"""Batch scoring against moto S3 + SQS over HTTP: the splitter, workers polled with
Lambda's SQS event shape, the dead-letter queue, and the faults of issue 11."""

from __future__ import annotations

import contextlib
import csv
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import pytest

from chalicelib.batch import BatchJobs
from chalicelib.batch_layout import Chunk, JobLayout
from chalicelib.config import Settings
from chalicelib.errors import NotFound
from chalicelib.surfaces import batch_sqs
from chalicelib.wiring import build_batch_jobs, get_batch_jobs
from localdev.batch import Queues, create_queues, local_env, poll_once, worker_processes
from localdev.servers import MotoServer
from modelops.examples import holdout_records
from tests.conftest import PublishedModel

ROWS_PER_CHUNK = 120
SECRET = "Jane Doe 123-45-6789"


@dataclass
class Batch:
    env: dict[str, str]
    jobs: BatchJobs
    queues: Queues
    bucket: str
    input_prefix: str
    output_prefix: str

    def upload(self, name: str, body: bytes) -> str:
        key = f"{self.input_prefix}{name}"
        boto3.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def handler(self, score: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            messages = [(r["messageId"], r["body"]) for r in event["Records"]]
            return score(lambda: self.jobs, messages)

        return handle

    def drain(self, job: str, timeout: float = 90) -> dict[str, Any]:
        """Poll chunks and dead letters in this process until the job's summary exists."""
        sqs = boto3.client("sqs")
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            queues = self.queues
            score, dead = self.handler(batch_sqs.score_chunks), self.handler(batch_sqs.dead_letters)
            poll_once(sqs, queues.chunks, queues.chunks_arn, score, batch_size=5, wait_seconds=0)
            poll_once(sqs, queues.dead_letters, queues.dead_letters_arn, dead, 10, wait_seconds=0)
            state = self.jobs.progress(job)
            if state["status"] != "running":
                return state
            time.sleep(0.2)
        raise TimeoutError(job)

    def outputs(self, job: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
        """(part lines, error lines, the errors files' text) of a job."""
        s3 = boto3.client("s3")
        prefix = JobLayout(self.output_prefix, job).root
        parts: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        text = ""
        listed = s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        for item in sorted(listed, key=lambda i: i["Key"]):
            name = item["Key"][len(prefix) :]
            body = s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
            if name.startswith("part-"):
                parts += [orjson.loads(line) for line in body.splitlines()]
            elif name.startswith("errors-"):
                errors += [orjson.loads(line) for line in body.splitlines()]
                text += body.decode()
        return parts, errors, text


def _batch(env: dict[str, str], monkeypatch: Any) -> Iterator[Batch]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env(env)
    queues = create_queues(boto3.client("sqs"), settings.batch.queues, visibility_timeout=1)
    get_batch_jobs.cache_clear()
    yield Batch(env, build_batch_jobs(settings), queues, settings.batch.bucket,
                settings.batch.input_prefix, settings.batch.output_prefix)  # fmt: skip
    get_batch_jobs.cache_clear()


@pytest.fixture
def batch(
    s3_server: MotoServer, published: PublishedModel, tmp_path: Path, monkeypatch: Any
) -> Iterator[Batch]:
    """A batch path of its own: prefixes and queues no other test uses."""
    tag = uuid.uuid4().hex[:8]
    env = local_env(s3_server.url, "dev") | {
        "BATCH_ROWS_PER_CHUNK": str(ROWS_PER_CHUNK), "BATCH_PREDICT_ROWS": "50",
        "BATCH_INPUT_PREFIX": f"batch/in-{tag}/", "BATCH_OUTPUT_PREFIX": f"batch/out-{tag}/",
        "BATCH_CHUNK_QUEUE": f"chunks-{tag}", "BATCH_DEAD_LETTER_QUEUE": f"dlq-{tag}",
        "BATCH_EVENTS_QUEUE": f"events-{tag}", "MODEL_CACHE_DIR": str(tmp_path / "cache"),
    }  # fmt: skip
    yield from _batch(env, monkeypatch)


@pytest.fixture
def dev_stage_batch(
    s3_server: MotoServer, published: PublishedModel, tmp_path: Path, monkeypatch: Any
) -> Iterator[Batch]:
    """The dev stage's own batch prefixes and queues: what Chalice's test client applies."""
    env = local_env(s3_server.url, "dev") | {
        "BATCH_ROWS_PER_CHUNK": str(ROWS_PER_CHUNK), "BATCH_PREDICT_ROWS": "50",
        "MODEL_CACHE_DIR": str(tmp_path / "cache"),
    }  # fmt: skip
    # moto's state is per process: the deploy rehearsal may have made these queues with
    # the deployed attributes; this test wants its own (1 s visibility).
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL_SQS"])
    queues = Settings.from_env(env).batch.queues
    for name in (queues.chunks, queues.dead_letters, queues.input_events):
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
    yield from _batch(env, monkeypatch)


def csv_bytes(records: list[dict[str, Any]], extra_lines: list[str] = ()) -> bytes:  # type: ignore[assignment]
    names = list(records[0])
    lines = [",".join(names)]
    for record in records:
        row: list[str] = []
        writer = csv.writer(_Collect(row))
        writer.writerow([record[n] for n in names])
        lines.append(row[0].rstrip("\r\n"))
    return ("\n".join(lines + list(extra_lines)) + "\n").encode()


class _Collect:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def write(self, text: str) -> None:
        self.into.append(text)


def assert_each_row_once(parts: list[dict[str, Any]], errors: list[dict[str, Any]], rows: int):  # type: ignore[no-untyped-def]
    counts = Counter(p["row"] for p in parts) + Counter({r: 1 for r in {e["row"] for e in errors}})
    assert sorted(counts) == list(range(rows))
    assert set(counts.values()) == {1}


def test_rows_scored_once_and_equal_to_predict(
    batch: Batch, published: PublishedModel, api_url: str
) -> None:
    records, _ = holdout_records(published.model_dir, 500)
    names = list(records[0])
    bad = records[3] | {"annual_inc": SECRET}
    bad_category = records[4] | {"term": SECRET}
    extra = [
        ",".join(str(bad[n]) for n in names),
        ",".join(str(bad_category[n]) for n in names),
        "1,2,3",
        "",
    ]
    key = batch.upload("mixed.csv", csv_bytes(records, extra))
    job = batch.jobs.start(batch.bucket, key)
    summary = batch.drain(job)

    parts, errors, text = batch.outputs(job)
    rows = len(records) + len(extra)
    assert summary["status"] == "completed"
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (rows, 500, 4)
    assert summary["parts"] == -(-rows // ROWS_PER_CHUNK)
    assert summary["model"] == {"name": "loan-grade", "version": "1"}
    assert_each_row_once(parts, errors, rows)
    assert [p["row"] for p in parts] == list(range(500))  # input order within parts
    by_row = {e["row"]: e for e in errors}
    assert by_row[500]["field"] == "annual_inc" and "number" in by_row[500]["problem"]
    assert by_row[501]["field"] == "term" and "category" in by_row[501]["problem"]
    assert "expected" in by_row[502]["problem"] and by_row[503]["problem"] == "empty line"
    assert SECRET not in text and "Jane" not in text

    for first in range(0, 500, 250):  # /predict over HTTP for the same rows
        answer = httpx.post(f"{api_url}/predict", json={"instances": records[first:first + 250]},
                            timeout=60).json()  # fmt: skip
        for offset, prediction in enumerate(answer["predictions"]):
            scored = parts[first + offset]
            assert scored["label"] == prediction["label"]
            assert scored["probabilities"] == pytest.approx(prediction["probabilities"], abs=1e-6)


def test_jsonl_job_and_duplicate_start_is_one_job(batch: Batch, published: PublishedModel) -> None:
    records, _ = holdout_records(published.model_dir, 130)
    lines = [orjson.dumps(r) for r in records] + [b"{not json", b"[1, 2]"]
    key = batch.upload("apps.jsonl", b"\n".join(lines))  # no final line break
    job = batch.jobs.start(batch.bucket, key)
    assert batch.jobs.start(batch.bucket, key) == job  # a duplicate S3 event
    summary = batch.drain(job)
    parts, errors, _ = batch.outputs(job)
    assert (summary["rows"], summary["scored"], summary["rejected"]) == (132, 130, 2)
    assert_each_row_once(parts, errors, 132)
    assert {e["row"]: e["problem"] for e in errors}[130] == "not valid JSON"


def test_bad_header_fails_fast_without_chunks(batch: Batch, published: PublishedModel) -> None:
    records, _ = holdout_records(published.model_dir, 3)
    renamed = [{("income" if k == "annual_inc" else k): v for k, v in r.items()} for r in records]
    job = batch.jobs.start(batch.bucket, batch.upload("bad.csv", csv_bytes(renamed)))
    summary = batch.jobs.progress(job)
    assert summary["status"] == "failed" and "header" in summary["reason"]
    assert {"field": "annual_inc", "problem": "missing column"} in summary["problems"]
    assert {"field": "income", "problem": "unknown column"} in summary["problems"]
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=batch.queues.chunks, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


@pytest.mark.parametrize(("name", "body"), [("empty.csv", b""), ("header-only.csv", None),
                                             ("empty.jsonl", b"")])  # fmt: skip
def test_empty_file_completes_with_zero_rows(
    batch: Batch, published: PublishedModel, name: str, body: bytes | None
) -> None:
    if body is None:
        records, _ = holdout_records(published.model_dir, 1)
        body = csv_bytes(records).split(b"\n", 1)[0] + b"\n"
    job = batch.jobs.start(batch.bucket, batch.upload(name, body))
    summary = batch.jobs.progress(job)
    if name == "empty.csv":  # no header at all: a clear failure
        assert summary["status"] == "failed" and "header" in summary["reason"]
    else:
        assert (summary["status"], summary["rows"], summary["parts"]) == ("completed", 0, 0)


@pytest.mark.slow  # waits out SQS visibility timeouts / worker processes
def test_poison_chunk_lands_in_dlq_and_job_completes(
    batch: Batch, published: PublishedModel
) -> None:
    records, _ = holdout_records(published.model_dir, 300)
    job = batch.jobs.start(batch.bucket, batch.upload("poison.csv", csv_bytes(records)))
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=batch.queues.chunks, MaxNumberOfMessages=10)
    chunks = [(m, Chunk.from_json(m["Body"])) for m in messages["Messages"]]
    assert len(chunks) == 3
    message, poison = next((m, c) for m, c in chunks if c.index == 1)
    sqs.delete_message(QueueUrl=batch.queues.chunks, ReceiptHandle=message["ReceiptHandle"])
    broken = Chunk(**(vars(poison) | {"key": f"{batch.input_prefix}gone.csv"}))
    sqs.send_message(QueueUrl=batch.queues.chunks, MessageBody=broken.to_json())

    summary = batch.drain(job)
    parts, errors, _ = batch.outputs(job)
    assert summary["status"] == "completed_with_failures"
    assert [(f["part"], f["first_row"], f["rows"]) for f in summary["failed_parts"]] == [
        (1, ROWS_PER_CHUNK, ROWS_PER_CHUNK)
    ]
    assert summary["scored"] == 300 - ROWS_PER_CHUNK and not errors
    assert {p["row"] for p in parts} == set(range(300)) - set(range(120, 240))


def test_model_unavailable_messages_are_retried_not_lost(
    batch: Batch, published: PublishedModel
) -> None:
    import app

    records, _ = holdout_records(published.model_dir, 100)
    job = batch.jobs.start(batch.bucket, batch.upload("later.csv", csv_bytes(records)))
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    manifest = f"{published.prefix}/{published.version}/manifest.json"
    saved = s3.get_object(Bucket=published.bucket, Key=manifest)["Body"].read()
    s3.delete_object(Bucket=published.bucket, Key=manifest)
    try:
        messages = sqs.receive_message(QueueUrl=batch.queues.chunks, AttributeNames=["All"])
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                              "body": m["Body"], "attributes": m["Attributes"]}
                             for m in messages["Messages"]]}  # fmt: skip
        answer = app.score_batch_chunks(event, None)  # through Chalice's handler
        assert answer == {
            "batchItemFailures": [{"itemIdentifier": messages["Messages"][0]["MessageId"]}]
        }
    finally:
        s3.put_object(Bucket=published.bucket, Key=manifest, Body=saved)
    summary = batch.drain(job)  # the message reappears after its visibility timeout
    assert (summary["status"], summary["scored"]) == ("completed", 100)


@pytest.mark.slow  # waits out SQS visibility timeouts / worker processes
def test_killed_worker_chunk_is_redelivered_and_rows_appear_once(
    batch: Batch, published: PublishedModel
) -> None:
    records, _ = holdout_records(published.model_dir, 360)
    job = batch.jobs.start(batch.bucket, batch.upload("killed.csv", csv_bytes(records)))
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    # A worker takes chunk messages, writes a part and dies before deleting them.
    taken = sqs.receive_message(QueueUrl=batch.queues.chunks, MaxNumberOfMessages=2)["Messages"]
    for message in taken:
        chunk = Chunk.from_json(message["Body"])
        half = b"".join(orjson.dumps({"row": chunk.first_row + i}) + b"\n" for i in range(50))
        s3.put_object(
            Bucket=batch.bucket,
            Key=JobLayout(batch.output_prefix, job).part_key(chunk.index),
            Body=half,
        )
    with worker_processes(batch.env, batch.queues, count=2):
        summary = _wait(batch.jobs, job)
    parts, errors, _ = batch.outputs(job)
    assert (summary["status"], summary["scored"]) == ("completed", 360)
    assert_each_row_once(parts, errors, 360)
    assert all("label" in p for p in parts)


@pytest.mark.slow  # waits out SQS visibility timeouts / worker processes
def test_worker_killed_mid_chunk_by_sigkill_loses_and_repeats_no_row(
    batch: Batch, published: PublishedModel
) -> None:
    env = batch.env | {"BATCH_ROWS_PER_CHUNK": "1500", "BATCH_PREDICT_ROWS": "50"}
    jobs = build_batch_jobs(Settings.from_env(env))
    records, _ = holdout_records(published.model_dir, 500)
    rows = 6000
    data = csv_bytes([records[i % len(records)] for i in range(rows)])
    job = jobs.start(batch.bucket, batch.upload("sigkill.csv", data))
    sqs = boto3.client("sqs")
    with worker_processes(env, batch.queues, count=1) as doomed:
        started = time.monotonic()
        while time.monotonic() - started < 60:  # until it holds a chunk message
            attributes = sqs.get_queue_attributes(
                QueueUrl=batch.queues.chunks,
                AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if attributes["ApproximateNumberOfMessagesNotVisible"] != "0":
                break
            time.sleep(0.02)
        else:
            pytest.fail("the worker never took a chunk message")
        doomed.processes[0].kill()  # SIGKILL: no cleanup, the message is not deleted
        doomed.processes[0].join()
    assert jobs.progress(job)["status"] == "running"  # killed before the job was done
    with worker_processes(env, batch.queues, count=2):
        summary = _wait(jobs, job)
    parts, errors, _ = batch.outputs(job)
    assert (summary["status"], summary["scored"], summary["parts"]) == ("completed", rows, 4)
    assert_each_row_once(parts, errors, rows)


def _wait(jobs: BatchJobs, job: str, timeout: float = 120) -> dict[str, Any]:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        state = jobs.progress(job)
        if state["status"] != "running":
            return state
        time.sleep(0.3)
    raise TimeoutError(job)


def test_unknown_job_is_not_found(batch: Batch) -> None:
    with pytest.raises(NotFound):
        batch.jobs.progress("no-such-job")


def test_post_batch_queues_a_job_that_get_batch_follows(
    dev_stage_batch: Batch, published: PublishedModel
) -> None:
    batch = dev_stage_batch
    from chalice.test import Client

    import app

    records, _ = holdout_records(published.model_dir, 50)
    key = batch.upload("posted.csv", csv_bytes(records))
    with Client(app.app) as client:
        body = orjson.dumps({"input": f"s3://{batch.bucket}/{key}"})
        headers = {"Content-Type": "application/json"}
        posted = client.http.post("/batch", headers=headers, body=body)
        assert posted.status_code == 202
        job = orjson.loads(posted.body)["job"]
        assert orjson.loads(client.http.get(f"/batch/{job}").body)["status"] == "queued"
        sqs = boto3.client("sqs")
        poll_once(sqs, batch.queues.input_events, batch.queues.input_events_arn,
                  app.start_batch_jobs)  # fmt: skip
        assert orjson.loads(client.http.get(f"/batch/{job}").body)["status"] == "running"
        batch.drain(job)
        done = orjson.loads(client.http.get(f"/batch/{job}").body)
        assert (done["status"], done["scored"]) == ("completed", 50)
        missing = client.http.get("/batch/no-such-job")
        assert missing.status_code == 404
