"""Batch scoring: the splitter, the chunk worker, the dead-letter handler and progress.

No SQS event, no HTTP here: surfaces hand over an input object or a parsed `Chunk`.

- `start(...)` streams one version of the input object once (never holding it), sends
  one chunk message per `rows_per_chunk` rows (or MAX_CHUNK_BYTES; SendMessageBatch,
  10 a call) and writes the plan. The job is pinned to the model version current at
  that moment and to the object's ETag. Anything that makes the job impossible (a
  header that does not fit, a file that is not text, a missing, forbidden or replaced
  object, unusable options) ends it at once with a `failed` summary and its reason;
  any other failure is recorded (`state/split-error.json`) and raised for a retry.
- `score(chunk)` range-GETs the chunk, scores it batch by batch with that version,
  writes its part and errors under fixed keys (a redelivery rewrites them) and a done
  marker; whoever completes the last chunk writes summary.json.
- `give_up(chunk)` marks a chunk failed (its message reached the dead-letter queue),
  so the job still completes and its summary says which part failed; `give_up_input`
  ends a job whose input event reached it with a `failed` summary and the last reason.

The summary is computed from the markers and written with a conditional PUT that
retries on a race; a worker finishing a chunk after it was given up rewrites the summary
so it never contradicts the parts (a done marker wins over a failed one).

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
    MAX_HEADER_BYTES,
    ChunkCutter,
    HeaderUnreadable,
    Line,
    line_batches,
    peek,
    skip_bom,
    split_header,
)
from chalicelib.batch_layout import (
    Chunk,
    InputObject,
    InvalidOptions,
    JobLayout,
    JobOptions,
    input_format,
    job_id,
)
from chalicelib.batch_output import Spool, write_lines
from chalicelib.batch_rows import (
    FieldNames,
    HeaderRefused,
    ParsedRows,
    csv_columns,
    header_names,
    json_columns,
    parse_csv,
    parse_jsonl,
)
from chalicelib.challenger import ComparisonTotals
from chalicelib.config import BatchSettings
from chalicelib.core import Columns, ModelInput, Records, Scored, score_each
from chalicelib.errors import FieldProblem, InvalidRequest, NotFound, ServiceError
from chalicelib.observability import RequestObservation, Telemetry
from chalicelib.observability.batch import BatchMetrics
from chalicelib.observability.telemetry import declare_surface
from chalicelib.refresh import failure_kind
from chalicelib.s3_errors import absence, error_code, is_missing
from chalicelib.service import PredictionService
from chalicelib.store import ModelBundle

#: This surface in the `Surface` dimension.
BATCH_CHUNK = declare_surface("batch_chunk")

logger = logging.getLogger(__name__)

_BUFFER = 1 << 20
_SQS_BATCH = 10
_PRECONDITION = {"PreconditionFailed", "412"}
_SUMMARY_ATTEMPTS = 5
REPLACED = "the input object was replaced after the job started (its ETag changed); the new object is a job of its own"  # noqa: E501


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


def model_input(rows: ParsedRows) -> ModelInput:
    """A batch of rows as the core takes them: raw CSV columns stay columns (vectorised
    while every row is valid; a bad row sends them through the records, which name it),
    anything else is records."""
    if rows.raw_columns and rows.columns and rows.lines:
        return Columns(rows.columns, rows.records)
    return Records(rows.records())


class SplitRefused(Exception):
    """The job cannot be split: ends it `failed` with `reason` (and a metrics `code`)."""

    def __init__(self, code: str, reason: str, problems: list[FieldProblem] | None = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.problems = problems or []


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
        telemetry: Telemetry | None = None,
    ) -> None:
        self._s3 = s3
        self._sqs = sqs
        self.settings = settings
        self._current_version = current_version
        self._pinned = pinned
        self._clock = clock
        self.challenger_version = challenger_version
        self._metrics = metrics or BatchMetrics.discarding()
        #: The request lines of POST /batch and GET /batch/{job} (chunks use their
        #: pinned service's, with the snapshot's model).
        self.telemetry = telemetry or Telemetry.discarding()
        self._timer = timer
        self._queue_urls: dict[str, str] = {}

    # -- requests (POST /batch) ------------------------------------------------------

    def request(self, bucket: str, key: str, options: JobOptions | None = None) -> str:
        """Queue a job for the splitter (an API request must answer within seconds; a
        split streams the whole object) and return its id. Options not given are the
        object's metadata convention's (as for an S3 event)."""
        head = self._head(bucket, key)
        source = InputObject.from_head(bucket, key, head)
        if options is None:
            try:
                options = JobOptions.from_metadata(head.get("Metadata") or {})
            except InvalidOptions as exc:
                raise InvalidRequest(f"The input object's options metadata is not usable: "
                                     f"{exc}.", code="invalid_options") from exc  # fmt: skip
        job = job_id(source, options)
        layout = self._layout(job)
        if not self._exists(layout.plan_key()) and not self._exists(layout.summary_key()):
            requested = {"job": job, "input": source.to_json(), "options": options.to_json(),
                         "requested": self._clock()}  # fmt: skip
            self._put(layout.requested_key(), orjson.dumps(requested))
            body = orjson.dumps({"input": source.to_json(), "options": options.to_json()})
            self._sqs.send_message(QueueUrl=self._url(self.settings.queues.input_events),
                                   MessageBody=body.decode())  # fmt: skip
        return job

    # -- splitter ------------------------------------------------------------------

    def start(
        self,
        bucket: str,
        key: str,
        etag: str | None = None,
        size: int | None = None,
        options: JobOptions | None = None,
    ) -> str:
        """Split the input object (the version with `etag`, when given) into chunk
        messages; returns the job id. Idempotent for one object: a job that already has
        a plan or a summary is not split again."""
        started = self._clock()
        source, head, unreadable = self._source(bucket, key, etag, size)
        job = job_id(source, options or JobOptions())
        try:
            if unreadable:
                raise SplitRefused("input_unreadable", unreadable)
            if head is not None and str(head["ETag"]).strip('"') != source.etag:
                raise SplitRefused("input_replaced", REPLACED)
            if options is None:
                options = self._options(head or {})
                job = job_id(source, options)
        except SplitRefused as refused:
            self._fail(self._layout(job), source, started, None, refused)
            return job
        layout = self._layout(job)
        if self._exists(layout.plan_key()) or self._exists(layout.summary_key()):
            return job
        model: dict[str, str] | None = None
        try:
            bundle = self._pinned(self._current_version()).store.get()
            model = {"name": bundle.manifest.name, "version": bundle.manifest.version}
            self._split(layout, source, options, model, started, FieldNames(bundle.reader))
        except SplitRefused as refused:
            self._fail(layout, source, started, model, refused)
        except Exception as exc:  # retried; the dead-letter handler reports the last kind
            self._put(layout.split_error_key(), orjson.dumps({"kind": failure_kind(exc),
                                                              "at": self._clock()}))  # fmt: skip
            raise
        return job

    def _source(
        self, bucket: str, key: str, etag: str | None, size: int | None
    ) -> tuple[InputObject, dict[str, Any] | None, str | None]:
        """(the object the job is about, its HEAD or None, why it cannot be read or None)."""
        try:
            head: dict[str, Any] = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            unreadable = _unreadable(exc)
            if unreadable is None or etag is None:
                if unreadable is not None:
                    raise NotFound("The input object does not exist.") from exc
                raise
            return InputObject(bucket, key, etag.strip('"'), size or 0), None, unreadable
        if etag is None:
            return InputObject.from_head(bucket, key, head), head, None
        return InputObject(bucket, key, etag.strip('"'), int(size or 0)), head, None

    @staticmethod
    def _options(head: dict[str, Any]) -> JobOptions:
        try:
            return JobOptions.from_metadata(head.get("Metadata") or {})
        except InvalidOptions as exc:
            raise SplitRefused("options_invalid", f"the input object's options metadata is "
                               f"not usable: {exc}") from exc  # fmt: skip

    def _split(
        self,
        layout: JobLayout,
        source: InputObject,
        options: JobOptions,
        model: dict[str, str],
        started: str,
        fields: FieldNames,
    ) -> None:
        fmt = input_format(source.key)
        if fmt is None:
            raise SplitRefused("not_csv_or_jsonl", "the input must be a .csv or .jsonl file")
        head, buffers = peek(self._input_buffers(source), MAX_HEADER_BYTES)
        kind = binary_kind(head)
        if kind is not None:
            raise SplitRefused("not_text", f"the file is not UTF-8 text (it looks {kind}): "
                               "decompress it, or save it as UTF-8")  # fmt: skip
        header: list[str] | None = None
        if fmt == "csv":
            try:
                line, offset, buffers = split_header(buffers)
                header = header_names(line)
                csv_columns(header, options, fields)
            except HeaderUnreadable as exc:
                raise SplitRefused("header_unreadable", str(exc)) from exc
            except HeaderRefused as exc:
                raise SplitRefused("header_mismatch", exc.reason, exc.problems) from exc
        else:
            offset, buffers = skip_bom(buffers)
        cutter = ChunkCutter(self.settings.rows_per_chunk, offset)
        try:
            for buffer in buffers:
                cutter.feed(buffer)
        except ClientError as exc:
            if error_code(exc) in _PRECONDITION:
                raise SplitRefused("input_replaced", REPLACED) from exc
            raise
        ranges = cutter.finish()
        chunks = [
            Chunk(
                layout.job, source.bucket, source.key, fmt, header, index, start, end, first,
                rows, len(ranges), model["name"], model["version"], started,
                self.challenger_version, source.etag, list(options.pass_through),
                options.ignore_extra_columns,
            )
            for index, (start, end, first, rows) in enumerate(ranges)
        ]  # fmt: skip
        self._send(chunks)
        plan = {
            "job": layout.job, "input": source.to_json(), "options": options.to_json(),
            "format": fmt, "model": model, "rows": cutter.rows, "parts": len(chunks),
            "started": started, "challenger": self._challenger_ref(),
            "chunks": [{"index": c.index, "first_row": c.first_row, "rows": c.rows,
                        "start": c.start, "end": c.end} for c in chunks],
        }  # fmt: skip
        self._put(layout.plan_key(), orjson.dumps(plan))
        if not chunks:
            meta = {"input": _input_ref(source.bucket, source.key, source.etag),
                    "model": model, "started": started}  # fmt: skip
            self._finish(layout, 0, meta | ({"challenger": plan["challenger"]} if
                                            self.challenger_version else {}))  # fmt: skip
        logger.info("job %s: %d rows in %d chunks", layout.job, cutter.rows, len(chunks))
        engine = self._pinned(model["version"]).store.engine_kind
        self._metrics.job_split(layout.job, model | {"engine": engine}, cutter.rows, len(chunks))

    def _input_buffers(self, source: InputObject) -> Iterator[bytes]:
        """The object's bytes, 1 MiB at a time, only while it is the job's version."""
        try:
            answer = self._s3.get_object(Bucket=source.bucket, Key=source.key,
                                         IfMatch=source.etag)  # fmt: skip
        except ClientError as exc:
            if error_code(exc) in _PRECONDITION:
                raise SplitRefused("input_replaced", REPLACED) from exc
            unreadable = _unreadable(exc)
            if unreadable is not None:
                raise SplitRefused("input_unreadable", unreadable) from exc
            raise
        buffers: Iterator[bytes] = answer["Body"].iter_chunks(_BUFFER)
        return buffers

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
            if _unreadable(exc) is not None:
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
        source: InputObject,
        started: str,
        model: dict[str, str] | None,
        refused: SplitRefused,
    ) -> None:
        summary: dict[str, Any] = {
            "job": layout.job, "status": "failed", "reason": refused.reason, "rows": 0,
            "scored": 0, "rejected": 0, "parts": 0, "failed_parts": [],
            "input": _input_ref(source.bucket, source.key, source.etag), "started": started,
            "finished": self._clock(),
        }  # fmt: skip
        if model is not None:  # none when the job ended before the model was read
            summary["model"] = model
        if refused.problems:
            summary["problems"] = [{"field": p.field, "problem": p.problem}
                                   for p in refused.problems]  # fmt: skip
        if self._put_once(layout.summary_key(), summary):  # a late duplicate event ends nothing
            self._metrics.job_failed(layout.job, refused.code)

    # -- worker --------------------------------------------------------------------

    def score(self, chunk: Chunk) -> None:
        """Score one chunk into its part and errors files; ModelUnavailable (and any
        S3 error) propagates so the message is retried. A chunk whose input object was
        replaced or removed since the split is given up at once. One snapshot of the
        pinned version scores every row; one request line (Surface `batch_chunk`)."""
        service = self._pinned(chunk.model_version)
        observation = RequestObservation(f"{chunk.job}/{chunk.index}", BATCH_CHUNK)
        observation.records = chunk.rows
        try:
            self._score(chunk, service, observation)
        except Exception as exc:
            observation.status = exc.status if isinstance(exc, ServiceError) else 500
            observation.error_code = failure_kind(exc)
            raise
        finally:
            service.finish(observation)

    def _score(
        self, chunk: Chunk, service: PredictionService, observation: RequestObservation
    ) -> None:
        began = self._timer()
        bundle = service.snapshot()
        read = _row_reader(chunk, FieldNames(bundle.reader))
        layout = self._layout(chunk.job)
        part, errors = Spool(), Spool()
        scored = rejected = 0
        shadow = None
        if chunk.challenger_version is not None:
            shadow = ChallengerPart(self._pinned, chunk.challenger_version)
        try:
            for first, lines in self._chunk_lines(chunk):
                parsed = read(lines)
                scores = service.score(observation, model_input(parsed), each=True,
                                       bundle=bundle)  # fmt: skip
                rejected += write_lines(scores, parsed, first, part, errors)
                scored += len(scores.outputs)
                if shadow is not None:
                    shadow.score(parsed, first, scores)
            self._put(layout.part_key(chunk.index), part.body())
            if errors:
                self._put(layout.errors_key(chunk.index), errors.body())
        except SplitRefused as refused:  # the input object is gone or replaced
            self.give_up(chunk, refused.reason)
            observation.status, observation.error_code = 409, refused.code
            return
        finally:
            part.close()
            errors.close()
        if scored + rejected != chunk.rows:  # never expected: every line is one row
            logger.error("job %s chunk %d: %d rows read of %d", chunk.job, chunk.index,
                         scored + rejected, chunk.rows)  # fmt: skip
        done: dict[str, Any] = {"rows": chunk.rows, "scored": scored, "rejected": rejected}
        model = {"name": bundle.manifest.name, "version": bundle.manifest.version}
        if shadow is not None:
            done["challenger"] = self._finish_shadow(chunk, layout, model, shadow)
        self._put(layout.done_key(chunk.index), orjson.dumps(done))
        self._metrics.chunk_scored(chunk.job, chunk.index,
                                   model | {"engine": service.store.engine_kind},
                                   (scored, rejected), self._timer() - began)  # fmt: skip
        observation.status = 200
        self._finish_if_last(chunk)

    def _finish_shadow(
        self, chunk: Chunk, layout: JobLayout, model: dict[str, str], shadow: ChallengerPart
    ) -> dict[str, Any]:
        """Write the challenger's part (unless it failed) and report it; its done-marker entry."""
        version = shadow.version
        if shadow.failure is None:
            try:
                self._put(layout.challenger_part_key(version, chunk.index), shadow.lines.body())
            except Exception as exc:  # the champion's part is written; keep it
                shadow.failed(exc)
        shadow.lines.close()
        if shadow.failure is not None:
            self._metrics.challenger_failed(chunk.job, chunk.index, model, version,
                                            shadow.failure)  # fmt: skip
            return {"version": version, "failed": shadow.failure}
        self._metrics.challenger_scored(chunk.job, chunk.index, model, version,
                                        shadow.totals.summary())  # fmt: skip
        return {"version": version, **vars(shadow.totals)}

    def _chunk_lines(self, chunk: Chunk) -> Iterator[tuple[int, list[Line]]]:
        """(row number of the first line, lines) per prediction batch."""
        extra = {} if chunk.etag is None else {"IfMatch": chunk.etag}
        try:
            body = self._s3.get_object(Bucket=chunk.bucket, Key=chunk.key,
                                       Range=f"bytes={chunk.start}-{chunk.end - 1}",
                                       **extra)["Body"]  # fmt: skip
        except ClientError as exc:
            if error_code(exc) in _PRECONDITION:
                raise SplitRefused("input_replaced", REPLACED) from exc
            unreadable = _unreadable(exc)
            if unreadable is not None:
                raise SplitRefused("input_unreadable", unreadable) from exc
            raise
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

    def give_up_input(
        self,
        bucket: str,
        key: str,
        etag: str | None = None,
        size: int | None = None,
        options: JobOptions | None = None,
    ) -> str | None:
        """End the job of an input event that failed on every attempt with a `failed`
        summary and the last recorded cause (unless the job got further after all).
        Returns the job id, or None when the event does not identify one."""
        source, head, _ = self._source_or_none(bucket, key, etag, size)
        if source is None:
            return None
        if options is None:
            try:
                options = JobOptions.from_metadata((head or {}).get("Metadata") or {})
            except InvalidOptions:
                options = JobOptions()
        layout = self._layout(job_id(source, options))
        if self._exists(layout.plan_key()) or self._exists(layout.summary_key()):
            return layout.job
        kind = "unknown"
        try:
            kind = str(orjson.loads(self._get(layout.split_error_key())).get("kind", kind))
        except ClientError as exc:
            if not is_missing(exc):
                raise
        reason = f"the input could not be split: every attempt failed ({kind})"
        self._fail(layout, source, self._clock(), None, SplitRefused("split_failed", reason))
        return layout.job

    def _source_or_none(
        self, bucket: str, key: str, etag: str | None, size: int | None
    ) -> tuple[InputObject | None, dict[str, Any] | None, str | None]:
        try:
            return self._source(bucket, key, etag, size)
        except NotFound:
            logger.error("a dead-lettered input event names an object that is gone, without "
                         "its ETag: no job to end")  # fmt: skip
            return None, None, None

    # -- summary and progress ----------------------------------------------------------

    def _finish_if_last(self, chunk: Chunk) -> None:
        layout = self._layout(chunk.job)
        if len(self._states(layout)) >= chunk.parts:
            meta: dict[str, Any] = {
                "input": _input_ref(chunk.bucket, chunk.key, chunk.etag),
                "model": {"name": chunk.model_name, "version": chunk.model_version},
                "started": chunk.started,
            }
            if chunk.challenger_version is not None:
                meta["challenger"] = {"version": chunk.challenger_version}
            self._finish(layout, chunk.parts, meta)

    def _finish(self, layout: JobLayout, parts: int, meta: dict[str, Any]) -> None:
        """Write the summary the markers add up to, unless it is there already. The PUT
        is conditional on the summary seen (absent, or its ETag) and is retried after a
        race, so the last writer always wrote from markers no older than its own."""
        for _ in range(_SUMMARY_ATTEMPTS):
            current, etag = self._summary_and_etag(layout)
            summary = self._summary(layout, parts, meta)
            if current is not None and _same_outcome(current, summary):
                return
            body = orjson.dumps(summary, option=orjson.OPT_INDENT_2)
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                self._s3.put_object(Bucket=self.settings.bucket, Key=layout.summary_key(),
                                    Body=body, **condition)  # fmt: skip
                return
            except ClientError as exc:
                if error_code(exc) not in _PRECONDITION | {"ConditionalRequestConflict", "409"}:
                    raise
        raise RuntimeError(f"job {layout.job}: the summary kept changing under this writer")

    def _summary(self, layout: JobLayout, parts: int, meta: dict[str, Any]) -> dict[str, Any]:
        counts = self._counts(layout)
        failed = counts["failed_parts"]
        shadow = counts.pop("challenger")
        summary: dict[str, Any] = {"job": layout.job}
        if failed:
            lost = sum(f["rows"] for f in failed)
            reason = (f"{len(failed)} of {parts} parts failed on every attempt ({lost:,} rows "
                      "not scored; failed_parts names them)")  # fmt: skip
            summary |= {"status": "completed_with_failures", "reason": reason}
        else:
            summary["status"] = "completed"
        if counts["rows"] and not counts["scored"] and not failed:
            summary["reason"] = ("no row could be scored: every row was rejected (the errors "
                                 "files say why, row by row)")  # fmt: skip
        meta = dict(meta)
        if "challenger" in meta:
            meta["challenger"] = meta["challenger"] | shadow
        return summary | counts | {"parts": parts} | meta | {"finished": self._clock()}

    def _summary_and_etag(self, layout: JobLayout) -> tuple[dict[str, Any] | None, str | None]:
        try:
            answer = self._s3.get_object(Bucket=self.settings.bucket, Key=layout.summary_key())
        except ClientError as exc:
            if is_missing(exc):
                return None, None
            raise
        return dict(orjson.loads(answer["Body"].read())), str(answer["ETag"])

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
                if kind not in {"done", "failed"}:
                    continue
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
                if not is_missing(exc):  # 403: S3's answer for a missing key sans ListBucket
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

    def _put(self, key: str, body: Any) -> None:
        self._s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body)

    def _put_once(self, key: str, document: dict[str, Any]) -> bool:
        """Create `key` unless it exists (S3 conditional write); whether it was created."""
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        try:
            self._s3.put_object(Bucket=self.settings.bucket, Key=key, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            if error_code(exc) not in _PRECONDITION | {"ConditionalRequestConflict", "409"}:
                raise
            return False
        return True

    def _get(self, key: str) -> bytes:
        body: bytes = self._s3.get_object(Bucket=self.settings.bucket, Key=key)["Body"].read()
        return body

    def _exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.settings.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):  # 403: S3's answer for a missing key sans ListBucket
                return False
            raise
        return True


