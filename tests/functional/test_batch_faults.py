"""Batch jobs on messy real files, against moto S3 + SQS over HTTP with the real model:
every planted fault rejects its own row alone, every other row is scored under its own
number with the prediction `/predict` (chalice local) gives for its fields; jobs that
cannot run end `failed` with a reason; identity, late successes and pass-through columns.
The fixtures and helpers are test_batch's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.batch import BatchJobs, ServicesByVersion
from chalicelib.batch_layout import Chunk, InputObject, JobOptions, job_id
from chalicelib.config import Settings
from chalicelib.surfaces import batch_sqs
from chalicelib.wiring import build_batch_jobs, build_service
from localdev.batch import poll_once
from modelops.examples import holdout_records
from tests.conftest import PublishedModel
from tests.fakes import client_error
from tests.functional import test_batch
from tests.functional.test_batch import SECRET, Batch, assert_each_row_once

batch = test_batch.batch  # the fixture: a batch path of its own per test


def csv_line(record: dict[str, Any], names: list[str]) -> bytes:
    return ",".join(str(record[name]) for name in names).encode()


def predict_http(api_url: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`/predict`'s answers for `records`, over HTTP from chalice local."""
    answers: list[dict[str, Any]] = []
    for first in range(0, len(records), 250):
        body = {"instances": records[first : first + 250]}
        response = httpx.post(f"{api_url}/predict", json=body, timeout=60)
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    return answers


def assert_scored_as_predict(
    parts: list[dict[str, Any]], expected: dict[int, dict[str, Any]], api_url: str
) -> None:
    """Each row in `expected` (row -> the record of its own line) is in the parts with
    /predict's label and probabilities for that record, and no other row is."""
    by_row = {p["row"]: p for p in parts}
    assert sorted(by_row) == sorted(expected)
    rows = sorted(expected)
    for row, answer in zip(rows, predict_http(api_url, [expected[r] for r in rows]), strict=True):
        assert by_row[row]["label"] == answer["label"], row
        assert by_row[row]["probabilities"] == pytest.approx(answer["probabilities"], abs=1e-6)


def start_and_drain(batch: Batch, name: str, body: bytes, **metadata: str) -> tuple[str, Any]:
    key = f"{batch.input_prefix}{name}"
    boto3.client("s3").put_object(Bucket=batch.bucket, Key=key, Body=body, Metadata=metadata)
    job = batch.jobs.start(batch.bucket, key)
    return job, batch.drain(job)


def test_each_planted_csv_fault_rejects_its_row_alone(
    batch: Batch, published: PublishedModel, api_url: str
) -> None:
    records, _ = holdout_records(published.model_dir, 40)
    names = list(records[0])
    at = names.index("emp_length")

    def with_value(record: dict[str, Any], text: bytes) -> bytes:
        values = csv_line(record, names).split(b",")
        return b",".join([*values[:at], text, *values[at + 1 :]])

    faults: dict[int, tuple[bytes, str, str | None]] = {  # row -> line, problem, field
        3: (with_value(records[3], b'"10+ years'), "unterminated quote", "emp_length"),
        6: (with_value(records[6], b'10+ years"'), "stray quote", "emp_length"),
        10: (csv_line(records[10], names).replace(b",", b"\r", 1), "carriage return", None),
        12: (with_value(records[12], b"x\x00"), "NUL", None),
        14: (with_value(records[14], b"x" * 70_000), "value longer than 65,536", "emp_length"),
        16: (with_value(records[16], b"x" * (1 << 21)), "line longer than", None),
        18: (with_value(records[18], b"\xff\xfe"), "not UTF-8", None),
        20: (b",".join(csv_line(records[20], names).split(b",")[:-1]), "expected 49", None),
        22: (csv_line(records[22], names) + b",extra", "expected 49 columns, found 50", None),
        24: (csv_line(records[24] | {"annual_inc": "85_000"}, names), "number", "annual_inc"),
        26: (csv_line(records[26] | {"dti": "\u0661\u0662"}, names), "number", "dti"),
        28: (b"", "empty line", None),
        30: (csv_line(records[30] | {"term": SECRET}, names), "category", "term"),
    }  # fmt: skip
    lines = [faults[i][0] if i in faults else csv_line(r, names) for i, r in enumerate(records)]
    body = b"\xef\xbb\xbf" + b"\r\n".join([",".join(names).encode(), *lines]) + b"\r\n"
    job, summary = start_and_drain(batch, "planted.csv", body)

    parts, errors, text = batch.outputs(job)
    assert (summary["status"], summary["rows"]) == ("completed", 40)
    assert (summary["scored"], summary["rejected"]) == (40 - len(faults), len(faults))
    assert_each_row_once(parts, errors, 40)
    by_row = {e["row"]: e for e in errors}
    for row, (_, problem, field) in faults.items():
        assert problem in by_row[row]["problem"] and by_row[row]["field"] == field, row
    assert SECRET not in text and "85_000" not in text and "10+ years" not in text
    good = {i: r for i, r in enumerate(records) if i not in faults}
    assert_scored_as_predict(parts, good, api_url)


