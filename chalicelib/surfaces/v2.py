"""The Open Inference Protocol (KServe V2) REST surface as plain data.

Server and model metadata, health, and inference: the model's own input tensors or
one tensor per raw field (columnar records), outputs as tensors, JSON or binary
(the binary tensor data extension). Errors are `{"error": "..."}` with the status
the ServiceError carries; messages name tensors, rows and fields, never values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from chalicelib.config import APP_NAME
from chalicelib.errors import InvalidRequest, NotServed, ServiceError
from chalicelib.manifest import BundleManifest
from chalicelib.service import PredictionService
from chalicelib.surfaces.rest import HttpAnswer
from chalicelib.surfaces.rest import framework_error as rest_framework_error
from chalicelib.surfaces.v2_model import ServedModel
from chalicelib.surfaces.v2_tensors import (
    encode_response,
    parse_infer_request,
)

logger = logging.getLogger(__name__)

SERVER_NAME = APP_NAME
SERVER_VERSION = "1"
EXTENSIONS = ["binary_tensor_data"]
_JSON = {"Content-Type": "application/json"}


def v2_error(error: ServiceError) -> HttpAnswer:
    """The protocol's error body: one message, with the rows and fields at fault."""
    text = error.message
    if error.details:
        text += " " + "; ".join(
            f"row {p.record}" + (f", field {p.field}" if p.field else "") + f": {p.problem}"
            for p in error.details
        )
    return _json(error.status, {"error": text})


def answer(produce: Callable[[], HttpAnswer]) -> HttpAnswer:
    """Run `produce`; a ServiceError becomes its status, anything else a logged 500."""
    try:
        return produce()
    except ServiceError as exc:
        return v2_error(exc)
    except Exception:  # the service keeps serving; the client sees no internals
        logger.exception("unhandled error")
        return v2_error(ServiceError("An internal error occurred."))


def framework_error(status: int, allowed: str = "") -> HttpAnswer:
    """What the framework answered by itself (405, 500, ...), in the V2 error shape."""
    rest = rest_framework_error(status, allowed)
    # bounded: the service's own answer
    message = orjson.loads(rest.body)["error"]["message"]
    return HttpAnswer(rest.status, orjson.dumps({"error": message}).decode(), rest.headers)


def server_metadata() -> HttpAnswer:
    """GET /v2."""
    return _json(200, {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": EXTENSIONS})


def live() -> HttpAnswer:
    """GET /v2/health/live: the function runs (never loads the model)."""
    return _json(200, {"live": True})


def ready(service: Callable[[], PredictionService]) -> HttpAnswer:
    """GET /v2/health/ready: the model is loaded (loading it if needed), else 503."""

    def produce() -> HttpAnswer:
        service().manifest()
        return _json(200, {"ready": True})

    return answer(produce)


def model_ready(
    service: Callable[[], PredictionService], name: str, version: str | None = None
) -> HttpAnswer:
    """GET /v2/models/{name}[/versions/{version}]/ready."""

    def produce() -> HttpAnswer:
        manifest = _served(service(), name, version)
        return _json(200, {"name": manifest.name, "ready": True})

    return answer(produce)


def model_metadata(
    service: Callable[[], PredictionService], name: str, version: str | None = None
) -> HttpAnswer:
    """GET /v2/models/{name}[/versions/{version}]."""

    def produce() -> HttpAnswer:
        serving = service()
        model = ServedModel(_served(serving, name, version))
        return _json(200, model.metadata(serving.store.engine_kind))

    return answer(produce)


def infer(
    service: Callable[[], PredictionService],
    name: str,
    version: str | None,
    read_body: Callable[[], bytes | str | None],
    headers: Mapping[str, str],
) -> HttpAnswer:
    """POST /v2/models/{name}[/versions/{version}]/infer.

    `headers` is case-insensitive (Inference-Header-Content-Length, Accept): binary
    outputs are sent only to a client whose Accept admits application/octet-stream,
    since API Gateway returns binary bodies only then; others get JSON data.
    """

    def produce() -> HttpAnswer:
        serving = service()  # builds the service (not the model): the parse's budget
        request = parse_infer_request(
            _read(read_body), headers.get("inference-header-content-length"), serving.max_records
        )
        model = ServedModel(_served(serving, name, version))
        outputs = model.requested_outputs(request)
        raw = model.is_raw(request.inputs)
        rows = model.rows(request.inputs, serving.max_records)
        if raw:
            scores = serving.score_columns(model.columns(request.inputs))
        else:
            scores = serving.score_tensors(model.tensors(request.inputs))
        tensors = [t for t in model.output_tensors(scores, rows) if t.name in outputs]
        header: dict[str, Any] = {"model_name": model.manifest.name,
                                  "model_version": model.manifest.version}  # fmt: skip
        if request.id is not None:
            header["id"] = request.id
        binary = {name: request.binary_output if b is None else b for name, b in outputs.items()}
        if not _accepts_binary(headers.get("accept")):
            binary = {}
        body, header_length = encode_response(header, tensors, binary)
        if header_length is None:
            return HttpAnswer(200, body.decode(), dict(_JSON))
        return HttpAnswer(
            200,
            body,
            {"Content-Type": "application/octet-stream",
             "Inference-Header-Content-Length": str(header_length)},
        )  # fmt: skip

    return answer(produce)


def _served(service: PredictionService, name: str, version: str | None) -> BundleManifest:
    manifest = service.manifest()
    if name != manifest.name:
        raise NotServed(
            f"No model of this name is served here; the served model is {manifest.name!r}."
        )
    if version is not None and version != manifest.version:
        raise NotServed(
            f"This version of {manifest.name!r} is not served; the served version is "
            f"{manifest.version!r}."
        )
    return manifest


def _read(read_body: Callable[[], bytes | str | None]) -> bytes | None:
    try:
        body = read_body()
    except ValueError as exc:  # invalid base64
        raise InvalidRequest(
            "The request body could not be decoded.", code="invalid_encoding"
        ) from exc
    return body.encode() if isinstance(body, str) else body


def _accepts_binary(accept: str | None) -> bool:
    if not accept:
        return False
    types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(types & {"application/octet-stream", "*/*"})


def _json(status: int, body: dict[str, Any]) -> HttpAnswer:
    return HttpAnswer(status, orjson.dumps(body).decode(), dict(_JSON))
