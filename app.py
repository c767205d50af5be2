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

from chalicelib.observability.logs import configure_json_logging
from chalicelib.surfaces import rest
from chalicelib.surfaces.rest import HttpAnswer
from chalicelib.wiring import get_service

app = Chalice(app_name="keras-model-serving", configure_logs=False)
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
        return _send(rest.framework_error(response.status_code, allowed))
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