def test_each_planted_json_lines_fault_rejects_its_row_alone(
    batch: Batch, published: PublishedModel, api_url: str
) -> None:
    records, _ = holdout_records(published.model_dir, 20)
    faults: dict[int, tuple[bytes, str]] = {
        2: (b'{"annual_inc": 1_000}', "not valid JSON"),
        4: (orjson.dumps([records[4]]), "record must be a JSON object"),
        6: (b"", "empty line"),
        8: (b'{"a": "\xff"}', "not UTF-8 text"),
        10: (b'{"x": "' + b"y" * (1 << 21) + b'"}', "line longer than"),
        12: (orjson.dumps(records[12] | {"annual_inc": "85000"}), "must be a number, not text"),
        14: (b"[" + b"{}," * 1000 + b"{}]", "record must be a JSON object"),
    }
    lines = [faults[i][0] if i in faults else orjson.dumps(r) for i, r in enumerate(records)]
    job, summary = start_and_drain(batch, "planted.jsonl", b"\xef\xbb\xbf" + b"\r\n".join(lines))
    parts, errors, _ = batch.outputs(job)
    assert (summary["status"], summary["scored"], summary["rejected"]) == ("completed", 13, 7)
    assert_each_row_once(parts, errors, 20)
    by_row = {e["row"]: e for e in errors}
    assert {row: problem in by_row[row]["problem"] for row, (_, problem) in faults.items()} == (
        dict.fromkeys(faults, True))  # fmt: skip
    assert_scored_as_predict(parts, {i: r for i, r in enumerate(records) if i not in faults},
                             api_url)  # fmt: skip


HEADER = b"annual_inc,dti"


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("cr.csv", HEADER.replace(b",", b"\r,") + b"\n1,2\n", "carriage return"),
        ("mac.csv", HEADER + b"\r1,2\r3,4\r", "carriage return"),
        ("nul.csv", HEADER + b"\x00\n1,2\n", "NUL"),
        ("latin1.csv", b"annual_inc,d\xe9bt\n1,2\n", "not UTF-8"),
        ("quote.csv", b'annual_inc,"dti\n1,2\n', "unterminated quote"),
        ("long.csv", b"a" * 70_000 + b"\n1\n", "longer than 64 KiB"),
        ("empty.csv", b"", "no header"),
        ("utf16.csv", "annual_inc,dti\n".encode("utf-16"), "UTF-16"),
        ("gzip.jsonl", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xfe", "gzip-compressed"),
    ],
)
def test_a_file_that_cannot_be_read_ends_failed_with_a_one_line_reason(
    batch: Batch, name: str, body: bytes, reason: str
) -> None:
    _, summary = start_and_drain(batch, name, body)
    assert summary["status"] == "failed" and reason in summary["reason"]
    assert "\n" not in summary["reason"] and summary["rows"] == summary["parts"] == 0


def test_a_job_whose_every_row_is_rejected_says_so(batch: Batch) -> None:
    _, summary = start_and_drain(batch, "garbage.jsonl", b"\x00\x01\n\xff\xfe\nnot json\n")
    assert (summary["status"], summary["rows"], summary["rejected"]) == ("completed", 3, 3)
    assert summary["reason"].startswith("no row could be scored")


def test_same_bytes_under_other_names_are_other_jobs(
    batch: Batch, published: PublishedModel
) -> None:
    records, _ = holdout_records(published.model_dir, 5)
    names = list(records[0])
    body = b"\n".join([",".join(names).encode(), *(csv_line(r, names) for r in records)])
    keys = ["a/same.csv", "b/same.csv", "ok.csv", "ok .csv", "ok-.csv"]
    jobs = {start_and_drain(batch, key, body)[0] for key in keys}
    jsonl = b"\n".join(orjson.dumps(r) for r in records)
    jobs.add(start_and_drain(batch, "ok.jsonl", jsonl)[0])
    assert len(jobs) == 6
    for job in jobs:
        summary = batch.jobs.progress(job)
        assert (summary["status"], summary["scored"]) == ("completed", 5)
    again = batch.jobs.start(batch.bucket, f"{batch.input_prefix}ok.csv")  # a duplicate event
    assert again in jobs


