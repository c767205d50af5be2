"""The V2 surface is strict where the Open Inference Protocol is: booleans are not
numbers, integer datatypes are range-checked, data matches the declared shape
exactly (flat, or nested as the shape; never re-split), optional members are never
null and parameter values are scalars. Each refusal is the protocol's error shape,
names the input, never a value. Unknown names are listed up to a cap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from chalicelib.surfaces.v2_model import MAX_NAMES_SHOWN
from tests.unit.test_v2 import MATRIX, error_of, infer, make_service

ROWS = MATRIX.tolist()


def body(*inputs: dict[str, Any], **request: Any) -> bytes:
    return orjson.dumps({"inputs": list(inputs)} | request)


def tensor(data: Any, shape: list[int], datatype: str = "FP32", name: str = "input",
           **entry: Any) -> dict[str, Any]:  # fmt: skip
    return {"name": name, "datatype": datatype, "shape": shape, "data": data} | entry


@pytest.mark.parametrize(
    ("request_body", "says"),
    [
        (body(tensor([[True, 1.0, 2.0, 3.0], ROWS[1]], [2, 4])),
         "Input 'input': FP32 data must be numbers (not booleans"),
        (body(tensor([1.5, 1000], [2], "INT8", "age")),
         "Input 'age': INT8 data must be whole numbers from -128 to 127"),
        (body(tensor([-5], [1], "UINT8", "age")),
         "Input 'age': UINT8 data must be whole numbers from 0 to 255"),
        (body(tensor([2**63], [1], "INT64", "age")), "INT64 data must be whole numbers"),
        (body(tensor([1, 2], [2], "BOOL", "flag")), "Input 'flag': BOOL data must be true or"),
        (body(tensor([1, "a"], [2], "BYTES", "grade")), "Input 'grade': BYTES data must be"),
        (body(tensor([[1, 2], []], [2, 1], "FP64", "age")),
         "Input 'age': data must be an array of 2 element(s), flat or nested exactly"),
        (body(tensor([[[0.5], [1.0], [2.0], [3.0]]] * 2, [2, 4])), "nested exactly as its shape"),
        (body(tensor([[0.5, 1.0], 2.0, 3.0], [2, 2])), "nested exactly as its shape"),
        (body(tensor(ROWS, [2, 4]), id=None), '"id" of the request must not be null'),
        (body(tensor(ROWS, [2, 4]), parameters=None), '"parameters" of the request must not'),
        (body(tensor(ROWS, [2, 4]), outputs=None), '"outputs" of the request must not be null'),
        (body(tensor(ROWS, [2, 4], parameters=None)), "\"parameters\" of Input 'input' must"),
        (body(tensor(ROWS, [2, 4]), outputs=[{"name": "label", "parameters": None}]),
         '"parameters" of outputs[0] must not be null'),
        (body(tensor(ROWS, [2, 4]), parameters={"deep": {"a": [1]}}),
         "The parameters of the request must be strings, numbers or booleans"),
        (body(tensor(ROWS, [2, 4]), parameters={"list": [1, 2]}), "must be strings, numbers"),
        (body(tensor(ROWS, [2, 4]), parameters={"none": None}), "must be strings, numbers"),
        (body(tensor(ROWS, [2, 4], parameters={"x": {}})),
         "The parameters of Input 'input' must be strings"),
    ],
)  # fmt: skip
def test_each_leniency_is_refused_naming_the_input(
    tmp_path: Path, request_body: bytes, says: str
) -> None:
    answer = infer(make_service(tmp_path), request_body, {})
    assert answer.status == 400
    message = error_of(answer)  # the protocol's shape: {"error": text} only
    assert says in message
    for value in ("1000", "1.5", "-5", "True"):
        assert value not in message


def test_a_parameter_nested_150_deep_is_refused(tmp_path: Path) -> None:
    deep: Any = 1
    for _ in range(150):
        deep = {"a": deep}
    answer = infer(make_service(tmp_path), body(tensor(ROWS, [2, 4]), parameters={"x": deep}), {})
    assert answer.status == 400 and "must be strings, numbers or booleans" in error_of(answer)


@pytest.mark.parametrize(
    "data",
    [ROWS, [x for row in ROWS for x in row], [[int(x) if x.is_integer() else x for x in r]
                                              for r in ROWS]],
)  # fmt: skip
def test_flat_and_exactly_nested_data_are_accepted(tmp_path: Path, data: Any) -> None:
    answer = infer(make_service(tmp_path), body(tensor(data, [2, 4]), id="r1",
                                                parameters={"a": "b", "n": 1.5}), {})  # fmt: skip
    assert answer.status == 200, answer.body
    assert orjson.loads(answer.body)["id"] == "r1"


def test_whole_floats_are_accepted_for_integer_datatypes(tmp_path: Path) -> None:
    from chalicelib.surfaces.v2_tensors import parse_infer_request

    request = parse_infer_request(body(tensor([3.0, 255], [2], "UINT8", "age")), None, 10)
    assert request.inputs[0].flat() == [3.0, 255]


def test_unknown_input_names_are_listed_up_to_a_cap(tmp_path: Path) -> None:
    unknown = [tensor([1.0], [1], name=f"u{i}") for i in range(MAX_NAMES_SHOWN + 400)]
    answer = infer(make_service(tmp_path), body(*unknown), {})
    assert answer.status == 400
    message = error_of(answer)
    assert "'u99'" in message and "'u100'" not in message and "and 400 more" in message
    assert len(answer.body) < 3_000


def test_a_refusal_points_at_the_first_element_at_fault_by_position(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    answer = infer(service, body(tensor([1, 2, 1000, 7.5], [4], "INT8", "age")), {})
    assert "INT8 data must be whole numbers from -128 to 127; element 2 is not." in error_of(answer)
    answer = infer(service, body(tensor([1.0, 2.0, "x"], [3], "FP64", "age")), {})
    assert "element 2 is not" in error_of(answer) and "x" not in error_of(answer).split(":")[-1]
