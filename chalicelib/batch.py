"""Batch scoring: the splitter, the chunk worker, the dead-letter handler and progress.

No SQS event, no HTTP here: surfaces hand over an input object or a parsed `Chunk`.

- `start(bucket, key)` streams the input once (never holding it), sends one chunk
  message per `rows_per_chunk` rows (SendMessageBatch, 10 a call) and writes the plan.
  The job is pinned to the model version current at that moment.
- `score(chunk)` range-GETs the chunk, scores it batch by batch with that version,
  writes its part and errors under fixed keys (a redelivery rewrites them) and a done
  marker; whoever completes the last chunk writes summary.json (a conditional PUT,
  so exactly once).
- `give_up(chunk)` marks a chunk failed (its message reached the dead-letter queue),
  so the job still completes and its summary says which part failed.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.exceptions import ClientError

from chalicelib.batch_files import (
    HeaderUnreadable,
    ParsedRows,
    RowOffsets,
    header_names,
    line_batches,
    parse_csv,
    parse_jsonl,
    split_header,
)
from chalicelib.batch_layout import Chunk, JobLayout, input_format, job_id
from chalicelib.config import BatchSettings
from chalicelib.errors import FieldProblem, NotFound
from chalicelib.service import PredictionService

logger = logging.getLogger(__name__)

_BUFFER = 1 << 20
_SQS_BATCH = 10
_MISSING = {"NoSuchKey", "404", "NotFound"}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ServicesByVersion:
    """One PredictionService per pinned model version, the last `size` kept (a worker
    serves whatever version each job was pinned to)."""

    def __init__(self, build: Callable[[str], PredictionService], size: int = 2) -> None:
        self._build = build
        self._size = size
        self._services: OrderedDict[str, PredictionService] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, version: str) -> PredictionService:
        with self._lock:
            service = self._services.pop(version, None) or self._build(version)
            self._services[version] = service
            while len(self._services) > self._size:
                self._services.popitem(last=False)
            return service


class BatchJobs:
    """Batch jobs over one bucket's input and output prefixes and one chunk queue."""

    def __init__(
        self,
        s3: Any,
        sqs: Any,
        settings: BatchSettings,
        current_version: Callable[[], str],
        pinned: Callable[[str], PredictionService],
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self._s3 = s3
        self._sqs = sqs
        self.settings = settings
        self._current_version = current_version
        self._pinned = pinned
        self._clock = clock
        self._queue_url: str | None = None

    # -- splitter ------------------------------------------------------------------

    def start(self, bucket: str, key: str) -> str:
        """Split the input object into chunk messages; returns the job id. Idempotent
        for one object: a job that already has a plan or a summary is not split again."""
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise NotFound("The input object does not exist.") from exc
            raise
        job = job_id(key, head["ETag"])
        layout = self._layout(job)
        if self._exists(layout.plan_key()) or self._exists(layout.summary_key()):
            return job
        started = self._clock()
        bundle = self._pinned(self._current_version()).store.get()
        model = {"name": bundle.manifest.name, "version": bundle.manifest.version}
        fmt = input_format(key)
        if fmt is None:
            self._fail(layout, started, model, "the input must be a .csv or .jsonl file")
            return job
        buffers = self._s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(_BUFFER)
        header: list[str] | None = None
        offset = 0
        if fmt == "csv":
            try:
                line, offset, buffers = split_header(buffers)
                header = header_names(line)
            except HeaderUnreadable as exc:
                self._fail(layout, started, model, str(exc))
                return job
            problems = bundle.reader.header_problems(header)
            if problems:
                self._fail(layout, started, model, "the header does not match the model's "
                           "fields (GET /model lists them)", problems)  # fmt: skip
                return job
        counter = RowOffsets(self.settings.rows_per_chunk, offset)
        for buffer in buffers:
            counter.feed(buffer)
        ranges = counter.finish()
        chunks = [
            Chunk(
                job,
                bucket,
                key,
                fmt,
                header,
                index,
                start,
                end,
                first,
                rows,
                len(ranges),
                model["name"],
                model["version"],
                started,
            )
            for index, (start, end, first, rows) in enumerate(ranges)
        ]
        self._send(chunks)
        plan = {
            "job": job, "input": {"bucket": bucket, "key": key, "etag": head["ETag"]},
            "format": fmt, "model": model, "rows": counter.rows, "parts": len(chunks),
            "started": started,
            "chunks": [{"index": c.index, "first_row": c.first_row, "rows": c.rows,
                        "start": c.start, "end": c.end} for c in chunks],
        }  # fmt: skip
        self._put(layout.plan_key(), orjson.dumps(plan))
        if not chunks:
            self._finish(layout, 0, {"model": model, "started": started})
        logger.info("job %s: %d rows in %d chunks", job, counter.rows, len(chunks))
        return job

    def _send(self, chunks: list[Chunk]) -> None:
        if self._queue_url is None:
            name = self.settings.queues.chunks
            self._queue_url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        for first in range(0, len(chunks), _SQS_BATCH):
            entries = [
                {"Id": str(c.index), "MessageBody": c.to_json()}
                for c in chunks[first : first + _SQS_BATCH]
            ]
            answer = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} chunk message(s)")

    def _fail(
        self,
        layout: JobLayout,
        started: str,
        model: dict[str, str],
        reason: str,
        problems: list[FieldProblem] | None = None,
    ) -> None:
        summary: dict[str, Any] = {
            "job": layout.job, "status": "failed", "reason": reason, "rows": 0, "scored": 0,
            "rejected": 0, "parts": 0, "failed_parts": [], "model": model,
            "started": started, "finished": self._clock(),
        }  # fmt: skip
        if problems:
            summary["problems"] = [{"field": p.field, "problem": p.problem} for p in problems]
        self._put_once(layout.summary_key(), summary)

    # -- worker --------------------------------------------------------------------

    def score(self, chunk: Chunk) -> None:
        """Score one chunk into its part and errors files; ModelUnavailable (and any
        S3 error) propagates so the message is retried."""
        service = self._pinned(chunk.model_version)
        reader = service.store.get().reader
        text_columns = set(getattr(reader, "categorical_names", []))
        layout = self._layout(chunk.job)
        part: list[bytes] = []
        errors: list[bytes] = []
        scored = rejected = 0
        for first, lines in self._chunk_lines(chunk):
            if chunk.format == "csv":
                assert chunk.header is not None
                parsed = parse_csv(lines, chunk.header, text_columns)
            else:
                parsed = parse_jsonl(lines)
            n_scored, n_rejected = _score_lines(service, parsed, first, part, errors)
            scored += n_scored
            rejected += n_rejected
        self._put(layout.part_key(chunk.index), b"".join(part))
        if errors:
            self._put(layout.errors_key(chunk.index), b"".join(errors))
        if scored + rejected != chunk.rows:  # a CSV value spanning lines, say
            logger.error("job %s chunk %d: %d rows read of %d", chunk.job, chunk.index,
                         scored + rejected, chunk.rows)  # fmt: skip
        done = {"rows": chunk.rows, "scored": scored, "rejected": rejected}
        self._put(layout.done_key(chunk.index), orjson.dumps(done))
        self._finish_if_last(chunk)

    def _chunk_lines(self, chunk: Chunk) -> Iterator[tuple[int, list[bytes]]]:
        """(row number of the first line, lines) per prediction batch."""
        body = self._s3.get_object(
            Bucket=chunk.bucket, Key=chunk.key, Range=f"bytes={chunk.start}-{chunk.end - 1}"
        )["Body"]
        first = chunk.first_row
        for lines in line_batches(body.iter_chunks(_BUFFER), self.settings.predict_rows):
            yield first, lines
            first += len(lines)

    # -- dead letters ----------------------------------------------------------------

    def give_up(self, chunk: Chunk, reason: str = "the chunk failed on every attempt") -> None:
        """Mark `chunk` failed (unless it was done after all) and finish the job if it
        was the last."""
        layout = self._layout(chunk.job)
        if not self._exists(layout.done_key(chunk.index)):
            failed = {"rows": chunk.rows, "first_row": chunk.first_row, "reason": reason}
            self._put(layout.failed_key(chunk.index), orjson.dumps(failed))
        self._finish_if_last(chunk)

    # -- summary and progress ----------------------------------------------------------

    def _finish_if_last(self, chunk: Chunk) -> None:
        layout = self._layout(chunk.job)
        if len(self._states(layout)) >= chunk.parts:
            meta = {"model": {"name": chunk.model_name, "version": chunk.model_version},
                    "started": chunk.started}  # fmt: skip
            self._finish(layout, chunk.parts, meta)

    def _finish(self, layout: JobLayout, parts: int, meta: dict[str, Any]) -> None:
        counts = self._counts(layout)
        status = "completed_with_failures" if counts["failed_parts"] else "completed"
        summary = {"job": layout.job, "status": status, **counts, "parts": parts, **meta,
                   "finished": self._clock()}  # fmt: skip
        self._put_once(layout.summary_key(), summary)

    def _states(self, layout: JobLayout) -> dict[int, str]:
        """Each finished chunk's index and its marker key (done wins over failed)."""
        states: dict[int, str] = {}
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.settings.bucket, Prefix=layout.state_prefix()
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                kind, _, number = name.removesuffix(".json").partition("-")
                index = int(number)
                if kind == "done" or index not in states:
                    states[index] = item["Key"]
        return states

    def _counts(self, layout: JobLayout) -> dict[str, Any]:
        rows = scored = rejected = 0
        failed: list[dict[str, Any]] = []
        for index, key in sorted(self._states(layout).items()):
            marker = orjson.loads(self._get(key))
            rows += marker["rows"]
            if "/failed-" in key:
                failed.append({"part": index, "first_row": marker["first_row"],
                               "rows": marker["rows"], "reason": marker["reason"]})  # fmt: skip
            else:
                scored += marker["scored"]
                rejected += marker["rejected"]
        return {"rows": rows, "scored": scored, "rejected": rejected, "failed_parts": failed}

    def progress(self, job: str) -> dict[str, Any]:
        """The job's summary once written, else its progress from the plan and markers."""
        layout = self._layout(job)
        for key in (layout.summary_key(), layout.plan_key()):
            try:
                document = orjson.loads(self._get(key))
            except ClientError as exc:
                if _code(exc) not in _MISSING:
                    raise
                continue
            if key == layout.summary_key():
                return dict(document)
            counts = self._counts(layout)
            return {"job": job, "status": "running", "rows": document["rows"],
                    "scored": counts["scored"], "rejected": counts["rejected"],
                    "parts": document["parts"], "parts_done": len(self._states(layout)),
                    "failed_parts": counts["failed_parts"], "model": document["model"],
                    "started": document["started"]}  # fmt: skip
        raise NotFound("No batch job has this id.")

    # -- S3 --------------------------------------------------------------------------

    def _layout(self, job: str) -> JobLayout:
        return JobLayout(self.settings.output_prefix, job)

    def _put(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body)

    def _put_once(self, key: str, document: dict[str, Any]) -> None:
        """Create `key` unless it exists (S3 conditional write): two workers finishing
        the last chunks together write one summary."""
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        try:
            self._s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if _code(exc) not in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                raise

    def _get(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"].read()
        return body

    def _exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.settings.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True


def _score_lines(
    service: PredictionService,
    parsed: ParsedRows,
    first: int,
    part: list[bytes],
    errors: list[bytes],
) -> tuple[int, int]:
    """Score parsed lines, appending part and error lines in row order; (scored, rejected)."""
    scores = service.predict_each(parsed.records)
    problems = {parsed.lines[i]: found for i, found in scores.problems.items()}
    problems.update(parsed.problems)
    dumps = orjson.dumps
    part.extend(
        dumps({"row": first + parsed.lines[i]} | prediction) + b"\n"
        for i, prediction in scores.predictions
    )
    for line in sorted(problems):
        row = first + line
        errors.extend(
            dumps({"row": row, "field": p.field, "problem": p.problem}) + b"\n"
            for p in problems[line]
        )
    return len(scores.predictions), len(problems)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