def test_a_chunk_scored_after_its_dead_letter_mark_makes_the_summary_true_again(
    batch: Batch, published: PublishedModel
) -> None:
    """Reflected, not refused: the late part is kept and the summary rewritten."""
    records, _ = holdout_records(published.model_dir, 300)
    names = list(records[0])
    body = b"\n".join([",".join(names).encode(), *(csv_line(r, names) for r in records)])
    key = f"{batch.input_prefix}late.csv"
    boto3.client("s3").put_object(Bucket=batch.bucket, Key=key, Body=body)
    job = batch.jobs.start(batch.bucket, key)
    sqs = boto3.client("sqs")
    received = sqs.receive_message(QueueUrl=batch.queues.chunks, MaxNumberOfMessages=10)
    chunks = sorted((Chunk.from_json(m["Body"]) for m in received["Messages"]),
                    key=lambda c: c.index)  # fmt: skip
    assert len(chunks) == 3
    slow = chunks[1]
    batch_sqs.dead_letters(lambda: batch.jobs, [("m1", slow.to_json())])  # the DLQ's handler
    for chunk in (chunks[0], chunks[2]):
        batch.jobs.score(chunk)
    first = batch.jobs.progress(job)
    assert first["status"] == "completed_with_failures" and first["scored"] == 180
    assert [f["part"] for f in first["failed_parts"]] == [1] and "1 of 3 parts" in first["reason"]

    batch.jobs.score(slow)  # the original worker finishes after all
    summary = batch.jobs.progress(job)
    parts, errors, _ = batch.outputs(job)
    assert (summary["status"], summary["scored"], summary["failed_parts"]) == ("completed", 300, [])
    assert "reason" not in summary
    assert_each_row_once(parts, errors, 300)
    batch_sqs.dead_letters(lambda: batch.jobs, [("m2", slow.to_json())])  # a late DLQ copy
    assert batch.jobs.progress(job)["status"] == "completed"


def s3_event(bucket: str, key: str, etag: str, size: int) -> str:
    found = {"key": key.replace(" ", "+"), "eTag": etag, "size": size}
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": found}}
    return orjson.dumps({"Records": [record]}).decode()


def test_a_missing_or_replaced_input_ends_its_job_with_a_reason(
    batch: Batch, published: PublishedModel
) -> None:
    s3 = boto3.client("s3")
    records, _ = holdout_records(published.model_dir, 3)
    names = list(records[0])
    body = b"\n".join([",".join(names).encode(), *(csv_line(r, names) for r in records)])
    key = f"{batch.input_prefix}gone soon.csv"
    s3.put_object(Bucket=batch.bucket, Key=key, Body=body)
    first = InputObject.from_head(batch.bucket, key, s3.head_object(Bucket=batch.bucket, Key=key))
    s3.put_object(Bucket=batch.bucket, Key=key, Body=body + b"\n")  # replaced
    second = InputObject.from_head(batch.bucket, key, s3.head_object(Bucket=batch.bucket, Key=key))
    events = [(f"e{n}", s3_event(batch.bucket, key, o.etag, o.size))
              for n, o in enumerate((first, second))]  # fmt: skip
    assert batch_sqs.input_events(lambda: batch.jobs, events) == {"batchItemFailures": []}
    replaced = batch.jobs.progress(job_id(first))
    assert replaced["status"] == "failed" and "replaced" in replaced["reason"]
    assert batch.drain(job_id(second))["status"] == "completed"

    s3.delete_object(Bucket=batch.bucket, Key=key)
    gone = InputObject(batch.bucket, key, "0" * 32, 5)
    batch_sqs.input_events(lambda: batch.jobs, [("e3", s3_event(batch.bucket, key, "0" * 32, 5))])
    missing = batch.jobs.progress(job_id(gone))
    assert missing["status"] == "failed" and "S3 404" in missing["reason"]
    batch_sqs.input_events(lambda: batch.jobs, events[1:])  # a late duplicate of a done job
    assert batch.jobs.progress(job_id(second))["status"] == "completed"


