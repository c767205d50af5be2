"""Chalice routes only: each hands the request to a surface and sends its answer."""

from __future__ import annotations

from chalicelib.bundled_runtime import activate_bundled_runtime

# First: the tensorflow flavor ships its runtime as an archive to unpack to /tmp
# before numpy/orjson/TensorFlow are imported. A no-op for the lite flavor.
BUNDLED_RUNTIME = activate_bundled_runtime()

import logging
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response
from chalice.app import SQSEvent

from chalicelib.config import BatchQueues
from chalicelib.surfaces import batch_rest, batch_sqs, rest
from chalicelib.surfaces.rest import HttpAnswer
from chalicelib.wiring import get_batch_jobs, get_service

app = Chalice(app_name="keras-model-serving")
app.debug = False  # never return stack traces to clients, in any stage
app.log.setLevel(logging.INFO)
if BUNDLED_RUNTIME is not None:
    app.log.info("runtime unpacked to %s in %.2f s", BUNDLED_RUNTIME.directory,
                 BUNDLED_RUNTIME.seconds)  # fmt: skip

# Accept any media type at the router so non-JSON gets this API's 415 body
# instead of Chalice's own (which echoes the header); /predict checks the type
# itself, the GET routes ignore it.
_ANY_MEDIA_TYPE = ["application/json", "*/*"]


def _send(answer: HttpAnswer) -> Response:
    return Response(body=answer.body, status_code=answer.status, headers=dict(answer.headers))


@app.middleware("http")
def _one_error_shape(event: Any, get_response: Callable[[Any], Response]) -> Response:
    """Chalice's own error bodies ({"Code", "Message"}: 405, 500, ...) become ours."""
    try:
        response = get_response(event)
    except Exception:  # raised by Chalice before or after a route ran
        app.log.exception("unhandled error outside a route")
        return _send(rest.framework_error(500))
    if response.status_code >= 400 and isinstance(response.body, dict):
        allowed = str(response.headers.get("Allow", ""))  # the route's methods (405)
        return _send(rest.framework_error(response.status_code, allowed))
    return response


@app.route("/predict", methods=["POST"], content_types=_ANY_MEDIA_TYPE)
def predict() -> Response:
    request = app.current_request
    assert request is not None  # Chalice sets it before calling a route
    return _send(
        rest.predict(get_service, lambda: request.raw_body, request.headers.get("content-type"))
    )


@app.route("/health", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def health() -> Response:
    return _send(rest.health(get_service))


@app.route("/model", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def model() -> Response:
    return _send(rest.model(get_service))


# Batch scoring: a REST way in, and three SQS event sources (queue names in config.py).
_QUEUES = BatchQueues.from_env()


@app.route("/batch", methods=["POST"], content_types=_ANY_MEDIA_TYPE)
def start_batch() -> Response:
    request = app.current_request
    assert request is not None
    body = request.raw_body
    return _send(batch_rest.start(get_batch_jobs, body.encode() if isinstance(body, str) else body))


@app.route("/batch/{job}", methods=["GET"])
def batch_progress(job: str) -> Response:
    return _send(batch_rest.progress(get_batch_jobs, job))


def _messages(event: SQSEvent) -> list[tuple[str, str]]:
    return [(record.to_dict()["messageId"], record.body) for record in event]


@app.on_sqs_message(queue=_QUEUES.chunks, batch_size=1)
def score_batch_chunks(event: SQSEvent) -> dict[str, Any]:
    return batch_sqs.score_chunks(get_batch_jobs, _messages(event))


@app.on_sqs_message(queue=_QUEUES.dead_letters, batch_size=10)
def fail_batch_chunks(event: SQSEvent) -> dict[str, Any]:
    return batch_sqs.dead_letters(get_batch_jobs, _messages(event))


@app.on_sqs_message(queue=_QUEUES.input_events, batch_size=1)
def start_batch_jobs(event: SQSEvent) -> dict[str, Any]:
    return batch_sqs.input_events(get_batch_jobs, _messages(event))
