"""The committed OpenAPI document is valid and lists every error the service raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

import chalicelib
from chalicelib import errors

OPENAPI = Path(chalicelib.__file__).parent / "openapi.json"


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI.read_text())
    return document


def test_the_document_is_valid_openapi_3() -> None:
    document = _document()
    validate(document)
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/predict", "/health", "/model", "/batch", "/batch/{job}"}


def test_every_error_status_of_the_service_is_documented_on_predict() -> None:
    statuses = {
        cls.status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.ServiceError)
    }
    paths = _document()["paths"]
    documented = {int(s) for s in paths["/predict"]["post"]["responses"]}
    batch_only = {int(s) for s in paths["/batch/{job}"]["get"]["responses"]} - documented
    assert batch_only == {404}  # NotFound: a batch job or its input
    assert statuses <= documented | batch_only
    assert {400, 405, 413, 415, 422, 500, 503} <= documented
