"""Open Inference Protocol (V2) tensors: the request's JSON and binary framing to
tensors, and output tensors back to a JSON or binary body.

Binary tensor data extension: a JSON header of `Inference-Header-Content-Length`
bytes, then each tensor's raw little-endian bytes in the header's order (tensors
whose `parameters.binary_data_size` is set). A BYTES element is a 4-byte
little-endian length, then the bytes. Errors name the tensor, never a value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import orjson

from chalicelib.errors import InvalidRequest

#: Fixed-size datatypes and their little-endian numpy dtypes; BYTES is variable-size.
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
        "INT8": "i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
        "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
    }.items()
}  # fmt: skip
BYTES = "BYTES"
#: numpy dtype name -> datatype, for the model's own inputs and outputs.
DATATYPE_OF = {"float32": "FP32", "float64": "FP64", "int32": "INT32", "int64": "INT64"}
_LENGTH = struct.Struct("<I")
MAX_DIMENSIONS = 8


@dataclass(frozen=True)
class Tensor:
    """One input tensor: `data` is an array of `shape` (binary data) or the JSON data
    as sent (a flat or nested list, element count already checked)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[Any]

    def array(self, dtype: np.dtype) -> np.ndarray:
        """The data as an array of `shape` in `dtype`; JSON data must be numbers."""
        if isinstance(self.data, np.ndarray):
            return self.data.astype(dtype, copy=False)
        try:
            array = np.array(self.data)
        except ValueError:  # ragged nesting
            array = np.array([], dtype=object)
        allowed = "iuf" if dtype.kind == "f" else "iu"
        if array.dtype.kind not in allowed or array.size != math.prod(self.shape):
            raise InvalidRequest(
                f"Input {self.name!r}: data must be {self.datatype} numbers, "
                f"{math.prod(self.shape)} of them.",
                code="invalid_tensor",
            )
        with np.errstate(over="ignore", invalid="ignore"):
            converted = array.astype(dtype).reshape(self.shape)
        if dtype.kind in "iu" and not np.array_equal(converted, array.reshape(self.shape)):
            raise InvalidRequest(
                f"Input {self.name!r}: a value is out of range for {self.datatype}.",
                code="invalid_tensor",
            )
        return converted

    def flat(self) -> list[Any] | np.ndarray:
        """The elements in row-major order (a list for JSON data, so record rules apply)."""
        if isinstance(self.data, np.ndarray):
            return self.data.reshape(-1)
        return _flatten(self.data)


@dataclass(frozen=True)
class InferRequest:
    """A parsed inference request: inputs, requested outputs and their binary choice."""

    id: str | None
    inputs: list[Tensor]
    #: Requested output names -> binary or not (None: the request's default).
    outputs: dict[str, bool | None]
    binary_output: bool
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[str]


