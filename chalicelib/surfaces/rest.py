"""The project's own REST contract (`/predict`, `/health`, `/model`) as plain data.

Decodes the HTTP body into records, calls the core, and encodes its answer or its
ServiceError as an `HttpAnswer`; this is the one place errors become HTTP statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from chalicelib.core.inputs import Records
from chalicelib.errors import InvalidRequest, ServiceError
from chalicelib.observability import RequestObservation, Telemetry
from chalicelib.observability.context import request_id
from chalicelib.observability.logs import log_event
from chalicelib.observability.telemetry import declare_surface
from chalicelib.service import PredictionService
from chalicelib.surfaces.json_body import check_media_type, parse_records
from chalicelib.surfaces.openapi_document import document_text

#: This surface in the `Surface` dimension.
PREDICT = declare_surface("predict")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpAnswer:
    """A status, JSON text (or bytes, with a binary Content-Type) and headers: what any
    HTTP framework can send."""

    status: int
    body: str | bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def json_answer(status: int, body: dict[str, Any]) -> HttpAnswer:
    """A compact JSON answer, serialised with orjson (~15x faster than json here)."""
    return HttpAnswer(status, orjson.dumps(body).decode())


def error_answer(error: ServiceError) -> HttpAnswer:
    """The API's error body with the status the exception class carries."""
    return json_answer(error.status, error.to_json())


def answer(
    produce: Callable[[], dict[str, Any]], observation: RequestObservation | None = None
) -> HttpAnswer:
    """Run `produce`; a ServiceError becomes its status, anything else a logged 500.
    `observation` gets the status, the error code and the serialise phase."""
    observation = observation or RequestObservation("")
    try:
        body = produce()
        with observation.timings.phase("serialise"):
            result = json_answer(200, body)
    except ServiceError as exc:
        result = error_answer(exc)
        observation.error_code = exc.code
    except Exception:  # the service keeps serving; the client sees no internals
        logger.exception("unhandled error")
        result = error_answer(ServiceError("An internal error occurred."))
        observation.error_code = "internal_error"
    observation.status = result.status
    return result


def predict(
    service: Callable[[], PredictionService],
    read_body: Callable[[], bytes | str | None],
    content_type: str | None,
    request_ids: Sequence[object] = (),
) -> HttpAnswer:
    """POST /predict: checks that need no model run first, so a malformed request
    gets its 4xx even while the model is unavailable.

    `read_body` decodes the transport's body (base64, text to UTF-8); it raises
    ValueError when it cannot, which is the client's fault. `request_ids`: the
    transport's ids for this request (the first usable one is logged).
    """
    observation = RequestObservation(request_id(*request_ids), PREDICT)
    serving: PredictionService | None = None

    def produce() -> dict[str, Any]:
        nonlocal serving
        serving = service()  # builds the service (not the model): its telemetry counts a 415
        check_media_type(content_type)
        with observation.timings.phase("parse"):
            records = parse_records(_body_bytes(read_body), serving.max_records)
        observation.records = len(records)
        scored = serving.score(observation, Records(records))
        return {"model": scored.model, "predictions": scored.predictions}

    result = answer(produce, observation)
    finish(serving.telemetry if serving else None, observation)
    return result


def finish(telemetry: Telemetry | None, observation: RequestObservation) -> None:
    """The request's one line, whatever the surface: through the core's telemetry, or
    without one (a configuration error: no service was built) a line without metrics."""
    if telemetry is not None:
        telemetry.finish_request(observation)
        return
    log_event(logger, "request", {"request_id": observation.request_id,
                                  "surface": observation.surface, "status": observation.status,
                                  "error_code": observation.error_code})  # fmt: skip


def _body_bytes(read_body: Callable[[], bytes | str | None]) -> bytes | None:
    try:
        body = read_body()
        return body.encode() if isinstance(body, str) else body
    except ValueError as exc:  # invalid base64, or a lone surrogate in a text body
        raise InvalidRequest(
            "The request body could not be decoded (invalid base64 or not UTF-8).",
            code="invalid_encoding",
        ) from exc


def health(service: Callable[[], PredictionService]) -> HttpAnswer:
    """GET /health."""
    return answer(lambda: service().health())


def openapi_document() -> HttpAnswer:
    """GET /openapi.json: the OpenAPI document of every route (`openapi_document`)."""
    return HttpAnswer(200, document_text(), {"Content-Type": "application/json"})


def model(service: Callable[[], PredictionService]) -> HttpAnswer:
    """GET /model."""
    return answer(lambda: service().model_info())


# What the web framework answers by itself (no route matched the method, its own
# media-type check, a crash outside a route): the same error body, and no text
# taken from the request.
_FRAMEWORK_ERRORS = {
    400: ("invalid_request", "The request could not be read."),
    403: ("forbidden", "This path or method is not part of the API."),
    404: ("not_found", "This path is not part of the API."),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    415: ("unsupported_media_type", "Send JSON with Content-Type: application/json."),
}


def framework_error(status: int, allowed: str = "") -> HttpAnswer:
    """The API's error body for a status the framework answered with its own body.

    `allowed` is the route's methods for a 405; a 405 without any means no route
    has the path (a direct invoke with any path), which is a 404.
    """
    if status >= 500:
        return error_answer(ServiceError("An internal error occurred."))
    if status == 405 and not allowed:
        status = 404
    code, message = _FRAMEWORK_ERRORS.get(status, ("request_refused", "The request was refused."))
    answer = json_answer(status, {"error": {"code": code, "message": message}})
    if status == 405:
        answer.headers["Allow"] = allowed
    return answer
