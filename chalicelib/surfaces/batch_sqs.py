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
from chalicelib.batch_layout import Chunk, input_format

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
    """Mark each dead-lettered chunk failed so its job completes."""
    failures: list[str] = []
    for message_id, body in messages:
        try:
            chunk = Chunk.from_json(body)
        except (ValueError, TypeError):
            logger.error("dead letter %s is not a chunk message; dropped", message_id)
            continue
        try:
            jobs().give_up(chunk)
        except Exception:
            logger.exception("dead letter %s not recorded", message_id)
            failures.append(message_id)
    return _failures(failures)


def input_events(jobs: Callable[[], BatchJobs], messages: Iterable[Message]) -> dict[str, Any]:
    """Start a job per object created under the input prefix (S3 -> SQS notifications;
    `s3:TestEvent` and other keys are ignored)."""
    failures: list[str] = []
    for message_id, body in messages:
        try:
            for bucket, key in _created_objects(body):
                batch = jobs()
                ours = bucket == batch.settings.bucket
                if ours and key.startswith(batch.settings.input_prefix) and input_format(key):
                    batch.start(bucket, key)
        except Exception:
            logger.exception("input event %s failed", message_id)
            failures.append(message_id)
    return _failures(failures)


def _created_objects(body: str) -> list[tuple[str, str]]:
    try:
        event: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        logger.error("an input event is not JSON; ignored")
        return []
    if type(event) is not dict or event.get("Event") == "s3:TestEvent":
        return []
    return [
        (record["s3"]["bucket"]["name"], unquote_plus(record["s3"]["object"]["key"]))
        for record in event.get("Records", [])
        if str(record.get("eventName", "")).startswith("ObjectCreated")
    ]


def _failures(message_ids: list[str]) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": m} for m in message_ids]}
