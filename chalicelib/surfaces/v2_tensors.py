"""Open Inference Protocol (V2) tensors: the request's JSON and binary framing to
tensors, and output tensors back to a JSON or binary body.

Binary tensor data extension: a JSON header of `Inference-Header-Content-Length`
bytes, then each tensor's raw little-endian bytes in the header's order (tensors
whose `parameters.binary_data_size` is set). A BYTES element is a 4-byte
little-endian length, then the bytes. Errors name the tensor, never a value.

Strict where the protocol is: JSON data is flat or nested exactly as the shape (never
re-split), booleans are not numbers, integer datatypes hold whole numbers in their
range, BYTES holds strings; `id`, `parameters` and `outputs` are absent or of their
type (never null), and parameter values are strings, numbers or booleans. The JSON
header is parsed with the surface's budget (`infer_budget`).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import orjson

from chalicelib.errors import InvalidRequest
from chalicelib.surfaces.json_body import parse_json
from chalicelib.surfaces.json_structure import MAX_VALUES_PER_RECORD, JsonBudget

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
#: Inclusive ranges of the integer datatypes (JSON data is checked against them).
INTEGER_RANGES = {
    name: (int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    for name, dtype in DTYPES.items()
    if dtype.kind in "iu"
}
_NUMBERS: frozenset[type] = frozenset({int, float})
_ALLOWED_TYPES: dict[str, frozenset[type]] = {BYTES: frozenset({str}), "BOOL": frozenset({bool})}
_SCALARS = frozenset({str, int, float, bool})
#: Datatypes whose JSON data numpy can check (the others are checked element by element).
_NUMERIC_DTYPES = frozenset(name for name, dtype in DTYPES.items() if dtype.kind in "iuf")
_JSON_SPACE = b" \t\n\r"
#: The JSON booleans and the position of each one's rarest letter in keys and labels.
_BOOLEANS = ((b"true", 2), (b"false", 0))
_MAX_CANDIDATES = 256
# Echo a client's tensor name only when it looks like a name, not free text.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


def infer_budget(max_records: int) -> JsonBudget:
    """What a valid inference request's JSON can hold: `max_records` rows of up to
    `MAX_VALUES_PER_RECORD` values (tensors or raw-field columns, flat or nested), a
    few keys per tensor, a string per BYTES element."""
    return JsonBudget(
        "an inference request",
        values=max_records * MAX_VALUES_PER_RECORD + 16_384,
        containers=200 * max_records + 4_096,
        keys=16 * MAX_VALUES_PER_RECORD + 4_096,
        strings=256 * max_records + 32_768,
    )


def tensor_label(name: Any, position: int) -> str:
    """How a message names an input: its name when it looks like one, else its position."""
    if type(name) is str and _NAME.fullmatch(name):
        return f"Input {name!r}"
    return f"inputs[{position}]"


@dataclass(frozen=True)
class Tensor:
    """One input tensor: `data` is an array of `shape` in the datatype's dtype (binary
    data, or JSON numbers checked by numpy) or the JSON data as a flat list in
    row-major order (shape and datatype already checked). `given` is the JSON data as
    sent (flat, or nested as the shape) when `data` is its array."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[Any]
    given: list[Any] | None = field(default=None, repr=False)

    def array(self, dtype: np.dtype) -> np.ndarray:
        """The data as an array of `shape` in `dtype` (JSON data was checked against the
        tensor's datatype when parsed; the model's datatype is the tensor's)."""
        if isinstance(self.data, np.ndarray):
            return self.data.astype(dtype, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):  # FP32 overflow: inf, refused later
            own = np.array(self.data, dtype=DTYPES[self.datatype])
        return own.reshape(self.shape).astype(dtype, copy=False)

    def flat(self) -> list[Any] | np.ndarray:
        """The elements in row-major order: an array for binary data and JSON FP64 data
        (the float64 values the record rules read), else a list for JSON data, so
        record rules apply."""
        if self.given is not None and self.datatype != "FP64":
            level = self.given  # nested exactly as the shape, or flat: each level alike
            while level and type(level[0]) is list:
                level = list(chain.from_iterable(level))
            return level
        if isinstance(self.data, np.ndarray):
            return self.data.reshape(-1)
        return self.data


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


