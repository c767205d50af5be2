"""The project's own REST contract (`/predict`, `/health`, `/model`) as plain data.

Decodes the HTTP body into records, calls the core, and encodes its answer or its
ServiceError as an `HttpAnswer`; this is the one place errors become HTTP statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from chalicelib.errors import ServiceError
from chalicelib.service import PredictionService
from chalicelib.surfaces.json_body import check_media_type, parse_records

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpAnswer:
    """A status, JSON text and headers: what any HTTP framework can send."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def json_answer(status: int, body: dict[str, Any]) -> HttpAnswer:
    """A compact JSON answer, serialised with orjson (~15x faster than json here)."""
    return HttpAnswer(status, orjson.dumps(body).decode())


def error_answer(error: ServiceError) -> HttpAnswer:
    """The API's error body with the status the exception class carries."""
    return json_answer(error.status, error.to_json())


def answer(produce: Callable[[], dict[str, Any]]) -> HttpAnswer:
    """Run `produce`; a ServiceError becomes its status, anything else a logged 500."""
    try:
        return json_answer(200, produce())
    except ServiceError as exc:
        return error_answer(exc)
    except Exception:  # the service keeps serving; the client sees no internals
        logger.exception("unhandled error")
        return error_answer(ServiceError("An internal error occurred."))


def predict(
    service: Callable[[], PredictionService], raw_body: bytes | None, content_type: str | None
) -> HttpAnswer:
    """POST /predict: checks that need no model run first, so a malformed request
    gets its 4xx even while the model is unavailable."""

    def produce() -> dict[str, Any]:
        check_media_type(content_type)
        serving = service()
        return serving.predict(parse_records(raw_body, serving.max_records))

    return answer(produce)


def health(service: Callable[[], PredictionService]) -> HttpAnswer:
    """GET /health."""
    return answer(lambda: service().health())


def model(service: Callable[[], PredictionService]) -> HttpAnswer:
    """GET /model."""
    return answer(lambda: service().model_info())
