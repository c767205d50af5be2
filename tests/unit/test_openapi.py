"""The committed OpenAPI document is valid and lists every error the service raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

import chalicelib
from chalicelib import errors
from chalicelib.surfaces import rest
from chalicelib.tasks import TASKS

OPENAPI = Path(chalicelib.__file__).parent / "openapi.json"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


def test_the_document_is_valid_openapi_3() -> None:
    document = _document()
    validate(document)
    assert document["openapi"].startswith("3.")
    v2_model = ["/v2/models/{name}", "/v2/models/{name}/versions/{version}"]
    assert set(document["paths"]) == {
        "/predict", "/health", "/model", "/openapi.json", "/batch", "/batch/{job}", "/v2",
        "/v2/health/live", "/v2/health/ready", *v2_model, *(path + "/ready" for path in v2_model),
        *(path + "/infer" for path in v2_model),
    }  # fmt: skip


def test_every_error_status_of_the_service_is_documented_on_predict_or_v2_infer() -> None:
    statuses = {
        cls.status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ServiceError)
    }
    paths = _document()["paths"]
    documented = {int(s) for s in paths["/predict"]["post"]["responses"]}
    batch_only = {int(s) for s in paths["/batch/{job}"]["get"]["responses"]} - documented
    assert batch_only == {404}  # NotFound: a batch job or its input
    v2 = {int(s) for s in paths["/v2/models/{name}/infer"]["post"]["responses"]}
    assert statuses - {errors.NotServed.status} <= documented | batch_only
    assert statuses - {errors.UnsupportedMediaType.status} <= v2  # any body is read
    assert {400, 405, 413, 415, 422, 500, 503} <= documented
    assert {400, 404, 405, 413, 422, 500, 503} <= v2


def _served() -> dict[str, Any]:
    answer = rest.openapi_document()
    assert answer.status == 200
    document: dict[str, Any] = json.loads(answer.body)
    return document


def test_the_served_document_lists_every_registered_task_and_its_prediction() -> None:
    served = _served()
    validate(served)
    schemas = served["components"]["schemas"]
    assert schemas["ModelInfo"]["properties"]["task"]["enum"] == list(TASKS)
    shapes = [ref["$ref"].rsplit("/", 1)[1] for ref in schemas["Prediction"]["oneOf"]]
    for task in TASKS.values():
        name, schema = task.prediction_schema()
        assert name in shapes and schemas[name] == schema, task.name


def test_the_committed_document_agrees_with_the_served_one() -> None:
    """The registry's parts may grow (a new task), never contradict the committed file."""
    committed, served = _document()["components"]["schemas"], _served()["components"]["schemas"]
    assert set(committed) <= set(served)
    for name, schema in committed.items():
        if name == "Prediction":
            assert all(ref in served[name]["oneOf"] for ref in schema["oneOf"])
        elif name == "ModelInfo":
            enum = schema["properties"]["task"]["enum"]
            task = served[name]["properties"]["task"]
            assert set(enum) <= set(task["enum"])
            assert served[name] | {"properties": {**served[name]["properties"],
                                   "task": {**task, "enum": enum}}} == schema  # fmt: skip
        else:
            assert served[name] == schema, name
    assert _served()["paths"] == _document()["paths"]
