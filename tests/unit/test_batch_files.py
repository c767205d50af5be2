"""Batch input streaming, REST input checks and S3 event parsing: pure, no I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chalicelib.batch_files import RowOffsets, line_batches, parse_csv, split_header
from chalicelib.batch_layout import job_id
from chalicelib.config import BatchQueues, BatchSettings
from chalicelib.surfaces import batch_rest, batch_sqs


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("buffer", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("ending", [b"\n", b"", b"\r\n"])
def test_row_offsets_start_every_chunk_on_a_line_with_its_row_number(
    buffer: int, ending: bytes
) -> None:
    lines = [f"row{i}".encode() * (i % 3 + 1) for i in range(11)]
    newline = b"\r\n" if ending == b"\r\n" else b"\n"
    data = b"h\n" + newline.join(lines) + ending
    head, offset, rest = split_header(chunks_of(data, buffer))
    counter = RowOffsets(every=4, position=offset)
    for piece in rest:
        counter.feed(piece)
    ranges = counter.finish()
    assert head == b"h" and counter.rows == 11
    assert [(first, rows) for _, _, first, rows in ranges] == [(0, 4), (4, 4), (8, 3)]
    for start, end, first, rows in ranges:
        got = [line.rstrip(b"\r") for batch in line_batches([data[start:end]], 2) for line in batch]
        assert got == lines[first : first + rows]


def test_empty_input_has_no_chunks() -> None:
    counter = RowOffsets(every=10, position=0)
    counter.feed(b"")
    assert counter.finish() == [] and counter.rows == 0


def test_csv_values_that_are_not_numbers_stay_text_for_the_checks() -> None:
    parsed = parse_csv([b"1.5,A", b"x,B", b",C", b"1,2,3", b""], ["n", "c"], {"c"})
    assert parsed.records == [{"n": 1.5, "c": "A"}, {"n": "x", "c": "B"}, {"n": None, "c": "C"}]
    assert parsed.lines == [0, 1, 2]
    assert [p.problem for p in parsed.problems[3]] == ["expected 2 columns, found 3"]
    assert [p.problem for p in parsed.problems[4]] == ["empty line"]


def test_job_id_is_one_plain_segment_from_name_and_etag() -> None:
    assert job_id("batch/in/My Loans (2).csv", '"0123456789abcdef-2"') == "My-Loans-2-0123456789ab"


class StubJobs:
    settings = BatchSettings("loans", "batch/in/", queues=BatchQueues("chunks", "dlq", "events"))

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start(self, bucket: str, key: str) -> str:
        self.started.append((bucket, key))
        return "job-1"

    request = start


@pytest.mark.parametrize(
    "body",
    [
        b'{"input": "s3://other/batch/in/a.csv"}',
        b'{"input": "s3://loans/models/a.csv"}',
        b'{"input": "s3://loans/batch/in/../x.csv"}',
        b'{"input": "s3://loans/batch/in/a.exe"}',
        b'{"input": "https://loans/batch/in/a.csv"}',
        b'{"input": 3}',
        b"[]",
    ],
)
def test_post_batch_refuses_inputs_outside_the_input_prefix_without_echo(body: bytes) -> None:
    jobs = StubJobs()
    answer = batch_rest.start(lambda: jobs, body)  # type: ignore[arg-type, return-value]
    assert answer.status == 400 and not jobs.started
    shown = orjson.loads(answer.body)["error"]["message"]
    assert "s3://loans/batch/in/" in shown and "other" not in shown and ".exe" not in shown


def test_post_batch_starts_a_job_with_202() -> None:
    jobs = StubJobs()
    answer = batch_rest.start(lambda: jobs, b'{"input": "s3://loans/batch/in/a.csv"}')  # type: ignore[arg-type, return-value]
    assert (answer.status, orjson.loads(answer.body)) == (202, {"job": "job-1"})
    assert jobs.started == [("loans", "batch/in/a.csv")]


def test_post_batch_on_a_stage_without_a_batch_path_is_404() -> None:
    jobs = StubJobs()
    jobs.settings = BatchSettings("loans", "batch/in/")  # names no queues
    answer = batch_rest.start(lambda: jobs, b'{"input": "s3://loans/batch/in/a.csv"}')  # type: ignore[arg-type, return-value]
    assert answer.status == 404 and not jobs.started
    assert "no batch path" in orjson.loads(answer.body)["error"]["message"]


def s3_event(key: str, bucket: str = "loans") -> str:
    s3: dict[str, Any] = {"bucket": {"name": bucket}, "object": {"key": key}}
    record = {"eventName": "ObjectCreated:Put", "s3": s3}
    return orjson.dumps({"Records": [record]}).decode()


def test_input_events_start_jobs_for_new_objects_under_the_prefix_only() -> None:
    jobs = StubJobs()
    messages = [
        ("1", '{"Service": "Amazon S3", "Event": "s3:TestEvent"}'),
        ("2", s3_event("batch/in/My+Loans.csv")),
        ("3", s3_event("batch/out/x/part-00000.jsonl")),
        ("4", s3_event("batch/in/a.csv", bucket="elsewhere")),
        ("5", "not json"),
        ("6", '{"input": {"bucket": "loans", "key": "batch/in/queued.csv"}}'),
    ]
    answer = batch_sqs.input_events(lambda: jobs, messages)  # type: ignore[arg-type, return-value]
    assert answer == {"batchItemFailures": []}
    assert jobs.started == [("loans", "batch/in/My Loans.csv"), ("loans", "batch/in/queued.csv")]
