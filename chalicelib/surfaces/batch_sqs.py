"""SQS messages to batch calls: chunk messages, dead letters and S3 input events.

Each function takes (messageId, body) pairs and returns Lambda's partial batch
response: the ids of the messages to retry (`ReportBatchItemFailures`); the others
are deleted by the event source mapping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_plus

import orjson

from chalicelib.batch import BatchJobs
from chalicelib.batch_layout import Chunk, JobOptions, input_format

logger = logging.getLogger(__name__)

Message = tuple[str, str]


def score_chunks(jobs: Callable[[], BatchJobs], messages: Iterable[Message]) -> dict[str, Any]:
    """Score each chunk; a failure (model unavailable, S3 error, bad message) is retried."""
    failures: list[str] = []
    for message_id, body in messages:
        try:
            jobs().score(Chunk.from_json(body))
        except Exception:  # any failure: leave the message for a retry, then the DLQ
            logger.exception("chunk message %s failed", message_id)
            failures.append(message_id)
    return _failures(failures)


def dead_letters(jobs: Callable[[], BatchJobs], messages: Iterable[Message]) -> dict[str, Any]:
    """The batch dead-letter queue takes both queues' poison messages: a chunk is marked
    failed so its job completes; an input event that never split ends its job `failed`
    with the last recorded cause."""
    failures: list[str] = []
    for message_id, body in messages:
        try:
            chunk: Chunk | None = Chunk.from_json(body)
        except (ValueError, TypeError):
            chunk = None
        try:
            if chunk is not None:
                jobs().give_up(chunk)
                continue
            inputs = _created_objects(body)
            if not inputs:
                logger.error("dead letter %s is neither a chunk nor an input event; dropped",
                             message_id)  # fmt: skip
            for created in inputs:
                if _ours(jobs(), created):
                    jobs().give_up_input(*created)
        except Exception:
            logger.exception("dead letter %s not recorded", message_id)
            failures.append(message_id)
    return _failures(failures)


def input_events(jobs: Callable[[], BatchJobs], messages: Iterable[Message]) -> dict[str, Any]:
    """Start a job per object created under the input prefix (S3 -> SQS notifications,
    or a POST /batch request; `s3:TestEvent` and other keys are ignored)."""
    failures: list[str] = []
    for message_id, body in messages:
        try:
            for created in _created_objects(body):
                if _ours(jobs(), created):
                    jobs().start(*created)
        except Exception:
            logger.exception("input event %s failed", message_id)
            failures.append(message_id)
    return _failures(failures)


Created = tuple[str, str, str | None, int | None, JobOptions | None]


def _created_objects(body: str) -> list[Created]:
    """(bucket, key, ETag, size, options) of each object an input event announces; the
    options only when a POST /batch request gave them (else the object's metadata)."""
    try:
        # bounded: an SQS message, 256 KB at most
        event: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        logger.error("an input event is not JSON; ignored")
        return []
    if type(event) is not dict or event.get("Event") == "s3:TestEvent":
        return []
    if type(event.get("input")) is dict:  # queued by POST /batch
        source = event["input"]
        options = event.get("options")
        return [(str(source["bucket"]), str(source["key"]), source.get("etag"),
                 source.get("size"),
                 JobOptions.from_json(options) if type(options) is dict else None)]  # fmt: skip
    created: list[Created] = []
    for record in event.get("Records", []):
        if str(record.get("eventName", "")).startswith("ObjectCreated"):
            found = record["s3"]["object"]
            created.append((record["s3"]["bucket"]["name"], unquote_plus(found["key"]),
                            found.get("eTag"), found.get("size"), None))  # fmt: skip
    return created


def _ours(batch: BatchJobs, created: Created) -> bool:
    """An object of this stage's bucket and input prefix with a batch file extension."""
    bucket, key = created[0], created[1]
    settings = batch.settings
    return bucket == settings.bucket and key.startswith(settings.input_prefix) and (
        input_format(key) is not None)  # fmt: skip


def _failures(message_ids: list[str]) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": m} for m in message_ids]}
