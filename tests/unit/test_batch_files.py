"""Batch input streaming, job identity and options, REST input checks and SQS event
parsing: pure, no I/O."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chalicelib.batch_files import (
    BOM,
    ChunkCutter,
    TooLong,
    line_batches,
    lines_of,
    skip_bom,
    split_header,
)
from chalicelib.batch_layout import (
    Chunk,
    InputObject,
    InvalidOptions,
    JobOptions,
    job_id,
)
from chalicelib.batch_output import Spool
from chalicelib.config import BatchQueues, BatchSettings
from chalicelib.observability import Telemetry
from chalicelib.surfaces import batch_rest, batch_sqs


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def cut(data: bytes, offset: int, every: int, max_bytes: int, buffer: int) -> ChunkCutter:
    cutter = ChunkCutter(every=every, position=offset, max_bytes=max_bytes)
    for piece in chunks_of(data[offset:], buffer):
        cutter.feed(piece)
    cutter.finish()
    return cutter


def lines_in(data: bytes, start: int, end: int) -> list[bytes]:
    return [line.rstrip(b"\r") for batch in line_batches([data[start:end]], 2) for line in batch]  # type: ignore[union-attr]


@pytest.mark.parametrize("buffer", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize("ending", [b"\n", b"", b"\r\n"])
def test_every_chunk_starts_on_a_line_with_its_row_number(buffer: int, ending: bytes) -> None:
    lines = [f"row{i}".encode() * (i % 3 + 1) for i in range(11)]
    newline = b"\r\n" if ending == b"\r\n" else b"\n"
    data = b"h\n" + newline.join(lines) + ending
    head, offset, _ = split_header(chunks_of(data, buffer))
    cutter = cut(data, offset, every=4, max_bytes=1 << 20, buffer=buffer)
    assert head == b"h" and cutter.rows == 11
    assert [(first, rows) for _, _, first, rows in cutter.chunks] == [(0, 4), (4, 4), (8, 3)]
    for start, end, first, rows in cutter.chunks:
        assert lines_in(data, start, end) == lines[first : first + rows]


@pytest.mark.parametrize("buffer", [1, 5, 64, 4096])
def test_chunks_are_also_cut_by_bytes_at_the_next_line_break(buffer: int) -> None:
    lines = [b"x" * (i * 7 % 50) for i in range(60)]  # empty lines too: each is a row
    data = b"\n".join(lines) + b"\n"
    cutter = cut(data, 0, every=1000, max_bytes=100, buffer=buffer)
    assert cutter.rows == 60 and sum(rows for *_, rows in cutter.chunks) == 60
    assert [end for _, end, _, _ in cutter.chunks][-1] == len(data)
    following_chunks = [*cutter.chunks[1:], None]
    for (start, end, first, rows), following in zip(cutter.chunks, following_chunks, strict=True):
        assert lines_in(data, start, end) == lines[first : first + rows]
        longest = max(len(line) for line in lines[first : first + rows]) + 1
        assert end - start < 100 + longest  # past the cap by less than one line
        if following is not None:
            assert following[0] == end and following[2] == first + rows


def test_a_line_longer_than_a_chunk_is_one_row_of_its_own_chunk() -> None:
    data = b"a\n" + b"y" * 10_000 + b"\nb\n"
    cutter = cut(data, 0, every=1000, max_bytes=100, buffer=1024)
    assert [(first, rows) for _, _, first, rows in cutter.chunks] == [(0, 2), (2, 1)]


def test_empty_input_has_no_chunks() -> None:
    cutter = cut(b"", 0, every=10, max_bytes=100, buffer=10)
    assert cutter.chunks == [] and cutter.rows == 0


def test_a_line_over_the_cap_is_a_marker_and_its_neighbours_are_intact() -> None:
    data = b"first\n" + b"z" * 5000 + b"\nthird\r\n" + b"q" * 900 + b"\nlast"
    for buffer in (7, 100, 1000, 10_000):
        found = [line for lines, _ in lines_of(chunks_of(data, buffer), cap=800) for line in lines]
        assert found == [b"first", TooLong(5000), b"third\r", TooLong(900), b"last"]


def test_batches_stop_at_their_line_count_or_their_bytes() -> None:
    lines = [b"%d" % i * 40 for i in range(100)]
    data = b"\n".join(lines)
    by_count = list(line_batches(chunks_of(data, 50), size=7, max_bytes=1 << 20))
    assert [len(b) for b in by_count] == [7] * 14 + [2]
    by_bytes = list(line_batches(chunks_of(data, 50), size=1000, max_bytes=500))
    assert [line for batch in by_bytes for line in batch] == lines
    assert all(sum(map(len, batch)) < 500 + 2 * 50 for batch in by_bytes)  # type: ignore[arg-type]


def test_a_bom_is_skipped_before_the_header_or_the_first_json_line() -> None:
    head, offset, _ = split_header([BOM + b"a,b\r\n", b"1,2\n"])
    assert (head, offset) == (b"a,b", len(BOM) + 5)
    skipped, rest = skip_bom([BOM[:1], BOM[1:] + b"{}\n"])
    assert (skipped, b"".join(rest)) == (3, b"{}\n")
    assert skip_bom([b"{}"])[0] == 0


# -- job identity and options --------------------------------------------------------


def test_job_id_is_one_plain_segment_and_only_the_same_object_shares_it() -> None:
    source = InputObject("loans", "batch/in/My Loans (2).csv", "0123456789abcdef-2", 10)
    job = job_id(source)
    assert job.startswith("My-Loans-2-") and len(job) == len("My-Loans-2-") + 16
    assert job_id(InputObject("loans", source.key, "0123456789abcdef-2", 10)) == job
    others = [
        InputObject("loans", "batch/in/b/My Loans (2).csv", source.etag, 10),  # same bytes
        InputObject("loans2", source.key, source.etag, 10),
        InputObject("loans", source.key, "fedcba", 10),
        InputObject("loans", source.key, source.etag, 11),
    ]
    names = ["ok.csv", "ok .csv", "ok-.csv", "ok.jsonl"]
    others += [InputObject("loans", f"batch/in/{name}", "e", 1) for name in names]
    ids = {job_id(other) for other in others} | {job}
    assert len(ids) == len(others) + 1
    assert job_id(source, JobOptions(("application_id",))) != job


@pytest.mark.parametrize(
    "document",
    [
        {"pass_through": "application_id"},
        {"pass_through": ["row"]},
        {"pass_through": ["a", "a"]},
        {"pass_through": ["has space"]},
        {"pass_through": [3]},
        {"pass_through": [f"c{i}" for i in range(9)]},
        {"ignore_extra_columns": "yes"},
    ],
)
def test_unusable_options_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptions):
        JobOptions.from_json(document)


def test_options_travel_as_s3_metadata_and_in_chunk_messages() -> None:
    options = JobOptions(("application_id", "grade"), ignore_extra_columns=True)
    metadata = options.to_metadata()
    assert metadata == {"batch-pass-through": "application_id,grade",
                        "batch-ignore-extra-columns": "true"}  # fmt: skip
    assert JobOptions.from_metadata(metadata) == options
    assert JobOptions.from_metadata({}) == JobOptions()
    with pytest.raises(InvalidOptions):
        JobOptions.from_metadata({"batch-ignore-extra-columns": "maybe"})
    chunk = Chunk("j", "b", "k", "csv", ["a"], 0, 0, 9, 0, 1, 1, "m", "1", "t",
                  pass_through=list(options.pass_through), ignore_extra_columns=True)  # fmt: skip
    assert Chunk.from_json(chunk.to_json()).options == options
    legacy = {k: v for k, v in orjson.loads(chunk.to_json()).items()
              if k not in {"etag", "pass_through", "ignore_extra_columns"}}  # fmt: skip
    assert Chunk.from_json(orjson.dumps(legacy)).options == JobOptions()  # messages in flight


# -- surfaces ------------------------------------------------------------------------


class StubJobs:
    settings = BatchSettings("loans", "batch/in/", queues=BatchQueues("chunks", "dlq", "events"))
    telemetry = Telemetry.discarding()

    def __init__(self) -> None:
        self.started: list[tuple[Any, ...]] = []
        self.given_up: list[Any] = []

    def start(self, bucket: str, key: str, *rest: Any) -> str:
        self.started.append((bucket, key, *rest))
        return "job-1"

    def request(self, bucket: str, key: str, options: JobOptions | None = None) -> str:
        self.started.append((bucket, key, options))
        return "job-1"

    def give_up(self, chunk: Chunk) -> None:
        self.given_up.append(chunk)

    def give_up_input(self, *created: Any) -> None:
        self.given_up.append(created)


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


def test_post_batch_starts_a_job_with_202_and_its_options() -> None:
    jobs = StubJobs()
    answer = batch_rest.start(lambda: jobs, b'{"input": "s3://loans/batch/in/a.csv"}')  # type: ignore[arg-type, return-value]
    assert (answer.status, orjson.loads(answer.body)) == (202, {"job": "job-1"})
    body = b'{"input": "s3://loans/batch/in/b.csv", "pass_through": ["application_id"], "ignore_extra_columns": true}'  # noqa: E501
    assert batch_rest.start(lambda: jobs, body).status == 202  # type: ignore[arg-type, return-value]
    assert jobs.started == [
        ("loans", "batch/in/a.csv", None),
        ("loans", "batch/in/b.csv", JobOptions(("application_id",), True)),
    ]


def test_post_batch_on_a_stage_without_a_batch_path_is_404() -> None:
    jobs = StubJobs()
    jobs.settings = BatchSettings("loans", "batch/in/")  # names no queues
    answer = batch_rest.start(lambda: jobs, b'{"input": "s3://loans/batch/in/a.csv"}')  # type: ignore[arg-type, return-value]
    assert answer.status == 404 and not jobs.started
    assert "no batch path" in orjson.loads(answer.body)["error"]["message"]


@pytest.mark.parametrize(
    "extra",
    [
        b'"pass_through": ["Jane Doe 123-45-6789"]',
        b'"pass_through": "application_id"',
        b'"ignore_extra_columns": 1',
        b'"Jane Doe 123-45-6789": 1',
    ],
)
def test_post_batch_refuses_unusable_options_without_echo(extra: bytes) -> None:
    jobs = StubJobs()
    body = b'{"input": "s3://loans/batch/in/a.csv", ' + extra + b"}"
    answer = batch_rest.start(lambda: jobs, body)  # type: ignore[arg-type, return-value]
    error = orjson.loads(answer.body)["error"]
    assert (answer.status, error["code"]) == (400, "invalid_options") and not jobs.started
    assert "Jane" not in error["message"]


def s3_event(key: str, bucket: str = "loans", etag: str = "abc", size: int = 9) -> str:
    found = {"key": key, "eTag": etag, "size": size}
    s3: dict[str, Any] = {"bucket": {"name": bucket}, "object": found}
    record = {"eventName": "ObjectCreated:Put", "s3": s3}
    return orjson.dumps({"Records": [record]}).decode()


def test_input_events_start_jobs_for_new_objects_under_the_prefix_only() -> None:
    jobs = StubJobs()
    posted = {"input": {"bucket": "loans", "key": "batch/in/queued.csv", "etag": "e", "size": 3},
              "options": {"pass_through": ["id"], "ignore_extra_columns": False}}  # fmt: skip
    messages = [
        ("1", '{"Service": "Amazon S3", "Event": "s3:TestEvent"}'),
        ("2", s3_event("batch/in/My+Loans.csv")),
        ("3", s3_event("batch/out/x/part-00000.jsonl")),
        ("4", s3_event("batch/in/a.csv", bucket="elsewhere")),
        ("5", "not json"),
        ("6", orjson.dumps(posted).decode()),
    ]
    answer = batch_sqs.input_events(lambda: jobs, messages)  # type: ignore[arg-type, return-value]
    assert answer == {"batchItemFailures": []}
    assert jobs.started == [
        ("loans", "batch/in/My Loans.csv", "abc", 9, None),
        ("loans", "batch/in/queued.csv", "e", 3, JobOptions(("id",))),
    ]


def test_the_dead_letter_queue_ends_chunks_and_input_events_alike() -> None:
    jobs = StubJobs()
    chunk = Chunk("j", "loans", "batch/in/a.csv", "csv", ["a"], 1, 0, 9, 5, 5, 2, "m", "1", "t")
    messages = [("1", chunk.to_json()), ("2", s3_event("batch/in/a.csv")), ("3", "[]"),
                ("4", s3_event("batch/in/a.csv", bucket="elsewhere"))]  # fmt: skip
    answer = batch_sqs.dead_letters(lambda: jobs, messages)  # type: ignore[arg-type, return-value]
    assert answer == {"batchItemFailures": []}
    assert jobs.given_up == [chunk, ("loans", "batch/in/a.csv", "abc", 9, None)]


def test_a_spool_keeps_small_outputs_in_memory_and_large_ones_in_a_file() -> None:
    small, large = Spool(limit=100), Spool(limit=100)
    small.extend([b"a\n", b"b\n"])
    large.extend([b"x" * 60 + b"\n"] * 3)
    large.extend([b"tail\n"])
    assert small.body() == b"a\nb\n" and not Spool()
    body = large.body()
    assert not isinstance(body, bytes)  # a temporary file, rewound
    assert body.read() == (b"x" * 60 + b"\n") * 3 + b"tail\n"
    large.close()
