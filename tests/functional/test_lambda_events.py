"""The Lambda handler (`app.app(event, context)`) on API Gateway proxy events, and the
events only a direct invoke, an ALB or a function URL send: every answer has the
API's error body, whatever the method, path, content type or encoding, and none
carries text from the request."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from localdev.apigw_events import LambdaContext, proxy_event
from modelops.examples import holdout_records
from tests.conftest import PublishedModel
from tests.functional.conftest import Handler

SECRET = "Jane-Doe-SSN-078-05-1120"


def call(app: Handler, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = app(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def assert_error(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}
    assert body["error"]["code"] == code and body["error"]["message"]


@pytest.mark.parametrize(
    "content_type",
    [f"text/plain; x={SECRET}", f"application/{SECRET}", "application/json", "*/*", ""],
)
def test_get_routes_ignore_the_content_type(handler: Handler, content_type: str) -> None:
    for path in ("/health", "/model"):
        status, body, headers = call(handler, proxy_event("GET", path, None, content_type))
        assert status == 200, (path, body)
        assert SECRET not in json.dumps([body, headers])
    assert body["name"] == "loan-grade"


@pytest.mark.parametrize("content_type", [f"text/plain; x={SECRET}", f"application/{SECRET}"])
def test_predict_refuses_other_media_types_with_its_own_body(
    handler: Handler, content_type: str
) -> None:
    status, body, headers = call(handler, proxy_event("POST", "/predict", "[]", content_type))
    assert status == 415
    assert_error(body, "unsupported_media_type")
    assert SECRET not in json.dumps([body, headers])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("GET", "/predict", "POST"), ("DELETE", "/predict", "POST"), ("POST", "/health", "GET"),
     ("PUT", "/model", "GET")],
)  # fmt: skip
def test_a_wrong_method_is_405_with_the_api_error_body(
    handler: Handler, method: str, path: str, allowed: str
) -> None:
    status, body, headers = call(handler, proxy_event(method, path, "[]", f"text/{SECRET}"))
    assert status == 405
    assert_error(body, "method_not_allowed")
    assert headers["Allow"] == allowed
    assert SECRET not in json.dumps([body, headers])


def test_a_path_no_route_has_is_404_on_a_direct_invoke(handler: Handler) -> None:
    event = proxy_event("GET", f"/{SECRET}")
    status, body, headers = call(handler, event)
    assert status == 404
    assert_error(body, "not_found")
    assert SECRET not in json.dumps([body, headers])


def test_invalid_base64_is_400_invalid_encoding(
    handler: Handler, published: PublishedModel
) -> None:
    records, _ = holdout_records(published.model_dir, 1)
    event = proxy_event("POST", "/predict", base64.b64encode(json.dumps(records).encode()).decode())
    event["isBase64Encoded"] = True
    assert call(handler, event)[0] == 200  # base64 itself is fine ...
    for broken in ("!!!" + SECRET, "W3t9XQ", "W3t9XQ=" + "\u00e9"):
        event["body"] = broken  # ... not valid base64 is not
        status, body, _ = call(handler, event)
        assert status == 400, broken
        assert_error(body, "invalid_encoding")
        assert SECRET not in json.dumps(body)


def test_a_lone_surrogate_in_a_text_body_is_400_invalid_encoding(handler: Handler) -> None:
    event = proxy_event("POST", "/predict", '[{"dti": "\ud800' + SECRET + '"}]')
    status, body, _ = call(handler, event)
    assert status == 400
    assert_error(body, "invalid_encoding")
    assert SECRET not in json.dumps(body)


def test_an_event_chalice_cannot_route_is_500_with_the_api_error_body(handler: Handler) -> None:
    event = proxy_event("GET", "/health")
    del event["requestContext"]["resourcePath"]  # Chalice answers {"Code": ...} itself
    status, body, _ = call(handler, event)
    assert status == 500
    assert_error(body, "internal_error")
