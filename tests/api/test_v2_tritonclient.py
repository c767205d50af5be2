"""The Open Inference Protocol (KServe V2) against a real `chalice local`, spoken by
NVIDIA's own client (`tritonclient.http`), with no glue: the same predictions as
POST /predict for the same rows."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from modelops.examples import encode_records, holdout_records
from tests.conftest import PublishedModel

MODEL = "loan-grade"
#: The demo model's one input tensor (its manifest's `inputs`).
INPUT = "features"
ROWS = 20


@pytest.fixture(scope="module")
def client(api_url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(urlparse(api_url).netloc, network_timeout=60.0)


@pytest.fixture(scope="module")
def rows(published: PublishedModel) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    records, _ = holdout_records(published.model_dir, ROWS)
    return records, encode_records(published.model_dir, records)


@pytest.fixture(scope="module")
def expected(
    api_url: str, rows: tuple[list[dict[str, Any]], list[dict[str, float]]]
) -> tuple[np.ndarray, list[str]]:
    """/predict's probabilities (label order) and labels for the same rows."""
    response = httpx.post(f"{api_url}/predict", content=json.dumps({"instances": rows[0]}),
                          headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    labels = list(predictions[0]["probabilities"])
    probabilities = np.array([[p["probabilities"][k] for k in labels] for p in predictions])
    return probabilities, [p["label"] for p in predictions]


def encoded_input(
    encoded: list[dict[str, float]], names: list[str], binary: bool
) -> triton.InferInput:
    matrix = np.array([[record[name] for name in names] for record in encoded], dtype=np.float32)
    tensor = triton.InferInput(INPUT, list(matrix.shape), "FP32")
    tensor.set_data_from_numpy(matrix, binary_data=binary)
    return tensor


def texts(array: np.ndarray) -> list[str]:
    """BYTES elements: bytes from binary data, str from JSON data."""
    return [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]


def check_same_as_predict(result: Any, expected: tuple[np.ndarray, list[str]]) -> None:
    probabilities, labels = expected
    np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, atol=1e-6)
    assert texts(result.as_numpy("label")) == labels


def test_server_and_model_are_live_and_ready(client: triton.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert not client.is_model_ready("another-model")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]


def test_model_metadata_lists_the_tensor_and_the_raw_inputs(
    client: triton.InferenceServerClient, published: PublishedModel
) -> None:
    metadata = client.get_model_metadata(MODEL)
    assert metadata["name"] == MODEL
    assert metadata["versions"] == [published.version]
    inputs = {i["name"]: i for i in metadata["inputs"]}
    assert inputs[INPUT] == {"name": INPUT, "datatype": "FP32", "shape": [-1, 113]}
    assert inputs["annual_inc"] == {"name": "annual_inc", "datatype": "FP64", "shape": [-1]}
    assert metadata["parameters"]["tensor_inputs"] == [INPUT]
    raw = metadata["parameters"]["raw_inputs"]
    assert {inputs[name]["datatype"] for name in raw} == {"FP64", "BYTES"}
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 7]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]
    assert metadata["parameters"]["columns"] == list("ABCDEFG")
    assert client.get_model_metadata(MODEL, published.version)["name"] == MODEL


@pytest.mark.parametrize("binary", [False, True], ids=["json-tensor", "binary-tensor"])
def test_infer_with_the_model_tensor_equals_predict(
    client: triton.InferenceServerClient,
    rows: tuple[list[dict[str, Any]], list[dict[str, float]]],
    expected: tuple[np.ndarray, list[str]],
    binary: bool,
) -> None:
    encoded_names = list(rows[1][0])
    result = client.infer(MODEL, [encoded_input(rows[1], encoded_names, binary)])
    check_same_as_predict(result, expected)


