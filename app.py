"""Chalice routes only: decode HTTP, call chalicelib, encode the answer."""

from __future__ import annotations

from chalicelib.bundled_runtime import activate_bundled_runtime

# First: the tensorflow flavor ships its runtime as an archive to unpack to /tmp
# before numpy/orjson/TensorFlow are imported. A no-op for the lite flavor.
BUNDLED_RUNTIME = activate_bundled_runtime()

import logging
from collections.abc import Callable
from typing import Any

from chalice import Chalice, Response

from chalicelib.errors import ServiceError
from chalicelib.http import error_response, json_response
from chalicelib.wiring import get_service

app = Chalice(app_name="keras-model-serving")
app.debug = False  # never return stack traces to clients, in any stage
app.log.setLevel(logging.INFO)
if BUNDLED_RUNTIME is not None:
    app.log.info("runtime unpacked to %s in %.2f s", BUNDLED_RUNTIME.directory,
                 BUNDLED_RUNTIME.seconds)  # fmt: skip

# Accept any media type at the router so non-JSON gets this API's 415 body
# instead of Chalice's own; chalicelib checks the type itself.
_ANY_MEDIA_TYPE = ["application/json", "*/*"]


def _answer(produce: Callable[[], dict[str, Any]]) -> Response:
    try:
        return json_response(200, produce())
    except ServiceError as exc:
        return error_response(exc)
    except Exception:  # the service keeps serving; the client sees no internals
        app.log.exception("unhandled error")
        return error_response(ServiceError("An internal error occurred."))


@app.route("/predict", methods=["POST"], content_types=_ANY_MEDIA_TYPE)
def predict() -> Response:
    request = app.current_request
    return _answer(
        lambda: get_service().predict(request.raw_body, request.headers.get("content-type"))
    )


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _answer(lambda: get_service().health())


@app.route("/model", methods=["GET"])
def model() -> Response:
    return _answer(lambda: get_service().model_info())
