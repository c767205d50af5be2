"""`POST /batch` and `GET /batch/{job}`: start a batch job on an input object, and
read its progress. Errors go through rest.py's one mapping to statuses; each call is
one request line (Surface `batch_api`) through the batch path's telemetry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from chalicelib.batch import BatchJobs
from chalicelib.batch_layout import InvalidOptions, JobOptions, input_format
from chalicelib.errors import InvalidRequest, NotFound
from chalicelib.observability import RequestObservation
from chalicelib.observability.context import request_id
from chalicelib.observability.telemetry import declare_surface
from chalicelib.surfaces.json_body import parse_json
from chalicelib.surfaces.json_structure import JsonBudget
from chalicelib.surfaces.rest import HttpAnswer, answer, finish, json_answer

#: This surface in the `Surface` dimension.
BATCH_API = declare_surface("batch_api")

#: A job request is one object: an S3 URL, a list of column names and a flag.
BATCH_BUDGET = JsonBudget(
    "a batch request", values=4_096, containers=16, keys=16, strings=4_096, depth=4
)


def _counted(
    jobs: Callable[[], BatchJobs], produce: Callable[[BatchJobs], dict[str, Any]],
    request_ids: Sequence[object], status: int = 200,
) -> HttpAnswer:  # fmt: skip
    """`produce`'s answer (with `status` on success) and the call's request line."""
    observation = RequestObservation(request_id(*request_ids), BATCH_API)
    batch: BatchJobs | None = None

    def run() -> dict[str, Any]:
        nonlocal batch
        batch = jobs()
        return produce(batch)

    result = answer(run, observation)
    if result.status == 200 and status != 200:
        # bounded: the service's own answer
        result = json_answer(status, orjson.loads(result.body))
        observation.status = status
    finish(batch.telemetry if batch else None, observation)
    return result


def start(
    jobs: Callable[[], BatchJobs], raw_body: bytes | None, request_ids: Sequence[object] = ()
) -> HttpAnswer:
    """POST /batch {"input": "s3://<bucket>/<input prefix>...csv|jsonl"[, "pass_through":
    ["application_id", ...]][, "ignore_extra_columns": true]} -> 202 {"job"}: the job is
    queued for the splitter (GET /batch/{job} says "queued", then "running"). Without
    options the object's metadata convention applies, as for an S3 event."""

    def produce(batch: BatchJobs) -> dict[str, Any]:
        if not batch.settings.queues.declared:  # the stage's config names no batch queues
            raise NotFound("This stage has no batch path (no batch queues are configured).")
        body = _body(raw_body)
        bucket, key = _input_location(body, batch.settings.bucket, batch.settings.input_prefix)
        return {"job": batch.request(bucket, key, _options(body))}

    return _counted(jobs, produce, request_ids, 202)


def progress(
    jobs: Callable[[], BatchJobs], job: str, request_ids: Sequence[object] = ()
) -> HttpAnswer:
    """GET /batch/{job}: the summary once written, else parts and rows done so far."""
    return _counted(jobs, lambda batch: batch.progress(_job_id(job)), request_ids)


_KEYS = ("input", "pass_through", "ignore_extra_columns")


def _body(raw_body: bytes | None) -> Any:
    return parse_json(raw_body, BATCH_BUDGET)


def _options(body: dict[str, Any]) -> JobOptions | None:
    """The request's job options, or None when it gives none."""
    if any(key not in _KEYS for key in body):
        raise InvalidRequest(f"The body takes {', '.join(map(repr, _KEYS))} only.",
                             code="invalid_options")  # fmt: skip
    if "pass_through" not in body and "ignore_extra_columns" not in body:
        return None
    try:
        return JobOptions.from_json(body)
    except InvalidOptions as exc:
        raise InvalidRequest(f"The options are not usable: {exc}.", code="invalid_options") from exc


def _input_location(body: Any, bucket: str, prefix: str) -> tuple[str, str]:
    expected = f'"input" must be "s3://{bucket}/{prefix}<name>.csv" (or .jsonl)'
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
