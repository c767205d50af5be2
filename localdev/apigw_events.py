"""API Gateway (REST, proxy integration) events, as Lambda hands them to Chalice."""

from __future__ import annotations

import base64
import json
from typing import Any

from deployment.stages import function_name as stage_function_name


def proxy_event(
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> dict[str, Any]:
    """An API Gateway proxy event for `method path`; a non-str body is sent as JSON."""
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    headers = {"Content-Type": content_type, "Host": "example.execute-api.amazonaws.com"}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": path,
            "httpMethod": method,
            "path": f"/api{path}",
            "stage": "api",
            "requestId": "bench-request",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def route_event(
    method: str,
    resource: str,
    path_parameters: dict[str, str],
    body: bytes,
    headers: dict[str, str],
    binary: bool = True,
) -> dict[str, Any]:
    """An API Gateway proxy event for a route with path parameters; `body` is sent
    base64-encoded (isBase64Encoded) as API Gateway passes a binary media type, or
    as text when not `binary`."""
    path = resource.format(**path_parameters)
    headers = headers | {"Host": "example.execute-api.amazonaws.com"}
    event = proxy_event(method, path, None)
    return event | {
        "resource": resource,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "pathParameters": path_parameters,
        "requestContext": event["requestContext"] | {"resourcePath": resource},
        "body": base64.b64encode(body).decode("ascii") if binary else body.decode(),
        "isBase64Encoded": binary,
    }


class LambdaContext:
    """The few attributes Chalice reads from Lambda's context object."""

    function_name = stage_function_name("dev")  # as Chalice names the REST API function
    memory_limit_in_mb = 256
    aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000