class Forbidding:
    """An S3 client that answers 403 for one key (what S3 says without s3:GetObject),
    the real (moto) client for everything else."""

    def __init__(self, s3: Any, key: str) -> None:
        self._s3, self._key = s3, key

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._s3, name)
        if name not in {"head_object", "get_object"}:
            return call

        def guarded(**kwargs: Any) -> Any:
            if kwargs.get("Key") == self._key:
                raise client_error("403" if name == "head_object" else "AccessDenied", 403, name)
            return call(**kwargs)

        return guarded


def test_a_forbidden_input_ends_its_job_with_a_reason(
    batch: Batch, published: PublishedModel
) -> None:
    key = f"{batch.input_prefix}secret.csv"
    settings = Settings.from_env(batch.env)
    pinned = ServicesByVersion(lambda v: build_service(replace(settings, model_version=v)))
    forbidden = BatchJobs(Forbidding(boto3.client("s3"), key), boto3.client("sqs"),
                          settings.batch, lambda: published.version, pinned)  # fmt: skip
    job = forbidden.start(batch.bucket, key, etag="e" * 32, size=10)
    summary = forbidden.progress(job)
    assert summary["status"] == "failed" and "S3 403" in summary["reason"]


@pytest.mark.slow  # waits out the input-events queue's visibility timeout three times
def test_an_input_event_that_fails_every_attempt_ends_its_job_from_the_dead_letter_queue(
    batch: Batch, published: PublishedModel
) -> None:
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    key = f"{batch.input_prefix}never.csv"
    s3.put_object(Bucket=batch.bucket, Key=key, Body=b"annual_inc\n1\n")
    head = s3.head_object(Bucket=batch.bucket, Key=key)
    job = job_id(InputObject.from_head(batch.bucket, key, head))
    sqs.send_message(QueueUrl=batch.queues.input_events,
                     MessageBody=s3_event(batch.bucket, key, head["ETag"].strip('"'),
                                          head["ContentLength"]))  # fmt: skip
    manifest = f"{published.prefix}/{published.version}/manifest.json"
    saved = s3.get_object(Bucket=published.bucket, Key=manifest)["Body"].read()
    s3.delete_object(Bucket=published.bucket, Key=manifest)
    starts = batch.handler(batch_sqs.input_events)
    dead = batch.handler(batch_sqs.dead_letters)
    try:  # this test's jobs have loaded no model yet: every split attempt fails
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            poll_once(sqs, batch.queues.input_events, batch.queues.input_events_arn, starts)
            poll_once(sqs, batch.queues.dead_letters, batch.queues.dead_letters_arn, dead, 10, 0)
            try:
                if batch.jobs.progress(job)["status"] == "failed":
                    break
            except Exception:  # no job yet: nothing written
                continue
    finally:
        s3.put_object(Bucket=published.bucket, Key=manifest, Body=saved)
    summary = batch.jobs.progress(job)
    assert summary["status"] == "failed"
    assert summary["reason"].startswith("the input could not be split: every attempt failed (")


# -- pass-through columns --------------------------------------------------------------


def test_pass_through_columns_are_copied_into_output_and_error_lines(
    batch: Batch, published: PublishedModel, api_url: str
) -> None:
    records, _ = holdout_records(published.model_dir, 30)
    names = list(records[0])
    header = ["application_id", *names, "notes"]
    rows = [[f"app-{i}", *(str(r[n]) for n in names), "free text"] for i, r in enumerate(records)]
    rows[4][1] = "a lot"  # annual_inc: refused by the record checks
    rows[7][0] = "x" * 300  # the id itself is too long
    rows[9] = rows[9][:-2]  # too few columns
    body = "\n".join(",".join(r) for r in [header, *rows]).encode()
    key = f"{batch.input_prefix}ids.csv"
    boto3.client("s3").put_object(Bucket=batch.bucket, Key=key, Body=body)

    refused = batch.jobs.start(batch.bucket, key)  # no options: "notes" is not a field
    assert batch.jobs.progress(refused)["problems"] == [
        {"field": "application_id", "problem": "unknown column"},
        {"field": "notes", "problem": "unknown column"}]  # fmt: skip
    options = JobOptions(("application_id",), ignore_extra_columns=True)
    job = batch.jobs.request(batch.bucket, key, options)  # POST /batch's way in
    poll_once(boto3.client("sqs"), batch.queues.input_events, batch.queues.input_events_arn,
              batch.handler(batch_sqs.input_events))  # fmt: skip
    summary = batch.drain(job)
    parts, errors, _ = batch.outputs(job)
    assert (summary["scored"], summary["rejected"]) == (27, 3)
    assert all(p["application_id"] == f"app-{p['row']}" for p in parts)
    assert list(parts[0])[:2] == ["row", "application_id"]
    by_row = {e["row"]: e for e in errors}
    assert by_row[4]["application_id"] == "app-4" and by_row[4]["field"] == "annual_inc"
    assert by_row[7] == {"row": 7, "field": "application_id",
                         "problem": "pass-through value longer than 256 characters"}  # fmt: skip
    assert by_row[9] == {"row": 9, "field": None, "problem": "expected 51 columns, found 49"}
    good = {i: r for i, r in enumerate(records) if i not in {4, 7, 9}}
    assert_scored_as_predict(parts, good, api_url)