def parse_infer_request(
    body: bytes | None, header_length: str | None, max_records: int
) -> InferRequest:
    """The request's JSON header and binary tensors; InvalidRequest names what is wrong.
    `max_records` sizes the JSON header's budget (`infer_budget`)."""
    if not body:
        raise InvalidRequest("The request body is empty.", code="empty_body")
    length = _header_length(header_length, len(body))
    text = body[:length] if length is not None else body
    header = _json_object(text, max_records)
    binary = memoryview(body)[length:] if length is not None else memoryview(b"")
    _no_nulls(header, ("id", "parameters", "outputs"), "the request")
    parameters = _parameters(header.get("parameters"), "the request")
    request_id = header.get("id")
    if request_id is not None and type(request_id) is not str:
        raise InvalidRequest('"id" must be a string.', code="invalid_request")
    inputs_json = header.get("inputs")
    if type(inputs_json) is not list or not inputs_json:
        raise InvalidRequest('"inputs" must be a non-empty array of tensors.', code="invalid_shape")
    inputs, offset = [], 0
    scan = _ArrayScan(text)
    for position, entry in enumerate(inputs_json):
        tensor, offset = _input(entry, position, binary, offset, scan)
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
        # Labels repeat: each distinct string is framed once, then the frames joined.
        frames = {text: _LENGTH.pack(len(raw)) + raw
                  for text in set(tensor.data) for raw in (text.encode(),)}  # fmt: skip
        return b"".join(map(frames.__getitem__, tensor.data))
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


def _json_object(text: bytes, max_records: int) -> dict[str, Any]:
    document = parse_json(text, infer_budget(max_records))
    if type(document) is not dict:
        raise InvalidRequest("The inference request must be a JSON object.", code="invalid_shape")
    return document


def _input(
    entry: Any, position: int, binary: memoryview, offset: int, scan: _ArrayScan
) -> tuple[Tensor, int]:
    if type(entry) is not dict:
        raise InvalidRequest(f"inputs[{position}] must be an object.", code="invalid_shape")
    name, datatype, shape = entry.get("name"), entry.get("datatype"), entry.get("shape")
    if type(name) is not str or not name:
        raise InvalidRequest(f"inputs[{position}] needs a name.", code="invalid_shape")
    where = tensor_label(name, position)
    _no_nulls(entry, ("parameters",), where)
    if type(datatype) is not str or (datatype != BYTES and datatype not in DTYPES):
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
        if datatype in _NUMERIC_DTYPES and type(data) is list and not scan.booleans():
            checked = _numeric_array(data, shape, datatype, scan)
            if checked is not None:
                return Tensor(name, datatype, tuple(shape), checked, data), offset
        flat, kinds = _flat_data(data, shape)
        if flat is None:
            raise InvalidRequest(
                f"{where}: data must be an array of {count} element(s), flat or nested "
                "exactly as its shape, or the tensor needs parameters.binary_data_size.",
                code="invalid_tensor",
            )
        _check_elements(flat, kinds, datatype, where)
        return Tensor(name, datatype, tuple(shape), flat), offset
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
        _no_nulls(entry, ("parameters",), where)
        parameters = _parameters(entry.get("parameters"), where)
        wanted[entry["name"]] = (
            _flag(parameters, "binary_data", where) if "binary_data" in parameters else None
        )
    return wanted


def _no_nulls(entry: dict[str, Any], optional: tuple[str, ...], where: str) -> None:
    """Optional members are left out or given; the protocol's schema has no null."""
    for name in optional:
        if name in entry and entry[name] is None:
            raise InvalidRequest(
                f'"{name}" of {where} must not be null (leave it out).', code="invalid_shape"
            )