def parse_infer_request(body: bytes | None, header_length: str | None) -> InferRequest:
    """The request's JSON header and binary tensors; InvalidRequest names what is wrong."""
    if not body:
        raise InvalidRequest("The request body is empty.", code="empty_body")
    length = _header_length(header_length, len(body))
    header = _json_object(body[:length] if length is not None else body)
    binary = memoryview(body)[length:] if length is not None else memoryview(b"")
    parameters = _parameters(header.get("parameters"), "the request")
    request_id = header.get("id")
    if request_id is not None and type(request_id) is not str:
        raise InvalidRequest('"id" must be a string.', code="invalid_request")
    inputs_json = header.get("inputs")
    if type(inputs_json) is not list or not inputs_json:
        raise InvalidRequest('"inputs" must be a non-empty array of tensors.', code="invalid_shape")
    inputs, offset = [], 0
    for position, entry in enumerate(inputs_json):
        tensor, offset = _input(entry, position, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise InvalidRequest(
            "The binary data is longer than the inputs' binary_data_size add up to.",
            code="invalid_binary_data",
        )
    return InferRequest(
        request_id,
        inputs,
        _outputs(header.get("outputs")),
        _flag(parameters, "binary_data_output", "the request"),
        parameters,
    )


def encode_response(
    header: dict[str, Any], outputs: list[OutputTensor], binary: Mapping[str, bool]
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the JSON header's length."""
    described, chunks = [], []
    for tensor in outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if binary.get(tensor.name):
            raw = _raw_bytes(tensor)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            data = tensor.data
            entry["data"] = data.reshape(-1) if isinstance(data, np.ndarray) else data
        described.append(entry)
    text = orjson.dumps(header | {"outputs": described}, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)


def _raw_bytes(tensor: OutputTensor) -> bytes:
    if tensor.datatype == BYTES:
        encoded = [text.encode() for text in tensor.data]
        return b"".join(chain.from_iterable((_LENGTH.pack(len(b)), b) for b in encoded))
    assert isinstance(tensor.data, np.ndarray)
    return np.ascontiguousarray(tensor.data, dtype=DTYPES[tensor.datatype]).tobytes()


def _header_length(value: str | None, body_length: int) -> int | None:
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        length = -1
    if not 0 < length <= body_length:
        raise InvalidRequest(
            "Inference-Header-Content-Length must be a whole number of bytes within the body.",
            code="invalid_binary_data",
        )
    return length


def _json_object(text: bytes | memoryview) -> dict[str, Any]:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "The inference request is not valid JSON (UTF-8).", code="invalid_json"
        ) from exc
    if type(document) is not dict:
        raise InvalidRequest("The inference request must be a JSON object.", code="invalid_shape")
    return document


def _input(entry: Any, position: int, binary: memoryview, offset: int) -> tuple[Tensor, int]:
    where = f"inputs[{position}]"
    if type(entry) is not dict:
        raise InvalidRequest(f"{where} must be an object.", code="invalid_shape")
    name, datatype, shape = entry.get("name"), entry.get("datatype"), entry.get("shape")
    if type(name) is not str or not name:
        raise InvalidRequest(f"{where} needs a name.", code="invalid_shape")
    if datatype != BYTES and datatype not in DTYPES:
        raise InvalidRequest(
            f"{where}: datatype must be one of {', '.join([*DTYPES, BYTES])}.",
            code="invalid_tensor",
        )
    if (
        type(shape) is not list
        or not 0 < len(shape) <= MAX_DIMENSIONS
        or not all(type(d) is int and 0 <= d < 2**31 for d in shape)
    ):
        raise InvalidRequest(
            f"{where}: shape must be an array of 1 to {MAX_DIMENSIONS} non-negative integers.",
            code="invalid_tensor",
        )
    parameters = _parameters(entry.get("parameters"), where)
    count = math.prod(shape)
    size = parameters.get("binary_data_size")
    if size is None:
        data = entry.get("data")
        if type(data) is not list or _count(data, len(shape)) != count:
            raise InvalidRequest(
                f"{where}: data must be an array of {count} element(s) (its shape), "
                "or the tensor needs parameters.binary_data_size.",
                code="invalid_tensor",
            )
        return Tensor(name, datatype, tuple(shape), data), offset
    if type(size) is not int or size < 0 or offset + size > len(binary):
        raise InvalidRequest(
            f"{where}: binary_data_size must be a byte count within the binary data.",
            code="invalid_binary_data",
        )
    chunk = binary[offset : offset + size]
    if datatype == BYTES:
        decoded: np.ndarray | list[Any] = _bytes_elements(chunk, count, where)
    else:
        dtype = DTYPES[datatype]
        if size != count * dtype.itemsize:
            raise InvalidRequest(
                f"{where}: binary_data_size must be {count} x {dtype.itemsize} bytes (its shape).",
                code="invalid_binary_data",
            )
        decoded = np.frombuffer(chunk, dtype=dtype).reshape(shape)
    return Tensor(name, datatype, tuple(shape), decoded), offset + size


def _bytes_elements(chunk: memoryview, count: int, where: str) -> list[str]:
    elements, offset = [], 0
    try:
        while offset < len(chunk):
            (length,) = _LENGTH.unpack_from(chunk, offset)
            start, offset = offset + 4, offset + 4 + length
            if offset > len(chunk):
                raise struct.error
            elements.append(str(chunk[start:offset], "utf-8"))
    except struct.error as exc:
        raise InvalidRequest(
            f"{where}: a BYTES element's length runs past its data.", code="invalid_binary_data"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"{where}: BYTES element {len(elements)} is not UTF-8 text.",
            code="invalid_binary_data",
        ) from exc
    if len(elements) != count:
        raise InvalidRequest(
            f"{where}: the binary data holds {len(elements)} BYTES element(s), its shape {count}.",
            code="invalid_binary_data",
        )
    return elements


def _outputs(value: Any) -> dict[str, bool | None]:
    if value is None:
        return {}
    if type(value) is not list:
        raise InvalidRequest('"outputs" must be an array.', code="invalid_shape")
    wanted: dict[str, bool | None] = {}
    for position, entry in enumerate(value):
        where = f"outputs[{position}]"
        if type(entry) is not dict or type(entry.get("name")) is not str:
            raise InvalidRequest(f"{where} must be an object with a name.", code="invalid_shape")
        parameters = _parameters(entry.get("parameters"), where)
        wanted[entry["name"]] = (
            _flag(parameters, "binary_data", where) if "binary_data" in parameters else None
        )
    return wanted


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise InvalidRequest(f"The parameters of {where} must be an object.", code="invalid_shape")
    return value


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool:
    value = parameters.get(name, False)
    if type(value) is not bool:
        raise InvalidRequest(f"{name} of {where} must be true or false.", code="invalid_shape")
    return value


def _count(data: list[Any], depth: int) -> int:
    """Elements of flat or nested JSON data (nested arrays count their leaves), or -1
    when nested deeper than `depth` arrays."""
    if depth < 1:
        return -1
    if data and type(data[0]) is list:
        if depth == 2 and all(type(item) is list for item in data):  # a matrix's rows
            return sum(map(len, data))  # a leaf that is an array fails its own check
        counts = [_count(item, depth - 1) if type(item) is list else 1 for item in data]
        return -1 if -1 in counts else sum(counts)
    return len(data)


def _flatten(data: list[Any]) -> list[Any]:
    if data and type(data[0]) is list:
        return [x for item in data for x in (_flatten(item) if type(item) is list else [item])]
    return data