def test_the_s3_event_path_takes_its_options_from_the_objects_metadata(
    batch: Batch, published: PublishedModel
) -> None:
    records, _ = holdout_records(published.model_dir, 10)
    lines = [
        orjson.dumps(r | {"loan_ref": 100 + i, "source": "web"}) for i, r in enumerate(records)
    ]
    options = JobOptions(("loan_ref",), ignore_extra_columns=True)
    job, summary = start_and_drain(batch, "tagged.jsonl", b"\n".join(lines),
                                   **options.to_metadata())  # fmt: skip
    assert (summary["scored"], summary["rejected"]) == (10, 0)
    parts, _, _ = batch.outputs(job)
    assert [p["loan_ref"] for p in parts] == list(range(100, 110))
    key = f"{batch.input_prefix}tagged.jsonl"
    head = boto3.client("s3").head_object(Bucket=batch.bucket, Key=key)
    source = InputObject.from_head(batch.bucket, key, head)
    assert job == job_id(source, options)
    assert batch.jobs.request(batch.bucket, key) == job  # a POST without options: the same job


@pytest.fixture
def big_chunks(batch: Batch) -> Iterator[BatchJobs]:
    env = batch.env | {"BATCH_ROWS_PER_CHUNK": "5000", "BATCH_PREDICT_ROWS": "5000"}
    yield build_batch_jobs(Settings.from_env(env))


def test_the_demo_holdout_file_scores_with_its_grade_carried_through(
    batch: Batch, big_chunks: BatchJobs, published: PublishedModel, api_url: str
) -> None:
    body = (published.model_dir / "holdout.csv").read_bytes()
    key = f"{batch.input_prefix}holdout.csv"
    boto3.client("s3").put_object(Bucket=batch.bucket, Key=key, Body=body)
    job = big_chunks.start(batch.bucket, key, options=JobOptions(("grade",)))
    summary = batch.drain(job, timeout=180)
    rows = body.count(b"\n") - 1
    assert (summary["status"], summary["scored"], summary["rows"]) == ("completed", rows, rows)
    parts, errors, _ = batch.outputs(job)
    records, grades = holdout_records(published.model_dir, rows)
    assert [p["grade"] for p in parts] == grades and not errors
    sample = {i: records[i] for i in range(0, rows, 37)}
    assert_scored_as_predict([p for p in parts if p["row"] in sample], sample, api_url)


# -- the property: random files with planted faults, every row once, as /predict -------

FAULT_LINES = [b'1,"x', b'x"y', b"\x00", b"a\rb", b"\xff", b"", b"1,2,3"]


@pytest.mark.slow  # a dozen jobs end to end
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(plan=st.lists(st.one_of(st.integers(0, 59), st.sampled_from(FAULT_LINES)), min_size=1,
                     max_size=40), crlf=st.booleans())  # fmt: skip
def test_random_files_with_planted_faults_score_every_row_once_as_predict(
    batch: Batch, published: PublishedModel, api_url: str, plan: list[Any], crlf: bool
) -> None:
    records, _ = holdout_records(published.model_dir, 60)
    names = list(records[0])
    lines = [csv_line(records[p], names) if isinstance(p, int) else p for p in plan]
    newline = b"\r\n" if crlf else b"\n"
    body = newline.join([",".join(names).encode(), *lines]) + newline
    job, summary = start_and_drain(batch, f"random-{uuid.uuid4().hex[:8]}.csv", body)
    parts, errors, _ = batch.outputs(job)
    assert summary["rows"] == len(plan)
    assert_each_row_once(parts, errors, len(plan))
    expected = {row: records[p] for row, p in enumerate(plan) if isinstance(p, int)}
    assert {e["row"] for e in errors} == set(range(len(plan))) - set(expected)
    assert_scored_as_predict(parts, expected, api_url)