def _parameters(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is not dict:
        raise InvalidRequest(f"The parameters of {where} must be an object.", code="invalid_shape")
    if not all(type(v) in _SCALARS for v in value.values()):
        raise InvalidRequest(
            f"The parameters of {where} must be strings, numbers or booleans.",
            code="invalid_shape",
        )
    return value


def _flag(parameters: dict[str, Any], name: str, where: str) -> bool:
    value = parameters.get(name, False)
    if type(value) is not bool:
        raise InvalidRequest(f"{name} of {where} must be true or false.", code="invalid_shape")
    return value


class _ArrayScan:
    """What the JSON arrays of a request's text may hold besides numbers and arrays,
    found once each and only when asked. An array element follows `[` or `,` (JSON
    whitespace between), so each kind is looked for at its rarest byte (one memchr
    pass: `u` of `true` and `null`, `f` of `false`, the quote of a string that is not
    a key), at most `_MAX_CANDIDATES` places in all, beyond which the answer is yes. A
    yes (string text that reads so included) only sends numbers a slower way: it
    never lets a boolean, null or string through."""

    def __init__(self, text: bytes) -> None:
        self._text = text
        self._left = _MAX_CANDIDATES
        self._booleans: bool | None = None
        self._others: bool | None = None

    def booleans(self) -> bool:
        """`true` or `false` may be an element: numpy would read them as 1 and 0."""
        if self._booleans is None:
            self._booleans = any(self._elements(literal, anchor) for literal, anchor in _BOOLEANS)
        return self._booleans

    def non_numbers(self) -> bool:
        """A boolean, null or string may be an element (with a dtype given, numpy would
        read null as NaN and "1.5" as 1.5)."""
        if self._others is None:
            self._others = self.booleans() or self._elements(b"null", 1) or self._strings()
        return self._others

    def _elements(self, literal: bytes, anchor: int) -> bool:
        text, letter = self._text, literal[anchor : anchor + 1]
        at = text.find(letter)
        while at >= 0:
            self._left -= 1
            if self._left < 0:
                return True
            start = at - anchor
            if start >= 0 and text.startswith(literal, start) and self._after_separator(start):
                return True
            at = text.find(letter, at + 1)
        return False

    def _strings(self) -> bool:
        text = self._text
        at = text.find(b'"')
        while at >= 0:
            self._left -= 1
            end = text.find(b'"', at + 1)
            if self._left < 0 or end < 0 or b"\\" in text[at:end]:
                return True  # too many to look at, or an escape: assume one
            after = text[end + 1 : end + 33].lstrip(_JSON_SPACE)
            if after[:1] != b":" and self._after_separator(at):  # a key is no element
                return True
            at = text.find(b'"', end + 1)
        return False

    def _after_separator(self, start: int) -> bool:
        before = self._text[max(0, start - 32) : start].rstrip(_JSON_SPACE)
        return not before or before[-1] in b"[,"  # or more space than looked at


def _numeric_array(
    data: list[Any], shape: list[int], datatype: str, scan: _ArrayScan
) -> np.ndarray | None:
    """JSON data of a numeric datatype as an array of `shape` in its dtype, when numpy
    alone shows it valid: numbers only (booleans were ruled out by `scan`: numpy
    would read them as 0 and 1), flat or nested exactly as the shape, and for an
    integer datatype whole numbers in range. Else None: the element-by-element checks
    decide and name the element at fault. Floats are read in their dtype straight
    away when `scan` rules out null and strings too, else their dtype is found first."""
    dtype = DTYPES[datatype]
    direct = dtype.kind == "f" and not scan.non_numbers()
    try:
        if direct and dtype.itemsize < 8:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow: inf, refused later
                given = np.array(data, dtype=dtype)
        else:  # numbers give kind i, u or f when the dtype is found from the elements
            given = np.array(data, dtype=dtype if direct else None)
    except (ValueError, TypeError, OverflowError):  # ragged or mixed nesting, objects, ...
        return None
    if given.dtype.kind not in "iuf":  # strings, null, objects, integers beyond 64 bits
        return None
    if given.shape != tuple(shape):
        if given.ndim != 1 or given.size != math.prod(shape):
            return None
        given = given.reshape(shape)
    if dtype.kind == "f":
        if direct:
            return given
        if dtype.itemsize >= given.dtype.itemsize:  # FP64 (raw fields): nothing overflows
            return given.astype(dtype, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):  # FP32 overflow: inf, refused later
            return given.astype(dtype, copy=False)
    if given.dtype.kind == "f":  # whole or not is decided on the Python numbers
        return None
    low, high = INTEGER_RANGES[datatype]
    if given.size and not (low <= int(given.min()) and int(given.max()) <= high):
        return None
    return given.astype(dtype, copy=False)


def _flat_data(data: Any, shape: list[int]) -> tuple[list[Any] | None, set[type]]:
    """JSON data as a flat row-major list and its elements' types: flat with prod(shape)
    elements, or nested exactly as `shape` (each level's arrays as long as its
    dimension); else None."""
    if type(data) is not list:
        return None, set()
    kinds = set(map(type, data))
    if list not in kinds:
        return (data if len(data) == math.prod(shape) else None), kinds
    level = [data]
    for dimension in shape:
        if kinds != {list} or set(map(len, level)) - {dimension}:
            return None, kinds
        level = list(chain.from_iterable(level))
        kinds = set(map(type, level))
    return (None if list in kinds else level), kinds


def _check_elements(flat: list[Any], kinds: set[type], datatype: str, where: str) -> None:
    """Each element is of the datatype: a string (BYTES), a boolean (BOOL), a number
    that is not a boolean, and for integer datatypes a whole one in range. A refusal
    names the first element at fault by its row-major position, never its value.
    `kinds`: the elements' types."""
    allowed: frozenset[type] = _ALLOWED_TYPES.get(datatype, _NUMBERS)
    if not kinds <= allowed:
        what = {
            BYTES: "BYTES data must be strings",
            "BOOL": "BOOL data must be true or false",
        }.get(datatype, f"{datatype} data must be numbers (not booleans, strings or null)")
        bad = next(i for i, x in enumerate(flat) if type(x) not in allowed)
        raise InvalidRequest(f"{where}: {what}; element {bad} is not.", code="invalid_tensor")
    bounds = INTEGER_RANGES.get(datatype)
    if bounds is None or not flat:
        return
    low, high = bounds
    whole = float not in kinds or all(
        x.is_integer()
        for x in flat
        if type(x) is float  # NaN and inf are not
    )
    if not (whole and low <= min(flat) and max(flat) <= high):
        bad = next(
            i
            for i, x in enumerate(flat)
            if not low <= x <= high or (type(x) is float and not x.is_integer())
        )
        raise InvalidRequest(
            f"{where}: {datatype} data must be whole numbers from {low} to {high}; "
            f"element {bad} is not.",
            code="invalid_tensor",
        )