def _row_reader(chunk: Chunk, fields: FieldNames) -> Callable[[list[Line]], ParsedRows]:
    """How this chunk's lines become rows: its format, header and options."""
    if chunk.format == "csv":
        assert chunk.header is not None
        columns = csv_columns(chunk.header, chunk.options, fields)
        return lambda lines: parse_csv(lines, columns)
    json = json_columns(chunk.options, fields)
    return lambda lines: parse_jsonl(lines, json)


class ChallengerPart:
    """A chunk's rows as the challenger version scores them, compared with the champion's.
    The first failure (load, scoring, a bug) stops it for this chunk and is kept as a code."""

    def __init__(self, pinned: Callable[[str], PredictionService], version: str) -> None:
        self.version = version
        self._pinned = pinned
        self._bundle: ModelBundle | None = None
        self.lines = Spool()
        self.totals = ComparisonTotals()
        self.failure: str | None = None

    def score(self, parsed: ParsedRows, first: int, champion: Scored) -> None:
        """Score the batch the champion scored, with one snapshot of the challenger
        version for the whole chunk, through the same pipeline (never raises)."""
        if self.failure is not None:
            return
        try:
            if self._bundle is None:
                self._bundle = self._pinned(self.version).snapshot()
            theirs = score_each(self._bundle, model_input(parsed))
            write_lines(theirs, parsed, first, self.lines, Spool())
            comparison = champion.compare(theirs)
            if comparison.records:
                self.totals.add(comparison)
        except Exception as exc:  # the champion's part must not depend on this
            self.failed(exc)

    def failed(self, exc: Exception) -> None:
        self.failure = failure_kind(exc)
        fields = {"exception": type(exc).__name__}
        logger.warning("challenger %s failed (%s); the champion's part stands", self.version,
                       self.failure, extra={"fields": fields})  # fmt: skip


