"""Chalice routes only: each hands the request to a surface and sends its answer."""

from __future__ import annotations

from chalicelib.bundled_runtime import activate_bundled_runtime

# First: the tensorflow flavor ships its runtime as an archive to unpack to /tmp
# before numpy/orjson/TensorFlow are imported. A no-op for the lite flavor.
BUNDLED_RUNTIME = activate_bundled_runtime()

import logging
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Chalice, IAMAuthorizer, Response
from chalice.app import SQSEvent

from chalicelib.config import (
    APP_NAME,
    CHUNK_HANDLER,
    DEAD_LETTER_BATCH_SIZE,
    DEAD_LETTER_HANDLER,
    EVENTS_BATCH_SIZE,
    EVENTS_HANDLER,
    BatchQueues,
    Registration,
)
from chalicelib.observability.logs import configure_json_logging
from chalicelib.surfaces import rest
from chalicelib.surfaces.rest import HttpAnswer
from chalicelib.surfaces.routes import is_public
from chalicelib.wiring import get_batch_jobs, get_service

# batch_rest, batch_sqs and v2 are imported inside their routes: /predict's cold start
# never pays for the batch and V2 surfaces.


class ProtectedByDefault(Chalice):
    """Every route gets the stage's auth (API_AUTH, from the stage's configuration:
    `Registration`) unless it is public (chalicelib.surfaces.routes), so a route added
    later, by decorator or blueprint, is protected without naming it anywhere."""

    def __init__(self, app_name: str, auth: str, **kwargs: Any) -> None:
        super().__init__(app_name, **kwargs)
        self.auth = auth
        self._iam = IAMAuthorizer()

    def _register_route(self, name: str, user_handler: Any, kwargs: Any, **unused: Any) -> None:
        super()._register_route(name, user_handler, kwargs, **unused)
        for path, methods in self.routes.items():
            for method, entry in methods.items():
                if is_public(method, path) or self.auth == "none" or entry.authorizer:
                    continue
                if self.auth == "iam":
                    entry.authorizer = self._iam
                else:
                    entry.api_key_required = True


# The stage's configuration, read once: Chalice sets the stage's environment_variables
# before importing this module (chalice deploy/package/local, and Lambda).
REGISTRATION = Registration.from_env()
app = ProtectedByDefault(APP_NAME, REGISTRATION.auth, configure_logs=False)
app.debug = False  # never return stack traces to clients, in any stage
# Every log record, app.log's and chalicelib's, is one JSON line on stdout.
configure_json_logging([app.log.name, "chalicelib"], logging.INFO)
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
        errors: Any = rest
        if str(getattr(event, "path", "")).startswith("/v2"):
            from chalicelib.surfaces import v2 as errors
        return _send(errors.framework_error(response.status_code, allowed))
    return response


@app.route("/predict", methods=["POST"], content_types=_ANY_MEDIA_TYPE)
def predict() -> Response:
    request = app.current_request
    assert request is not None  # Chalice sets it before calling a route
    lambda_context = getattr(app, "lambda_context", None)
    ids = (getattr(lambda_context, "aws_request_id", None), request.context.get("requestId"))
    return _send(
        rest.predict(
            get_service, lambda: request.raw_body, request.headers.get("content-type"), ids
        )
    )


