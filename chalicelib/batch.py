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

A challenger version (pinned in the plan and each chunk when `challenger_version` is
set) scores every row of the job after the champion: batch is not latency bound, so
there is no sampling. Its rows go to `challenger-<version>/part-NNNNN.jsonl`; a
challenger failure is caught, logged and counted and never touches the champion's
part. Each done marker carries the part's comparison totals; the summary sums them.
"""

from __future__ import annotations

import logging
import threading
import time
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
from chalicelib.challenger import ComparisonTotals, compare
from chalicelib.config import BatchSettings
from chalicelib.errors import FieldProblem, NotFound
from chalicelib.observability.batch import BatchMetrics
from chalicelib.refresh import failure_kind
from chalicelib.service import BatchScores, PredictionService

logger = logging.getLogger(__name__)

_BUFFER = 1 << 20
_SQS_BATCH = 10
_MISSING = {"NoSuchKey", "404", "NotFound"}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ServicesByVersion:
    """One PredictionService per pinned model version, the last `size` kept (a worker
    serves whatever version each job was pinned to)."""

    def __init__(self, build: Callable[[str], PredictionService], size: int = 3) -> None:
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
        *,
        challenger_version: str | None = None,
        metrics: BatchMetrics | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._s3 = s3
        self._sqs = sqs
        self.settings = settings
        self._current_version = current_version
        self._pinned = pinned
        self._clock = clock
        self.challenger_version = challenger_version
        self._metrics = metrics or BatchMetrics.discarding()
        self._timer = timer
        self._queue_urls: dict[str, str] = {}

    # -- requests (POST /batch) ------------------------------------------------------

    def request(self, bucket: str, key: str) -> str:
        """Queue a job for the splitter (an API request must answer within seconds; a
        split streams the whole object) and return its id."""
        job = job_id(key, self._head(bucket, key)["ETag"])
        layout = self._layout(job)
        if not self._exists(layout.plan_key()):
            requested = {"job": job, "input": {"bucket": bucket, "key": key},
                         "requested": self._clock()}  # fmt: skip
            self._put(layout.requested_key(), orjson.dumps(requested))
            body = orjson.dumps({"input": {"bucket": bucket, "key": key}}).decode()
            self._sqs.send_message(QueueUrl=self._url(self.settings.queues.input_events),
                                   MessageBody=body)  # fmt: skip
        return job

    # -- splitter ------------------------------------------------------------------

    def start(self, bucket: str, key: str) -> str:
        """Split the input object into chunk messages; returns the job id. Idempotent
        for one object: a job that already has a plan or a summary is not split again."""
        head = self._head(bucket, key)
        job = job_id(key, head["ETag"])
        layout = self._layout(job)
        if self._exists(layout.plan_key()) or self._exists(layout.summary_key()):
            return job
        started = self._clock()
        bundle = self._pinned(self._current_version()).store.get()
        model = {"name": bundle.manifest.name, "version": bundle.manifest.version}
        fmt = input_format(key)
        if fmt is None:
            self._fail(layout, started, model, "not_csv_or_jsonl",
                       "the input must be a .csv or .jsonl file")  # fmt: skip
            return job
        buffers = self._s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(_BUFFER)
        header: list[str] | None = None
        offset = 0
        if fmt == "csv":
            try:
                line, offset, buffers = split_header(buffers)
                header = header_names(line)
            except HeaderUnreadable as exc:
                self._fail(layout, started, model, "header_unreadable", str(exc))
                return job
            problems = bundle.reader.header_problems(header)
            if problems:
                reason = "the header does not match the model's fields (GET /model lists them)"
                self._fail(layout, started, model, "header_mismatch", reason, problems)
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
                self.challenger_version,
            )
            for index, (start, end, first, rows) in enumerate(ranges)
        ]
        self._send(chunks)
        plan = {
            "job": job, "input": {"bucket": bucket, "key": key, "etag": head["ETag"]},
            "format": fmt, "model": model, "rows": counter.rows, "parts": len(chunks),
            "started": started, "challenger": self._challenger_ref(),
            "chunks": [{"index": c.index, "first_row": c.first_row, "rows": c.rows,
                        "start": c.start, "end": c.end} for c in chunks],
        }  # fmt: skip
        self._put(layout.plan_key(), orjson.dumps(plan))
        if not chunks:
            meta = {"model": model, "started": started}
            self._finish(layout, 0, meta | ({"challenger": plan["challenger"]} if
                                            self.challenger_version else {}))  # fmt: skip
        logger.info("job %s: %d rows in %d chunks", job, counter.rows, len(chunks))
        engine = self._pinned(model["version"]).store.engine_kind
        self._metrics.job_split(job, model | {"engine": engine}, counter.rows, len(chunks))
        return job

    def _challenger_ref(self) -> dict[str, str] | None:
        return None if self.challenger_version is None else {"version": self.challenger_version}

    def _url(self, name: str) -> str:
        url = self._queue_urls.get(name)
        if url is None:
            url = self._queue_urls[name] = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return url

    def _head(self, bucket: str, key: str) -> dict[str, Any]:
        try:
            head: dict[str, Any] = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise NotFound("The input object does not exist.") from exc
            raise
        return head

    def _send(self, chunks: list[Chunk]) -> None:
        queue_url = self._url(self.settings.queues.chunks)
        for first in range(0, len(chunks), _SQS_BATCH):
            entries = [
                {"Id": str(c.index), "MessageBody": c.to_json()}
                for c in chunks[first : first + _SQS_BATCH]
            ]
            answer = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused {len(answer['Failed'])} chunk message(s)")

    def _fail(
        self,
        layout: JobLayout,
        started: str,
        model: dict[str, str],
        code: str,
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
        self._metrics.job_failed(layout.job, code)

    # -- worker --------------------------------------------------------------------

    def score(self, chunk: Chunk) -> None:
        """Score one chunk into its part and errors files; ModelUnavailable (and any
        S3 error) propagates so the message is retried."""
        began = self._timer()
        service = self._pinned(chunk.model_version)
        bundle = service.store.get()
        text_columns = set(getattr(bundle.reader, "categorical_names", []))
        layout = self._layout(chunk.job)
        part: list[bytes] = []
        errors: list[bytes] = []
        predictions: list[dict[str, Any]] = []
        rejected = 0
        shadow = None
        if chunk.challenger_version is not None:
            shadow = ChallengerPart(self._pinned, chunk.challenger_version)
        for first, lines in self._chunk_lines(chunk):
            if chunk.format == "csv":
                assert chunk.header is not None
                parsed = parse_csv(lines, chunk.header, text_columns)
            else:
                parsed = parse_jsonl(lines)
            scores = service.predict_each(parsed.records)
            rejected += _write_lines(scores, parsed, first, part, errors)
            predictions.extend(prediction for _, prediction in scores.predictions)
            if shadow is not None:
                shadow.score(parsed, first, scores)
        self._put(layout.part_key(chunk.index), b"".join(part))
        if errors:
            self._put(layout.errors_key(chunk.index), b"".join(errors))
        scored = len(predictions)
        if scored + rejected != chunk.rows:  # a CSV value spanning lines, say
            logger.error("job %s chunk %d: %d rows read of %d", chunk.job, chunk.index,
                         scored + rejected, chunk.rows)  # fmt: skip
        done: dict[str, Any] = {"rows": chunk.rows, "scored": scored, "rejected": rejected}
        model = {"name": bundle.manifest.name, "version": bundle.manifest.version}
        if shadow is not None:
            done["challenger"] = self._finish_shadow(chunk, layout, model, shadow)
        self._put(layout.done_key(chunk.index), orjson.dumps(done))
        self._metrics.chunk_scored(chunk.job, chunk.index,
                                   model | {"engine": service.store.engine_kind},
                                   bundle.manifest.labels, (scored, rejected),
                                   self._timer() - began, predictions)  # fmt: skip
        self._finish_if_last(chunk)

    def _finish_shadow(
        self, chunk: Chunk, layout: JobLayout, model: dict[str, str], shadow: ChallengerPart
    ) -> dict[str, Any]:
        """Write the challenger's part (unless it failed) and report it; its done-marker entry."""
        version = shadow.version
        if shadow.failure is None:
            try:
                self._put(layout.challenger_part_key(version, chunk.index), b"".join(shadow.lines))
            except Exception as exc:  # the champion's part is written; keep it
                shadow.failed(exc)
        if shadow.failure is not None:
            self._metrics.challenger_failed(chunk.job, chunk.index, model, version,
                                            shadow.failure)  # fmt: skip
            return {"version": version, "failed": shadow.failure}
        self._metrics.challenger_scored(chunk.job, chunk.index, model, version,
                                        shadow.totals.summary())  # fmt: skip
        return {"version": version, **vars(shadow.totals)}

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
            model = {"name": chunk.model_name, "version": chunk.model_version}
            self._metrics.chunk_dead_lettered(chunk.job, chunk.index, model)
        self._finish_if_last(chunk)

    # -- summary and progress ----------------------------------------------------------

    def _finish_if_last(self, chunk: Chunk) -> None:
        layout = self._layout(chunk.job)
        if len(self._states(layout)) >= chunk.parts:
            meta = {"model": {"name": chunk.model_name, "version": chunk.model_version},
                    "started": chunk.started}  # fmt: skip
            if chunk.challenger_version is not None:
                meta["challenger"] = {"version": chunk.challenger_version}
            self._finish(layout, chunk.parts, meta)

    def _finish(self, layout: JobLayout, parts: int, meta: dict[str, Any]) -> None:
        counts = self._counts(layout)
        status = "completed_with_failures" if counts["failed_parts"] else "completed"
        shadow = counts.pop("challenger")
        if "challenger" in meta:
            meta["challenger"] = meta["challenger"] | shadow
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
        totals = ComparisonTotals()
        shadow_failed: list[dict[str, Any]] = []
        for index, key in sorted(self._states(layout).items()):
            marker = orjson.loads(self._get(key))
            rows += marker["rows"]
            if "/failed-" in key:
                failed.append({"part": index, "first_row": marker["first_row"],
                               "rows": marker["rows"], "reason": marker["reason"]})  # fmt: skip
            else:
                scored += marker["scored"]
                rejected += marker["rejected"]
                theirs = dict(marker.get("challenger") or {})
                theirs.pop("version", None)
                if "failed" in theirs:
                    shadow_failed.append({"part": index, "code": theirs["failed"]})
                elif theirs:
                    totals.merge(ComparisonTotals(**theirs))
        shadow = totals.summary() | {"failed_parts": shadow_failed}
        return {"rows": rows, "scored": scored, "rejected": rejected, "failed_parts": failed,
                "challenger": shadow}  # fmt: skip

    def progress(self, job: str) -> dict[str, Any]:
        """The job's summary once written, else its progress from the plan and markers
        ("queued" while only requested)."""
        layout = self._layout(job)
        for key in (layout.summary_key(), layout.plan_key(), layout.requested_key()):
            try:
                document = orjson.loads(self._get(key))
            except ClientError as exc:
                if _code(exc) not in _MISSING:
                    raise
                continue
            if key == layout.summary_key():
                return dict(document)
            if key == layout.requested_key():
                return {"job": job, "status": "queued", "requested": document["requested"]}
            counts = self._counts(layout)
            counts.pop("challenger")
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


