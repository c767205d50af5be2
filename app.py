"""Chalice routes only: each hands the request to a surface and sends its answer."""

from __future__ import annotations

from chalicelib.bundled_runtime import activate_bundled_runtime

# First: the tensorflow flavor ships its runtime as an archive to unpack to /tmp
# before numpy/orjson/TensorFlow are imported. A no-op for the lite flavor.
BUNDLED_RUNTIME = activate_bundled_runtime()

import logging

from chalice import Chalice, Response

from chalicelib.surfaces import rest
from chalicelib.surfaces.rest import HttpAnswer
from chalicelib.wiring import get_service

app = Chalice(app_name="keras-model-serving")
app.debug = False  # never return stack traces to clients, in any stage
app.log.setLevel(logging.INFO)
if BUNDLED_RUNTIME is not None:
    app.log.info("runtime unpacked to %s in %.2f s", BUNDLED_RUNTIME.directory,
                 BUNDLED_RUNTIME.seconds)  # fmt: skip

# Accept any media type at the router so non-JSON gets this API's 415 body
# instead of Chalice's own; the surface checks the type itself.
_ANY_MEDIA_TYPE = ["application/json", "*/*"]


def _send(answer: HttpAnswer) -> Response:
    return Response(body=answer.body, status_code=answer.status, headers=dict(answer.headers))


@app.route("/predict", methods=["POST"], content_types=_ANY_MEDIA_TYPE)
def predict() -> Response:
    request = app.current_request
    assert request is not None  # Chalice sets it before calling a route
    body = request.raw_body
    return _send(
        rest.predict(
            get_service,
            body.encode() if isinstance(body, str) else body,
            request.headers.get("content-type"),
        )
    )


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _send(rest.health(get_service))


@app.route("/model", methods=["GET"])
def model() -> Response:
    return _send(rest.model(get_service))
