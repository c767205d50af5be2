"""The Open Inference Protocol through the packaged lite zip, run Lambda-like, with the
events API Gateway sends when binary media types are configured: bodies base64-encoded
(isBase64Encoded), binary answers base64-encoded back."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.http._infer_result import InferResult
from tritonclient.http._utils import _get_inference_request

from layer_build.lambda_like import invoke, unpack
from localdev.apigw_events import proxy_event, route_event
from localdev.servers import MotoServer, s3_env
from modelops.examples import encode_records, holdout_records
from tests.conftest import PublishedModel

pytestmark = pytest.mark.lambda_like

INFER = "/v2/models/{name}/infer"


def binary_request(matrix: np.ndarray) -> tuple[bytes, int]:
    """What tritonclient.http sends for one binary FP32 tensor: body, JSON header length."""
    tensor = triton.InferInput("features", list(matrix.shape), "FP32")
    tensor.set_data_from_numpy(matrix, binary_data=True)
    body, json_size = _get_inference_request(
        inputs=[tensor], request_id="", outputs=None, sequence_id=0, sequence_start=False,
        sequence_end=False, priority=0, timeout=None, custom_parameters=None,
    )  # fmt: skip
    return body, json_size


def test_json_and_binary_tensors_through_api_gateway_events(
    packaged: Callable[[str], Path], published: PublishedModel, s3_server: MotoServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    layout = unpack(packaged("lite"), tmp_path / "unpacked")
    records, _ = holdout_records(published.model_dir, 50)
    encoded = encode_records(published.model_dir, records)
    names = list(encoded[0])
    matrix = np.array([[r[n] for n in names] for r in encoded], dtype=np.float32)
    json_body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32",
                                        "shape": list(matrix.shape),
                                        "data": matrix.tolist()}]}).encode()  # fmt: skip
    binary_body, header_length = binary_request(matrix)
    name = {"name": "loan-grade"}
    env = s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path / "cache")}
    report = invoke(layout, [
        proxy_event("POST", "/predict", {"instances": records}),
        route_event("POST", INFER, name, json_body, {"Content-Type": "application/json"}),
        route_event("POST", INFER, name, binary_body,
                    {"Content-Type": "application/octet-stream",
                     "Accept": "application/octet-stream",
                     "Inference-Header-Content-Length": str(header_length)}),
        proxy_event("GET", "/v2/health/ready"),
    ], env)  # fmt: skip
    predict, json_infer, binary_infer, ready = (r["response"] for r in report["results"])
    assert [r["statusCode"] for r in (predict, json_infer, binary_infer, ready)] == [200] * 4

    predictions = json.loads(predict["body"])["predictions"]
    expected = np.array([list(p["probabilities"].values()) for p in predictions])
    labels = [p["label"] for p in predictions]

    assert not json_infer.get("isBase64Encoded")
    from_json = InferResult.from_response_body(json_infer["body"].encode())
    np.testing.assert_allclose(from_json.as_numpy("probabilities"), expected, atol=1e-6)
    assert from_json.as_numpy("label").tolist() == labels

    assert binary_infer["isBase64Encoded"] is True
    assert binary_infer["headers"]["Content-Type"] == "application/octet-stream"
    length = int(binary_infer["headers"]["Inference-Header-Content-Length"])
    from_binary = InferResult.from_response_body(
        base64.b64decode(binary_infer["body"]), header_length=length
    )
    np.testing.assert_allclose(from_binary.as_numpy("probabilities"), expected, atol=1e-6)
    assert [label.decode() for label in from_binary.as_numpy("label")] == labels
    assert json.loads(ready["body"]) == {"ready": True}


def test_existing_routes_still_read_base64_json(
    packaged: Callable[[str], Path], published: PublishedModel, s3_server: MotoServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    layout = unpack(packaged("lite"), tmp_path / "unpacked")
    records, _ = holdout_records(published.model_dir, 3)
    event: dict[str, Any] = proxy_event("POST", "/predict", {"instances": records})
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    env = s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path / "cache")}
    (result,) = invoke(layout, [event], env)["results"]
    assert result["response"]["statusCode"] == 200
    assert len(json.loads(result["response"]["body"])["predictions"]) == 3