def test_binary_outputs_when_the_client_accepts_them(
    client: triton.InferenceServerClient,
    rows: tuple[list[dict[str, Any]], list[dict[str, float]]],
    expected: tuple[np.ndarray, list[str]],
) -> None:
    outputs = [triton.InferRequestedOutput(name, binary_data=True)
               for name in ("probabilities", "label")]  # fmt: skip
    accept = {"Accept": "application/octet-stream", "Content-Type": "application/octet-stream"}
    result = client.infer(MODEL, [encoded_input(rows[1], list(rows[1][0]), True)],
                          outputs=outputs, headers=accept)  # fmt: skip
    assert result.get_output("probabilities")["parameters"]["binary_data_size"] == ROWS * 7 * 4
    check_same_as_predict(result, expected)


@pytest.mark.parametrize("binary", [False, True], ids=["json-columns", "binary-columns"])
def test_infer_with_raw_columns_equals_predict(
    client: triton.InferenceServerClient,
    rows: tuple[list[dict[str, Any]], list[dict[str, float]]],
    expected: tuple[np.ndarray, list[str]],
    binary: bool,
) -> None:
    records = rows[0]
    inputs = []
    for name in records[0]:
        values = [record[name] for record in records]
        if isinstance(values[0], str):
            column = np.array([v.encode() for v in values], dtype=np.object_)
            tensor = triton.InferInput(name, [len(values)], "BYTES")
        else:
            column = np.array(values, dtype=np.float64)
            tensor = triton.InferInput(name, [len(values)], "FP64")
        tensor.set_data_from_numpy(column, binary_data=binary)
        inputs.append(tensor)
    result = client.infer(MODEL, inputs, model_version="")
    check_same_as_predict(result, expected)


def test_a_subset_of_outputs(
    client: triton.InferenceServerClient,
    rows: tuple[list[dict[str, Any]], list[dict[str, float]]],
    expected: tuple[np.ndarray, list[str]],
) -> None:
    result = client.infer(MODEL, [encoded_input(rows[1], list(rows[1][0]), True)],
                          outputs=[triton.InferRequestedOutput("label")])  # fmt: skip
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
    assert result.as_numpy("probabilities") is None
    assert texts(result.as_numpy("label")) == expected[1]


def test_errors_come_back_as_the_clients_exception_without_values(
    client: triton.InferenceServerClient,
    rows: tuple[list[dict[str, Any]], list[dict[str, float]]],
    published: PublishedModel,
) -> None:
    tensor = triton.InferInput(INPUT, [2, 5], "FP32")
    tensor.set_data_from_numpy(np.full((2, 5), 123.25, dtype=np.float32))
    with pytest.raises(InferenceServerException) as wrong_shape:
        client.infer(MODEL, [tensor])
    assert wrong_shape.value.status() == "400"
    assert "must be FP32 of shape [n, 113]" in wrong_shape.value.message()
    assert "123.25" not in wrong_shape.value.message()

    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("another-model")
    assert unknown.value.status() == "404"
    with pytest.raises(InferenceServerException) as old_version:
        client.infer(MODEL, [encoded_input(rows[1], list(rows[1][0]), True)], model_version="0")
    assert old_version.value.status() == "404"
    assert published.version in old_version.value.message()

    records = rows[0]
    inputs = []
    for name in records[0]:
        values = [record[name] for record in records]
        tensor = triton.InferInput(name, [len(values)], "BYTES" if isinstance(values[0], str)
                                   else "FP64")  # fmt: skip
        data = [str(v) if isinstance(v, str) else v for v in values]
        if name == "annual_inc":
            data[3] = "lots"  # a string where a number belongs
        tensor._data = data  # JSON data as another client might send it
        inputs.append(tensor)
    with pytest.raises(InferenceServerException) as invalid:
        client.infer(MODEL, inputs)
    assert invalid.value.status() == "400"
    assert "Input 'annual_inc': FP64 data must be numbers" in invalid.value.message()
    assert "element 3 is not" in invalid.value.message()
    assert "lots" not in invalid.value.message()
