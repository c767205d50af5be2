"""`POST /batch` and `GET /batch/{job}`: start a batch job on an input object, and
read its progress. Errors go through rest.py's one mapping to statuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from chalicelib.batch import BatchJobs
from chalicelib.batch_layout import input_format
from chalicelib.errors import InvalidRequest, NotFound
from chalicelib.surfaces.rest import HttpAnswer, answer, json_answer


def start(jobs: Callable[[], BatchJobs], raw_body: bytes | None) -> HttpAnswer:
    """POST /batch {"input": "s3://<bucket>/<input prefix>...csv|jsonl"} -> 202 {"job"}:
    the job is queued for the splitter (GET /batch/{job} says "queued", then "running")."""

    def produce() -> dict[str, Any]:
        batch = jobs()
        if not batch.settings.queues.declared:  # the stage's config names no batch queues
            raise NotFound("This stage has no batch path (no batch queues are configured).")
        bucket, key = _input_location(raw_body, batch.settings.bucket,
                                      batch.settings.input_prefix)  # fmt: skip
        return {"job": batch.request(bucket, key)}

    result = answer(produce)
    return json_answer(202, orjson.loads(result.body)) if result.status == 200 else result


def progress(jobs: Callable[[], BatchJobs], job: str) -> HttpAnswer:
    """GET /batch/{job}: the summary once written, else parts and rows done so far."""
    return answer(lambda: jobs().progress(_job_id(job)))


def _input_location(raw_body: bytes | None, bucket: str, prefix: str) -> tuple[str, str]:
    expected = f'"input" must be "s3://{bucket}/{prefix}<name>.csv" (or .jsonl)'
    try:
        body = orjson.loads(raw_body or b"")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("The body is not valid JSON.", code="invalid_json") from exc
    url = body.get("input") if type(body) is dict else None
    if type(url) is not str:
        raise InvalidRequest(f"The body must be a JSON object; {expected}.")
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if (
        parts.scheme != "s3"
        or parts.netloc != bucket
        or not key.startswith(prefix)
        or ".." in key.split("/")
        or input_format(key) is None
    ):
        raise InvalidRequest(f"The input is not accepted: {expected}.", code="invalid_input")
    return bucket, key


def _job_id(job: str) -> str:
    if not job or len(job) > 100 or not all(c.isalnum() or c in "._-" for c in job):
        raise InvalidRequest("A job id is letters, digits, '.', '_' and '-'.", code="invalid_job")
    return job
