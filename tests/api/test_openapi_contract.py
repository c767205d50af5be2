"""Schemathesis against the real `chalice local`: generated requests (valid and
invalid, from the committed OpenAPI document) get no server error and every
response conforms to the document. Records are generated both from the document's
generic record and from the published model's own schema (GET /model), so valid
requests with any numbers and categories are part of the run."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

import chalicelib

pytestmark = pytest.mark.slow  # in make test, not make test-fast

OPENAPI = Path(chalicelib.__file__).parent / "openapi.json"
PREDICT_EXAMPLES = 1000
GET_EXAMPLES = 50
#: V2 operations and their examples (at most: an operation without parameters has
#: one distinct request): over 1,000 generated requests in all.
V2_EXAMPLES = {
    ("/v2/models/{name}/infer", "POST"): 600,
    ("/v2/models/{name}/versions/{version}/infer", "POST"): 300,
    ("/v2/models/{name}", "GET"): 50,
    ("/v2/models/{name}/versions/{version}", "GET"): 50,
    ("/v2/models/{name}/ready", "GET"): 25,
    ("/v2/models/{name}/versions/{version}/ready", "GET"): 25,
    ("/v2", "GET"): 5,
    ("/v2/health/live", "GET"): 5,
    ("/v2/health/ready", "GET"): 5,
    ("/openapi.json", "GET"): 5,
}
# Every check, but "valid data is accepted" (the document's generic record cannot
# say which fields a model needs, and far-out numbers are 422), and invalid data
# may also be refused as too large (413, more than MAX_RECORDS records).
CHECKS = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {
                "expected-statuses": [400, 404, 405, 406, 413, 415, 422],
            },
        }
    }
)
RUN = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def contract_for(model: dict[str, Any]) -> dict[str, Any]:
    """The committed document, with records also drawn from the served model's fields."""
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    schemas = document["components"]["schemas"]
    properties = {
        feature["name"]: {"type": "string", "enum": feature["categories"]}
        if feature["kind"] == "categorical"
        else {"type": "number"}
        for feature in model["features"]
    }
    schemas["ModelRecord"] = {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
    }
    schemas["Records"]["maxItems"] = 5  # larger batches add generation time, not coverage
    schemas["Record"] = {"anyOf": [{"$ref": "#/components/schemas/ModelRecord"},
                                   copy.deepcopy(schemas["Record"])]}  # fmt: skip
    return document


def v2_contract_for(metadata: dict[str, Any]) -> dict[str, Any]:
    """The committed document, with the served model's name and version in the paths
    and its own input tensor (one row, numbers near the training data) in infer."""
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    for path, item in document["paths"].items():
        for parameter in item.get("parameters", []):
            if parameter["name"] == "name":
                parameter["schema"] = {"type": "string", "enum": [metadata["name"]]}
            if parameter["name"] == "version":
                parameter["schema"] = {"type": "string", "enum": metadata["versions"]}
        if path.endswith("/infer"):
            item["post"]["requestBody"]["content"].pop("application/octet-stream")
    (model_input,) = [i for i in metadata["inputs"]
                      if i["name"] in metadata["parameters"]["tensor_inputs"]]  # fmt: skip
    width = model_input["shape"][1]
    schemas = document["components"]["schemas"]
    schemas["V2InputTensor"] = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "enum": [model_input["name"]]},
            "datatype": {"type": "string", "enum": [model_input["datatype"]]},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "enum": [1, width]},
                "minItems": 2,
                "maxItems": 2,
            },
            "data": {
                "type": "array",
                "minItems": width,
                "maxItems": width,
                "items": {"type": "number", "minimum": -3, "maximum": 3},
            },
        },
    }
    schemas["V2InferRequest"]["properties"]["inputs"]["maxItems"] = 1
    schemas["V2RequestedOutput"]["properties"]["name"] = {
        "type": "string", "enum": [output["name"] for output in metadata["outputs"]]
    }  # fmt: skip
    return document


def conforming_statuses(
    api_url: str, runs: Iterable[tuple[st.SearchStrategy[Any], int]]
) -> list[int]:
    """Send up to `examples` generated requests from each strategy to the app, each
    answered without a server error (no 503 either: the model is loaded) and
    conforming to the document; return their statuses."""
    sent: list[int] = []

    def check(case: Any) -> None:
        # A connection per request: on a kept-alive one, chalice local's separate header
        # and body writes meet the client's delayed ACK, ~45 ms idle per request.
        response = case.call_and_validate(base_url=api_url, timeout=30)
        assert response.status_code < 500, response.text[:300]
        sent.append(response.status_code)

    for strategy, examples in runs:
        settings(RUN, max_examples=examples)(given(case=strategy)(check))()
    return sent


def test_v2_generated_requests_get_no_server_error_and_conform(api_url: str) -> None:
    metadata = httpx.get(f"{api_url}/v2/models/loan-grade", timeout=30).json()
    valid = schemathesis.openapi.from_dict(v2_contract_for(metadata), config=CHECKS)
    invalid = schemathesis.openapi.from_path(OPENAPI, config=CHECKS)

    def strategy(path: str, method: str) -> st.SearchStrategy[Any]:
        # The committed document's valid requests name any model and version (404).
        return st.one_of(
            valid[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE),
            invalid[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE),
            invalid[path][method].as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

    runs = ((strategy(path, method), examples) for (path, method), examples in V2_EXAMPLES.items())
    sent = conforming_statuses(api_url, runs)
    assert len(sent) >= 1000  # 1,058 here
    assert {200, 400, 404} <= set(sent)


def test_generated_requests_get_no_server_error_and_conform(api_url: str) -> None:
    model = httpx.get(f"{api_url}/model", timeout=30).json()
    valid = schemathesis.openapi.from_dict(contract_for(model), config=CHECKS)
    # Invalid requests come from the committed document itself: negating the
    # model's 49-field record costs ~3x the generation time and finds nothing more.
    invalid = schemathesis.openapi.from_path(OPENAPI, config=CHECKS)

    def strategy(path: str, method: str) -> st.SearchStrategy[Any]:
        return st.one_of(
            valid[path][method].as_strategy(generation_mode=GenerationMode.POSITIVE),
            invalid[path][method].as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

    sent = conforming_statuses(api_url, (
        (strategy("/predict", "POST"), PREDICT_EXAMPLES),
        (strategy("/health", "GET"), GET_EXAMPLES),
        (strategy("/model", "GET"), GET_EXAMPLES),
    ))  # fmt: skip
    assert len(sent) >= 1000
    assert {200, 400} <= set(sent)  # both valid and invalid requests were made
