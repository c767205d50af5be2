"""The Open Inference Protocol (KServe V2) REST surface as plain data.

Server and model metadata, health, and inference: the model's own input tensors or
one tensor per raw field (columnar records), outputs as tensors, JSON or binary
(the binary tensor data extension). Errors are `{"error": "..."}` with the status
the ServiceError carries; messages name tensors, rows and fields, never values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from chalicelib.errors import InvalidRequest, NotServed, PayloadTooLarge, ServiceError
from chalicelib.manifest import BundleManifest
from chalicelib.service import PredictionService, Scores
from chalicelib.surfaces.rest import HttpAnswer
from chalicelib.surfaces.rest import framework_error as rest_framework_error
from chalicelib.surfaces.v2_tensors import (
    BYTES,
    DATATYPE_OF,
    DTYPES,
    InferRequest,
    OutputTensor,
    Tensor,
    encode_response,
    parse_infer_request,
)

logger = logging.getLogger(__name__)

SERVER_NAME = "keras-model-serving"
SERVER_VERSION = "1"
EXTENSIONS = ["binary_tensor_data"]
_NUMERIC = frozenset(DTYPES) - {"BOOL"}
_JSON = {"Content-Type": "application/json"}
# Echo a client's tensor name only when it looks like a name, not free text.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


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
        request = parse_infer_request(
            _read(read_body), headers.get("inference-header-content-length")
        )
        serving = service()
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


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


class ServedModel:
    """One manifest seen as V2 tensors: its inputs (model tensors or raw fields) and
    outputs (`probabilities` and `label`, multilabel's `labels`, or `values`)."""

    def __init__(self, manifest: BundleManifest) -> None:
        self.manifest = manifest
        self.tensor_inputs = {
            i.name: TensorSpec(i.name, DATATYPE_OF[i.dtype], (-1, len(i.features)))
            for i in manifest.model_inputs()
        }
        spec = manifest.preprocessing
        self.raw_inputs = (
            {f.name: TensorSpec(f.name, "FP64", (-1,)) for f in spec.numeric}
            | {f.name: TensorSpec(f.name, BYTES, (-1,)) for f in spec.categorical}
            if spec
            else {}
        )
        width = len(manifest.outputs if manifest.task == "regression" else manifest.labels)
        by_task: dict[str, list[tuple[str, str, tuple[int, ...]]]] = {
            "classification": [("probabilities", "FP32", (-1, width)), ("label", BYTES, (-1,))],
            "binary": [("probabilities", "FP32", (-1, 2)), ("label", BYTES, (-1,))],
            "multilabel": [("probabilities", "FP32", (-1, width)), ("labels", "BOOL", (-1, width))],
            "regression": [("values", "FP32", (-1, width))],
        }
        self.outputs = {
            name: TensorSpec(name, dtype, shape) for name, dtype, shape in by_task[manifest.task]
        }

    def metadata(self, platform: str) -> dict[str, Any]:
        inputs = list(self.tensor_inputs.values()) + [
            spec for name, spec in self.raw_inputs.items() if name not in self.tensor_inputs
        ]
        manifest = self.manifest
        names = manifest.outputs if manifest.task == "regression" else manifest.labels
        parameters: dict[str, Any] = {
            "task": manifest.task,
            "columns": list(names),
            "tensor_inputs": list(self.tensor_inputs),
            "raw_inputs": list(self.raw_inputs),
        }
        if manifest.task in ("binary", "multilabel"):
            parameters["threshold"] = 0.5 if manifest.threshold is None else manifest.threshold
        return {
            "name": manifest.name,
            "versions": [manifest.version],
            "platform": platform,
            "inputs": [spec.to_json() for spec in inputs],
            "outputs": [spec.to_json() for spec in self.outputs.values()],
            "parameters": parameters,
        }

    def requested_outputs(self, request: InferRequest) -> dict[str, bool | None]:
        if not request.outputs:
            return dict.fromkeys(self.outputs)
        unknown = [name for name in request.outputs if name not in self.outputs]
        if unknown:
            raise InvalidRequest(
                f"{_names(unknown)} is not an output of this model; "
                f"its outputs are {', '.join(self.outputs)}.",
                code="unknown_output",
            )
        return request.outputs

    def is_raw(self, inputs: list[Tensor]) -> bool:
        """Whether `inputs` are the raw fields (else they must be the model's tensors)."""
        names = [tensor.name for tensor in inputs]
        if len(set(names)) != len(names):
            raise InvalidRequest("An input is given more than once.", code="invalid_inputs")
        if set(names) == set(self.tensor_inputs):
            return False
        if self.raw_inputs and set(names) == set(self.raw_inputs):
            return True
        expected = self.raw_inputs or self.tensor_inputs
        kind = "the raw fields" if self.raw_inputs else "the model's tensors"
        missing = [name for name in expected if name not in names]
        unknown = [name for name in names if name not in expected]
        parts = [f"missing {_names(missing)}" if missing else "",
                 f"unknown {_names(unknown)}" if unknown else ""]  # fmt: skip
        raise InvalidRequest(
            f"Send either the model's tensors ({', '.join(self.tensor_inputs)}) or "
            f"{'every raw field' if self.raw_inputs else 'nothing else'}; against {kind}: "
            + ", ".join(part for part in parts if part)
            + ". GET /v2/models/{name} lists the inputs.",
            code="invalid_inputs",
        )

    def rows(self, inputs: list[Tensor], max_records: int) -> int:
        """The one row count of all inputs, checked against each input's shape and datatype."""
        counts = {tensor.shape[0] for tensor in inputs}
        if len(counts) != 1:
            raise InvalidRequest(
                "Every input must have the same number of rows (its first dimension).",
                code="invalid_tensor",
            )
        rows = counts.pop()
        if rows == 0:
            raise InvalidRequest("There are no rows to predict.", code="empty_instances")
        if rows > max_records:
            raise PayloadTooLarge(f"{rows} rows exceed the maximum of {max_records} per request.")
        for tensor in inputs:
            self._check(tensor)
        return rows

    def _check(self, tensor: Tensor) -> None:
        spec = self.tensor_inputs.get(tensor.name)
        if spec is not None and tensor.name not in self.raw_inputs:
            if tensor.datatype != spec.datatype or tensor.shape[1:] != spec.shape[1:]:
                raise InvalidRequest(
                    f"Input {tensor.name!r} must be {spec.datatype} of shape [n, {spec.shape[1]}].",
                    code="invalid_tensor",
                )
            return
        raw = self.raw_inputs.get(tensor.name) or spec
        assert raw is not None
        allowed = {BYTES} if raw.datatype == BYTES else _NUMERIC
        if tensor.datatype not in allowed or tensor.shape[1:] not in ((), (1,)):
            kind = (
                "BYTES" if raw.datatype == BYTES else "a numeric datatype (FP64, FP32, INT64, ...)"
            )
            raise InvalidRequest(
                f"Raw field {tensor.name!r} must be {kind} of shape [n] or [n, 1].",
                code="invalid_tensor",
            )

    def tensors(self, inputs: list[Tensor]) -> dict[str, np.ndarray]:
        return {t.name: t.array(DTYPES[self.tensor_inputs[t.name].datatype]) for t in inputs}

    def columns(self, inputs: list[Tensor]) -> dict[str, Any]:
        return {tensor.name: tensor.flat() for tensor in inputs}

    def output_tensors(self, scores: Scores, rows: int) -> list[OutputTensor]:
        outputs, decisions = scores.outputs, scores.decisions
        labels = self.manifest.labels
        task = self.manifest.task
        if task == "regression":
            return [OutputTensor("values", "FP32", outputs.shape, outputs)]
        if task == "binary":
            positive = outputs[:, :1].astype(np.float32)
            outputs = np.hstack([1 - positive, positive])
        probabilities = OutputTensor("probabilities", "FP32", outputs.shape, outputs)
        assert decisions is not None
        if task == "multilabel":
            return [probabilities, OutputTensor("labels", "BOOL", decisions.shape, decisions)]
        winners = [labels[int(i)] for i in decisions.tolist()]
        return [probabilities, OutputTensor("label", BYTES, (rows,), winners)]


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


def _names(names: list[str]) -> str:
    shown = [repr(name) if _NAME.fullmatch(name) else "an unnamed input" for name in names]
    return ", ".join(shown)


def _json(status: int, body: dict[str, Any]) -> HttpAnswer:
    return HttpAnswer(status, orjson.dumps(body).decode(), dict(_JSON))
