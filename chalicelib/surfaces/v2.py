"""The Open Inference Protocol (KServe V2) REST surface as plain data.

Server and model metadata, health, and inference: the model's own input tensors or
one tensor per raw field (columnar records), outputs as tensors, JSON or binary
(the binary tensor data extension). Errors are `{"error": "..."}` with the status
the ServiceError carries; messages name tensors, rows and fields, never values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from chalicelib.config import APP_NAME
from chalicelib.core.inputs import Columns, ModelInput, Tensors
from chalicelib.errors import InvalidRequest, NotServed, ServiceError
from chalicelib.manifest import BundleManifest
from chalicelib.observability import RequestObservation
from chalicelib.observability.context import request_id
from chalicelib.observability.telemetry import declare_surface
from chalicelib.service import PredictionService
from chalicelib.surfaces.rest import HttpAnswer, finish
from chalicelib.surfaces.rest import framework_error as rest_framework_error
from chalicelib.surfaces.v2_model import ServedModel
from chalicelib.surfaces.v2_tensors import (
    encode_response,
    parse_infer_request,
)

#: This surface in the `Surface` dimension.
V2_INFER = declare_surface("v2_infer")

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


def answer(
    produce: Callable[[], HttpAnswer], observation: RequestObservation | None = None
) -> HttpAnswer:
    """Run `produce`; a ServiceError becomes its status, anything else a logged 500.
    `observation` gets the status, the error code and the serialise phase."""
    observation = observation or RequestObservation("", V2_INFER)
    try:
        result = produce()
    except ServiceError as exc:
        result = v2_error(exc)
        observation.error_code = exc.code
    except Exception:  # the service keeps serving; the client sees no internals
        logger.exception("unhandled error")
        result = v2_error(ServiceError("An internal error occurred."))
        observation.error_code = "internal_error"
    observation.status = result.status
    return result


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
        manifest = _served(service().manifest(), name, version)
        return _json(200, {"name": manifest.name, "ready": True})

    return answer(produce)


def model_metadata(
    service: Callable[[], PredictionService], name: str, version: str | None = None
) -> HttpAnswer:
    """GET /v2/models/{name}[/versions/{version}]."""

    def produce() -> HttpAnswer:
        serving = service()
        model = ServedModel(_served(serving.manifest(), name, version))
        return _json(200, model.metadata(serving.store.engine_kind))

    return answer(produce)


def infer(
    service: Callable[[], PredictionService],
    name: str,
    version: str | None,
    read_body: Callable[[], bytes | str | None],
    headers: Mapping[str, str],
    request_ids: Sequence[object] = (),
) -> HttpAnswer:
    """POST /v2/models/{name}[/versions/{version}]/infer.

    `headers` is case-insensitive (Inference-Header-Content-Length, Accept): binary
    outputs are sent only to a client whose Accept admits application/octet-stream,
    since API Gateway returns binary bodies only then; others get JSON data. The
    request is checked against, scored by and answered from one snapshot of the model.
    """
    observation = RequestObservation(request_id(*request_ids), V2_INFER)
    serving: PredictionService | None = None

    def produce() -> HttpAnswer:
        nonlocal serving
        serving = service()  # builds the service (not the model): the parse's budget
        with observation.timings.phase("parse"):
            request = parse_infer_request(
                _read(read_body),
                headers.get("inference-header-content-length"),
                serving.max_records,
            )
        max_records = serving.max_records
        decoded: list[tuple[ServedModel, dict[str, bool | None]]] = []

        def decode(manifest: BundleManifest) -> ModelInput:
            model = ServedModel(_served(manifest, name, version))
            decoded.append((model, model.requested_outputs(request)))
            raw = model.is_raw(request.inputs)
            observation.records = model.rows(request.inputs, max_records)
            if raw:
                return Columns(model.columns(request.inputs))
            return Tensors(model.tensors(request.inputs))

        scored = serving.score(observation, decode)
        model, outputs = decoded[0]
        with observation.timings.phase("serialise"):
            tensors = [t for t in model.output_tensors(scored) if t.name in outputs]
            header: dict[str, Any] = {"model_name": scored.manifest.name,
                                      "model_version": scored.manifest.version}  # fmt: skip
            if request.id is not None:
                header["id"] = request.id
            binary = {n: request.binary_output if b is None else b for n, b in outputs.items()}
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

    result = answer(produce, observation)
    finish(serving.telemetry if serving else None, observation)
    return result


def _served(manifest: BundleManifest, name: str, version: str | None) -> BundleManifest:
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