class ChallengerPart:
    """A chunk's rows as the challenger version scores them, compared with the champion's.
    The first failure (load, scoring, a bug) stops it for this chunk and is kept as a code."""

    def __init__(self, pinned: Callable[[str], PredictionService], version: str) -> None:
        self.version = version
        self._pinned = pinned
        self.lines: list[bytes] = []
        self.totals = ComparisonTotals()
        self.failure: str | None = None

    def score(self, parsed: ParsedRows, first: int, champion: BatchScores) -> None:
        """Score the batch the champion scored (never raises)."""
        if self.failure is not None:
            return
        try:
            scores = self._pinned(self.version).predict_each(parsed.records)
            _write_lines(scores, parsed, first, self.lines, [])
            theirs = dict(scores.predictions)
            both = [(ours, theirs[i]) for i, ours in champion.predictions if i in theirs]
            if both:
                self.totals.add(compare([a for a, _ in both], [b for _, b in both]))
        except Exception as exc:  # the champion's part must not depend on this
            self.failed(exc)

    def failed(self, exc: Exception) -> None:
        self.failure = failure_kind(exc)
        fields = {"exception": type(exc).__name__}
        logger.warning("challenger %s failed (%s); the champion's part stands", self.version,
                       self.failure, extra={"fields": fields})  # fmt: skip


def _write_lines(
    scores: BatchScores,
    parsed: ParsedRows,
    first: int,
    part: list[bytes],
    errors: list[bytes],
) -> int:
    """Append part and error lines in row order; the number of rejected rows."""
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
    return len(problems)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