@app.route("/health", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def health() -> Response:
    return _send(rest.health(get_service))


@app.route("/model", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def model() -> Response:
    return _send(rest.model(get_service))


# Batch scoring: a REST way in, and three SQS event sources. The SQS handlers are
# subscribed only for a stage that names its queues in its own environment_variables
# (BATCH_CHUNK_QUEUE, BATCH_DEAD_LETTER_QUEUE, BATCH_EVENTS_QUEUE): Chalice creates no
# queues, so a stage without them deploys with a plain `chalice deploy`. The handlers
# exist either way (module attributes Lambda-like tests and `make batch` call).
batch_handlers = Blueprint(__name__)
_QUEUES = REGISTRATION.batch or BatchQueues()


@app.route("/batch", methods=["POST"], content_types=_ANY_MEDIA_TYPE)
def start_batch() -> Response:
    from chalicelib.surfaces import batch_rest

    request = app.current_request
    assert request is not None
    body = request.raw_body
    return _send(batch_rest.start(get_batch_jobs, body.encode() if isinstance(body, str) else body))


@app.route("/batch/{job}", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def batch_progress(job: str) -> Response:
    from chalicelib.surfaces import batch_rest

    return _send(batch_rest.progress(get_batch_jobs, job))


def _messages(event: SQSEvent) -> list[tuple[str, str]]:
    return [(record.to_dict()["messageId"], record.body) for record in event]


@batch_handlers.on_sqs_message(
    queue=_QUEUES.chunks,
    batch_size=_QUEUES.worker_batch_size,
    maximum_concurrency=_QUEUES.worker_concurrency,
    name=CHUNK_HANDLER,
)
def score_batch_chunks(event: SQSEvent) -> dict[str, Any]:
    from chalicelib.surfaces import batch_sqs

    return batch_sqs.score_chunks(get_batch_jobs, _messages(event))


@batch_handlers.on_sqs_message(
    queue=_QUEUES.dead_letters, batch_size=DEAD_LETTER_BATCH_SIZE, name=DEAD_LETTER_HANDLER
)
def fail_batch_chunks(event: SQSEvent) -> dict[str, Any]:
    from chalicelib.surfaces import batch_sqs

    return batch_sqs.dead_letters(get_batch_jobs, _messages(event))


@batch_handlers.on_sqs_message(
    queue=_QUEUES.input_events, batch_size=EVENTS_BATCH_SIZE, name=EVENTS_HANDLER
)
def start_batch_jobs(event: SQSEvent) -> dict[str, Any]:
    from chalicelib.surfaces import batch_sqs

    return batch_sqs.input_events(get_batch_jobs, _messages(event))


if REGISTRATION.batch is not None:
    app.register_blueprint(batch_handlers)


# --- Open Inference Protocol (KServe V2) and the OpenAPI document -------------------
# Binary tensor data arrives as application/octet-stream: API Gateway then passes it
# base64-encoded (isBase64Encoded) and Chalice's raw_body decodes it; binary answers go
# out base64-encoded to clients whose Accept admits the type. JSON stays text.
if "application/octet-stream" not in app.api.binary_types:
    app.api.binary_types.append("application/octet-stream")


def _v2_infer(name: str, version: str | None) -> Response:
    from chalicelib.surfaces import v2

    request = app.current_request
    assert request is not None
    return _send(v2.infer(get_service, name, version, lambda: request.raw_body, request.headers))


@app.route("/v2", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def v2_server() -> Response:
    from chalicelib.surfaces import v2

    return _send(v2.server_metadata())


@app.route("/v2/health/live", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def v2_live() -> Response:
    from chalicelib.surfaces import v2

    return _send(v2.live())


@app.route("/v2/health/ready", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def v2_ready() -> Response:
    from chalicelib.surfaces import v2

    return _send(v2.ready(get_service))


@app.route("/v2/models/{name}", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def v2_model(name: str) -> Response:
    from chalicelib.surfaces import v2

    return _send(v2.model_metadata(get_service, name))


@app.route("/v2/models/{name}/versions/{version}", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def v2_model_version(name: str, version: str) -> Response:
    from chalicelib.surfaces import v2

    return _send(v2.model_metadata(get_service, name, version))


@app.route("/v2/models/{name}/ready", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def v2_model_ready(name: str) -> Response:
    from chalicelib.surfaces import v2

    return _send(v2.model_ready(get_service, name))


@app.route(
    "/v2/models/{name}/versions/{version}/ready", methods=["GET"], content_types=_ANY_MEDIA_TYPE
)
def v2_model_version_ready(name: str, version: str) -> Response:
    from chalicelib.surfaces import v2

    return _send(v2.model_ready(get_service, name, version))


@app.route("/v2/models/{name}/infer", methods=["POST"], content_types=_ANY_MEDIA_TYPE)
def v2_infer(name: str) -> Response:
    return _v2_infer(name, None)


@app.route(
    "/v2/models/{name}/versions/{version}/infer", methods=["POST"], content_types=_ANY_MEDIA_TYPE
)
def v2_infer_version(name: str, version: str) -> Response:
    return _v2_infer(name, version)


@app.route("/openapi.json", methods=["GET"], content_types=_ANY_MEDIA_TYPE)
def openapi_document() -> Response:
    return _send(rest.openapi_document())
