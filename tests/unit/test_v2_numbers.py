"""V2 JSON numbers are checked by numpy when it alone can show them valid (one
array, one scan of the text for booleans), else element by element: either way the
same tensors are accepted, with the same values, and the same leniencies refused,
at any size. Tensors here are big (the element-by-element way would be slow), with
the fault at the end, and a `true` elsewhere in the body where it matters."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest

from chalicelib.errors import InvalidRequest
from chalicelib.surfaces.v2_tensors import OutputTensor, encode_response, parse_infer_request

ROWS, WIDTH = 500, 8
MATRIX = np.random.default_rng(7).normal(size=(ROWS, WIDTH)).round(4)


def parse(data: Any, shape: list[int], datatype: str = "FP32", **request: Any) -> Any:
    entry = {"name": "input", "datatype": datatype, "shape": shape, "data": data}
    body = orjson.dumps({"inputs": [entry]} | request)
    return parse_infer_request(body, None, 1000).inputs[0]


def spaced(data: Any, shape: list[int], datatype: str = "FP32", compact: bool = False) -> bytes:
    """A body as Python's json module writes it: a space after each separator, unless
    `compact`."""
    entry = {"name": "input", "datatype": datatype, "shape": shape, "data": data}
    return json.dumps({"inputs": [entry]}, separators=(",", ":") if compact else None).encode()


def refusal(body: bytes) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse_infer_request(body, None, 1000)
    return caught.value.message


def nested_with_last(value: Any) -> list[Any]:
    rows = MATRIX.tolist()
    rows[-1][-1] = value
    return rows


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
@pytest.mark.parametrize("nested", [True, False])
def test_numbers_give_the_same_array_either_way(datatype: str, nested: bool) -> None:
    data = MATRIX.tolist() if nested else MATRIX.reshape(-1).tolist()
    fast = parse(data, [ROWS, WIDTH], datatype)
    # text that reads as a boolean element sends them the element-by-element way
    slow = parse(data, [ROWS, WIDTH], datatype, parameters={"note": "[true"})
    assert isinstance(fast.data, np.ndarray) and isinstance(slow.data, list)
    for dtype in (np.float32, np.float64):
        assert np.array_equal(fast.array(np.dtype(dtype)), slow.array(np.dtype(dtype)))
    flat = fast.flat()
    assert (flat.tolist() if isinstance(flat, np.ndarray) else flat) == slow.flat()


def test_integers_in_range_are_arrays_of_their_datatype() -> None:
    data = np.arange(ROWS * 2).reshape(ROWS, 2) % 200
    tensor = parse(data.tolist(), [ROWS, 2], "UINT8")
    assert isinstance(tensor.data, np.ndarray) and tensor.data.dtype == np.uint8
    assert np.array_equal(tensor.data, data)
    assert tensor.flat() == data.reshape(-1).tolist()


@pytest.mark.parametrize(
    ("data", "shape", "datatype", "says"),
    [
        (nested_with_last(True), [ROWS, WIDTH], "FP32", "FP32 data must be numbers"),
        (nested_with_last(False), [ROWS, WIDTH], "FP64", f"element {ROWS * WIDTH - 1} is not"),
        (nested_with_last(None), [ROWS, WIDTH], "FP32", f"element {ROWS * WIDTH - 1} is not"),
        (nested_with_last("1.5"), [ROWS, WIDTH], "FP32", "FP32 data must be numbers"),
        (nested_with_last([1.0]), [ROWS, WIDTH], "FP32", "nested exactly as its shape"),
        (nested_with_last({}), [ROWS, WIDTH], "FP32", "FP32 data must be numbers"),
        ([*MATRIX.tolist()[:-1], [0.5] * (WIDTH - 1)], [ROWS, WIDTH], "FP32", "nested exactly"),
        ([[[x] for x in row] for row in MATRIX.tolist()], [ROWS, WIDTH], "FP32", "nested exactly"),
        (MATRIX.tolist(), [ROWS * WIDTH], "FP32", "nested exactly as its shape"),
        (MATRIX.reshape(-1).tolist()[:-1], [ROWS, WIDTH], "FP32", "nested exactly"),
        ([1] * (ROWS - 1) + [1000], [ROWS], "INT8", f"from -128 to 127; element {ROWS - 1}"),
        ([1] * (ROWS - 1) + [-5], [ROWS], "UINT8", f"from 0 to 255; element {ROWS - 1}"),
        ([1] * (ROWS - 1) + [2.5], [ROWS], "INT32", f"element {ROWS - 1} is not"),
        ([1] * (ROWS - 1) + [2**63], [ROWS], "INT64", f"element {ROWS - 1} is not"),
        ([1] * (ROWS - 1) + [2**70], [ROWS], "UINT64", f"element {ROWS - 1} is not"),
        ([1] * (ROWS - 1) + [True], [ROWS], "INT64", f"element {ROWS - 1} is not"),
    ],
)  # fmt: skip
def test_each_leniency_is_refused_at_any_size(
    data: list[Any], shape: list[int], datatype: str, says: str
) -> None:
    for body in (spaced(data, shape, datatype, compact=True), spaced(data, shape, datatype)):
        message = refusal(body)
        assert message.startswith("Input 'input': ") and says in message
        assert "1000" not in message.split(";")[-1] and "True" not in message


@pytest.mark.parametrize(
    "text",
    [b"[true]", b"[1,\n  false]", b"[1, \t\r\ntrue]", b"[" + b" " * 40 + b"true]"],
)
def test_a_boolean_element_is_found_after_any_json_whitespace(text: bytes) -> None:
    body = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[%d],"data":%s}]}' % (
        len(orjson.loads(text)), text)  # fmt: skip
    assert "must be numbers" in refusal(body)


def test_booleans_elsewhere_leave_numbers_checked() -> None:
    body = spaced(MATRIX.tolist(), [ROWS, WIDTH]).replace(
        b'"inputs"', b'"parameters": {"binary_data_output": true, "t": "[true, false]"}, "inputs"'
    )
    tensor = parse_infer_request(body, None, 1000).inputs[0]
    assert np.array_equal(tensor.array(np.dtype(np.float32)), MATRIX.astype(np.float32))


def test_labels_are_framed_as_tritonclient_reads_them() -> None:
    labels = ["A", "B", "A", "é", ""] * 200
    body, length = encode_response({"model_name": "m"}, [OutputTensor("label", "BYTES",
                                   (len(labels),), labels)], {"label": True})  # fmt: skip
    assert length is not None
    raw, at, decoded = body[length:], 0, []
    while at < len(raw):
        size = int.from_bytes(raw[at : at + 4], "little")
        decoded.append(raw[at + 4 : at + 4 + size].decode())
        at += 4 + size
    assert decoded == labels


@pytest.mark.parametrize("datatype", [["FP32"], {"a": 1}, 32])
def test_a_datatype_that_is_not_a_string_is_400(datatype: Any) -> None:
    body = orjson.dumps({"inputs": [{"name": "input", "datatype": datatype, "shape": [1],
                                     "data": [1.0]}]})  # fmt: skip
    assert "datatype must be one of" in refusal(body)


@pytest.mark.parametrize(
    ("text", "booleans", "non_numbers"),
    [
        (b'{"inputs":[{"name":"a","datatype":"FP32","shape":[2],"data":[1,2.5]}]}', False, False),
        (b'{"inputs": [{"name": "a", "data": [1, 2]}], "parameters": {"b": true}}', False, False),
        (b'{"data":[1, true]}', True, True),
        (b'{"data":[1,\n false]}', True, True),
        (b'{"data":[1,null]}', False, True),
        (b'{"data":[1, "x"]}', False, True),
        (b'{"data":["x"]}', False, True),
        (b'{"data":[1],"k":"a\\"b"}', False, True),  # an escape: assumed an element
        (b'{"note":"[true"}', True, True),  # string text that reads so: yes, harmlessly
    ],
)
def test_the_scan_finds_what_arrays_may_hold(
    text: bytes, booleans: bool, non_numbers: bool
) -> None:
    from chalicelib.surfaces.v2_tensors import _ArrayScan

    scan = _ArrayScan(text)
    assert (scan.booleans(), scan.non_numbers()) == (booleans, non_numbers)


def test_too_many_places_to_look_at_mean_yes() -> None:
    from chalicelib.surfaces.v2_tensors import _ArrayScan

    text = orjson.dumps({"inputs": [{"name": "input", "datatype": "BYTES", "shape": [400],
                                     "data": ["u"] * 400}]})  # fmt: skip
    assert _ArrayScan(text).booleans()
