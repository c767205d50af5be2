"""The V2 surface over fakes: tensor framing checked against tritonclient's own
encoder and decoder, infer answers and errors, and the columnar record reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tritonclient.http._infer_result import InferResult
from tritonclient.http._utils import _get_inference_request

from chalicelib.errors import InvalidRecords, UnscorableRecords
from chalicelib.manifest import ModelInput
from chalicelib.records import RecordReader
from chalicelib.service import PredictionService
from chalicelib.surfaces import v2
from chalicelib.surfaces.rest import HttpAnswer
from chalicelib.surfaces.v2_tensors import OutputTensor, encode_response, parse_infer_request
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    FakeS3,
    make_bundle,
    put_bundle,
)
from tests.fakes import make_service as build_service
from tests.unit.schema_fixtures import loan_manifest, raw_record

FEATURES = ("x0", "x1", "x2", "x3")


def make_service(tmp_path: Path, max_records: int = 1000) -> PredictionService:
    s3 = FakeS3(buckets={BUCKET})
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="4", name="tiny", features=FEATURES))
    return build_service(s3, tmp_path, FakeEngineLoader(FakeEngine()), max_records=max_records)


def request_body(inputs: list[triton.InferInput], **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    """What tritonclient.http sends for `inputs`: body and headers."""
    options = dict(request_id="", outputs=None, sequence_id=0, sequence_start=False,
                   sequence_end=False, priority=0, timeout=None,
                   custom_parameters=None)  # fmt: skip
    body, json_size = _get_inference_request(inputs=inputs, **(options | kwargs))
    headers = {} if json_size is None else {"inference-header-content-length": str(json_size)}
    return body if isinstance(body, bytes) else body.encode(), headers


def tensor(matrix: np.ndarray, binary: bool, name: str = "input") -> triton.InferInput:
    datatype = {"float32": "FP32", "float64": "FP64", "object": "BYTES"}[matrix.dtype.name]
    infer_input = triton.InferInput(name, list(matrix.shape), datatype)
    infer_input.set_data_from_numpy(matrix, binary_data=binary)
    return infer_input


def infer(service: PredictionService, body: bytes, headers: dict[str, str],
          name: str = "tiny", version: str | None = None) -> HttpAnswer:  # fmt: skip
    return v2.infer(lambda: service, name, version, lambda: body, headers)


def result_of(answer: HttpAnswer) -> InferResult:
    body = answer.body.encode() if isinstance(answer.body, str) else answer.body
    length = answer.headers.get("Inference-Header-Content-Length")
    return InferResult.from_response_body(body, header_length=int(length) if length else None)


def error_of(answer: HttpAnswer) -> str:
    body = orjson.loads(answer.body)
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


MATRIX = np.array([[0.5, -1.0, 2.0, 3.0], [1.0, 0.0, 0.25, -2.0]], dtype=np.float32)


@pytest.mark.parametrize("binary", [False, True])
def test_tritonclients_request_parses_to_the_same_tensors(binary: bool) -> None:
    labels = np.array([b"A", "naïve".encode(), b""], dtype=np.object_)
    body, headers = request_body([tensor(MATRIX, binary), tensor(labels, binary, "cats")])
    request = parse_infer_request(body, headers.get("inference-header-content-length"), 1000)
    first, second = request.inputs
    assert (first.name, first.datatype, first.shape) == ("input", "FP32", (2, 4))
    np.testing.assert_array_equal(first.array(np.dtype(np.float32)), MATRIX)
    assert list(second.flat()) == ["A", "naïve", ""]
    assert request.binary_output  # tritonclient asks for binary outputs when none are named


def test_binary_responses_decode_with_tritonclients_reader() -> None:
    probabilities = np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32)
    outputs = [OutputTensor("probabilities", "FP32", (2, 2), probabilities),
               OutputTensor("label", "BYTES", (2,), ["yes", "no"])]  # fmt: skip
    body, length = encode_response({"model_name": "m"}, outputs, {"probabilities": True,
                                                                   "label": True})  # fmt: skip
    assert length is not None and length < len(body)
    result = InferResult.from_response_body(body, header_length=length)
    np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)
    assert result.as_numpy("label").tolist() == [b"yes", b"no"]


@pytest.mark.parametrize("binary", [False, True])
def test_infer_equals_predict_for_the_same_rows(tmp_path: Path, binary: bool) -> None:
    service = make_service(tmp_path)
    records = [dict(zip(FEATURES, row, strict=True)) for row in MATRIX.tolist()]
    expected = service.predict(records)["predictions"]
    answer = infer(service, *request_body([tensor(MATRIX, binary)]))
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    result = result_of(answer)
    assert result.get_response()["model_version"] == "4"
    np.testing.assert_allclose(
        result.as_numpy("probabilities"),
        [[p["probabilities"][k] for k in "ABC"] for p in expected],
        atol=1e-7,
    )
    assert result.as_numpy("label").tolist() == [p["label"] for p in expected]


def test_binary_outputs_go_only_to_clients_that_accept_them(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    body, headers = request_body([tensor(MATRIX, True)])
    answer = infer(service, body, headers | {"accept": "application/octet-stream"})
    assert answer.headers["Content-Type"] == "application/octet-stream"
    assert isinstance(answer.body, bytes)
    result = result_of(answer)
    assert result.get_output("label")["parameters"]["binary_data_size"] == 2 * (4 + 1)
    assert result.as_numpy("label").tolist() == [b"A", b"B"]


def test_outputs_selects_and_parameters_are_accepted(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    body = orjson.dumps({"id": "r1", "parameters": {"anything": 1},
                         "inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4],
                                     "data": MATRIX.tolist(), "parameters": {}}],
                         "outputs": [{"name": "label"}]})  # fmt: skip
    answer = infer(service, body, {})
    response = orjson.loads(answer.body)
    assert response["id"] == "r1"
    assert response["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["A", "B"]}
    ]


def bad_request(**changes: Any) -> bytes:
    entry = {"name": "input", "datatype": "FP32", "shape": [2, 4], "data": MATRIX.tolist()}
    return orjson.dumps({"inputs": [entry | changes]})


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"", {}, 400, "empty"),
        (b"{not json", {}, 400, "not valid JSON"),
        (bad_request(datatype="FP64"), {}, 400, "must be FP32 of shape [n, 4]"),
        (bad_request(shape=[4, 2]), {}, 400, "nested exactly as its shape"),
        (bad_request(shape=[4, 2], data=[0.5] * 8), {}, 400, "must be FP32 of shape [n, 4]"),
        (bad_request(shape=[3, 4]), {}, 400, "data must be an array of 12 element(s)"),
        (bad_request(name="Jane Doe 123-45-6789"), {}, 400, "an unnamed input"),
        (bad_request(data=[["secret-text"] * 4] * 2), {}, 400, "FP32 data must be numbers"),
        (bad_request(data=[[1e39] * 4] * 2), {}, 400, "row 0, field x0: must be a finite"),
        (bad_request(), {"inference-header-content-length": "999"}, 400, "within the body"),
        (bad_request(parameters={"binary_data_size": 32}), {}, 400, "binary_data_size"),
    ],
)
def test_bad_requests_get_the_protocols_error_without_values(
    tmp_path: Path, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    answer = infer(make_service(tmp_path), body, headers)
    assert answer.status == status
    message = error_of(answer)
    assert says in message
    assert "secret" not in message and "Jane" not in message and "1e+39" not in message


def test_other_names_and_versions_are_404_and_too_many_rows_413(tmp_path: Path) -> None:
    service = make_service(tmp_path, max_records=1)
    body, headers = request_body([tensor(MATRIX, True)])
    assert infer(service, body, headers, name="other").status == 404
    assert "served version is '4'" in error_of(infer(service, body, headers, version="3"))
    assert infer(service, body, headers, version="4").status == 413
    assert v2.model_metadata(lambda: service, "other").status == 404
    assert v2.model_ready(lambda: service, "tiny", "4").status == 200


def test_model_metadata_describes_tensors(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    metadata = json.loads(v2.model_metadata(lambda: service, "tiny").body)
    assert metadata["versions"] == ["4"]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == ["probabilities", "label"]
    assert metadata["parameters"]["columns"] == ["A", "B", "C"]


def test_an_unscorable_row_is_422_naming_the_row(tmp_path: Path) -> None:
    s3 = FakeS3(buckets={BUCKET})
    put_bundle(s3, BUCKET, PREFIX, make_bundle(name="tiny", features=FEATURES))
    engine = FakeEngine(rows=[[0.2, 0.3, 0.5], [np.nan, 0.5, 0.5]])
    service = build_service(s3, tmp_path, FakeEngineLoader(engine))
    answer = infer(service, *request_body([tensor(MATRIX, True)]))
    assert answer.status == 422
    assert "row 1: the model gave no valid score" in error_of(answer)


READER = RecordReader(loan_manifest())


def columns_of(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {name: [record[name] for record in records] for name in records[0]}


def test_columns_encode_exactly_as_records() -> None:
    records = [raw_record(i) for i in range(5)]
    columns: dict[str, Any] = columns_of(records)
    np.testing.assert_array_equal(READER.columns_to_matrix(columns), READER.to_matrix(records))
    numeric = {name: np.asarray(columns[name]) for name in READER.numeric_names}
    np.testing.assert_array_equal(
        READER.columns_to_matrix(columns | numeric), READER.to_matrix(records)
    )


def test_bad_columns_get_the_records_errors() -> None:
    records = [raw_record(i) for i in range(3)]
    numeric, category = READER.numeric_names[1], READER.categorical_names[0]
    records[2][numeric] = True
    records[1][category] = "not-a-category"
    with pytest.raises(InvalidRecords) as from_records:
        READER.to_matrix(records)
    with pytest.raises(InvalidRecords) as from_columns:
        READER.columns_to_matrix(columns_of(records))
    assert from_columns.value.to_json() == from_records.value.to_json()
    far = [raw_record(0)]
    far[0][numeric] = 1e30
    with pytest.raises(UnscorableRecords) as unscorable:
        READER.columns_to_matrix(columns_of(far))
    assert unscorable.value.details[0].field == numeric


def test_routes_answer_the_protocols_shapes(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    assert json.loads(v2.server_metadata().body)["extensions"] == ["binary_tensor_data"]
    assert json.loads(v2.live().body) == {"live": True}
    assert json.loads(v2.ready(lambda: service).body) == {"ready": True}
    assert json.loads(v2.framework_error(405, "GET").body) == {
        "error": "This method is not allowed on this path."
    }


def service_for(tmp_path: Path, engine: FakeEngine, **bundle: Any) -> PredictionService:
    s3 = FakeS3(buckets={BUCKET})
    put_bundle(s3, BUCKET, PREFIX, make_bundle(name="tiny", features=FEATURES, **bundle))
    return build_service(s3, tmp_path, FakeEngineLoader(engine))


def test_several_inputs_are_tensors_of_their_own_datatypes(tmp_path: Path) -> None:
    engine = FakeEngine()
    inputs = (ModelInput("dense", "float32", ("x0", "x1")), ModelInput("index", "int32", ("x3",)),
              ModelInput("rest", "float32", ("x2",)))  # fmt: skip
    service = service_for(tmp_path, engine, inputs=inputs)
    metadata = json.loads(v2.model_metadata(lambda: service, "tiny").body)
    assert [(i["name"], i["datatype"], i["shape"]) for i in metadata["inputs"]] == [
        ("dense", "FP32", [-1, 2]), ("index", "INT32", [-1, 1]), ("rest", "FP32", [-1, 1])
    ]  # fmt: skip
    index = triton.InferInput("index", [2, 1], "INT32")
    index.set_data_from_numpy(np.array([[7], [2]], dtype=np.int32))
    body, headers = request_body(
        [tensor(MATRIX[:, :2], True, "dense"), index, tensor(MATRIX[:, 2:3], False, "rest")]
    )
    assert infer(service, body, headers).status == 200
    sent = engine.calls[-1]
    assert sent["index"].dtype == np.int32 and sent["index"].tolist() == [[7], [2]]
    np.testing.assert_array_equal(sent["dense"], MATRIX[:, :2])
    missing = infer(service, *request_body([tensor(MATRIX[:, :2], True, "dense")]))
    assert missing.status == 400 and "missing 'index', 'rest'" in error_of(missing)


@pytest.mark.parametrize(
    ("bundle", "rows", "expected"),
    [
        ({"task": "binary", "labels": ("no", "yes")}, [[0.75], [0.25]],
         {"probabilities": [0.25, 0.75, 0.75, 0.25], "label": ["yes", "no"]}),
        ({"task": "multilabel", "labels": ("a", "b"), "threshold": 0.5}, [[0.75, 0.25]] * 2,
         {"probabilities": [0.75, 0.25] * 2, "labels": [True, False] * 2}),
        ({"task": "regression", "labels": (), "outputs": ("price", "days")}, [[3.5, -1.0]] * 2,
         {"values": [3.5, -1.0] * 2}),
    ],
)  # fmt: skip
def test_each_task_answers_its_output_tensors(
    tmp_path: Path, bundle: dict[str, Any], rows: list[list[float]], expected: dict[str, Any]
) -> None:
    service = service_for(tmp_path, FakeEngine(rows=rows), **bundle)
    answer = infer(service, *request_body([tensor(MATRIX, False)], outputs=None))
    outputs = {o["name"]: o["data"] for o in orjson.loads(answer.body)["outputs"]}
    assert outputs == expected
    metadata = json.loads(v2.model_metadata(lambda: service, "tiny").body)
    assert [o["name"] for o in metadata["outputs"]] == list(expected)


def test_the_deployed_api_passes_binary_tensors_as_binary() -> None:
    """API Gateway's swagger (as Chalice deploys it) lists application/octet-stream as a
    binary media type: binary V2 bodies reach the function base64-encoded, not as text."""
    from chalice.deploy.swagger import TemplatedSwaggerGenerator

    from app import app

    swagger = TemplatedSwaggerGenerator().generate_swagger(app)
    assert "application/octet-stream" in swagger["x-amazon-apigateway-binary-media-types"]
    assert "application/json" not in swagger["x-amazon-apigateway-binary-media-types"]
    assert "/v2/models/{name}/infer" in swagger["paths"]