def _input_ref(bucket: str, key: str, etag: str | None) -> dict[str, Any]:
    """A summary's `input`: the object and the version of it the job read."""
    return {"bucket": bucket, "key": key, "etag": etag}


def _same_outcome(current: dict[str, Any], summary: dict[str, Any]) -> bool:
    """Whether a written summary already says what `summary` says (its time aside)."""
    return {k: v for k, v in current.items() if k != "finished"} == {
        k: v for k, v in summary.items() if k != "finished"
    }


#: How a file that is not UTF-8 text starts, and what it then is.
_BINARY_STARTS = ((b"\x1f\x8b", "gzip-compressed"), (b"PK\x03\x04", "a zip archive"),
                  (b"BZh", "bzip2-compressed"), (b"\xfd7zXZ\x00", "xz-compressed"),
                  (b"\xff\xfe", "UTF-16 or UTF-32 text"), (b"\xfe\xff", "UTF-16 text"),
                  (b"\x00\x00\xfe\xff", "UTF-32 text"))  # fmt: skip


def binary_kind(head: bytes) -> str | None:
    """What a file that starts with `head` is when it clearly is not UTF-8 text (a
    compressed file or UTF-16/32 text), else None: then each line is judged alone."""
    for start, kind in _BINARY_STARTS:
        if head.startswith(start):
            return kind
    return None


def _unreadable(exc: ClientError) -> str | None:
    """Why S3 will not give the input object, for a reason line; None for other errors."""
    kind = absence(exc)
    if kind == "missing":
        return "the input object does not exist (S3 404)"
    if kind == "forbidden":
        return "the function may not read the input object (S3 403: missing, or not allowed)"
    return None
