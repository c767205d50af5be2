"""Every bad input gets its status and the error JSON; nothing echoes values; the
server keeps serving afterwards. Over HTTP against a real `chalice local`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from modelops.examples import holdout_records
from tests.conftest import PublishedModel

SECRET = "Jane-Doe-SSN-078-05-1120"


@pytest.fixture(scope="module")
def good(published: PublishedModel) -> dict[str, Any]:
    return holdout_records(published.model_dir, 1)[0][0]


def cases(good: dict[str, Any]) -> list[tuple[str, bytes, str, int, str, list[Any] | None]]:
    """(name, body, content type, status, code, [(record, field)] or None)."""
    dumps = lambda value: json.dumps(value).encode()  # noqa: E731
    missing = {k: v for k, v in good.items() if k != "dti"}
    return [
        ("malformed JSON", b'{"instances": [', "application/json", 400, "invalid_json", None),
        ("non-UTF-8", b'[{"dti": "\xff\xfe"}]', "application/json", 400, "invalid_encoding", None),
        ("empty body", b"", "application/json", 400, "empty_body", None),
        ("number at top", b"17", "application/json", 400, "invalid_shape", None),
        ("empty list", b"[]", "application/json", 400, "empty_instances", None),
        ("absurd nesting", b"[" * 50_000 + b"]" * 50_000, "application/json", 400,
         "invalid_json", None),
        ("record not object", dumps([good, [1, 2]]), "application/json", 400,
         "invalid_records", [(1, None)]),
        ("missing field", dumps([good, missing]), "application/json", 400,
         "invalid_records", [(1, "dti")]),
        ("unknown field", dumps([good | {"nickname": SECRET}]), "application/json", 400,
         "invalid_records", [(0, "nickname")]),
        ("number as text", dumps([good | {"annual_inc": SECRET}]), "application/json", 400,
         "invalid_records", [(0, "annual_inc")]),
        ("boolean", dumps([good | {"dti": True}]), "application/json", 400,
         "invalid_records", [(0, "dti")]),
        ("object", dumps([good | {"dti": {"v": SECRET}}]), "application/json", 400,
         "invalid_records", [(0, "dti")]),
        ("NaN", b'[' + dumps(good)[:-1] + b', "dti": NaN}]', "application/json", 400,
         "invalid_records", [(0, "dti")]),
        ("infinity", dumps([good | {"dti": 1e999}]), "application/json", 400,
         "invalid_records", [(0, "dti")]),
        ("unknown category", dumps([good, good | {"addr_state": SECRET}]), "application/json",
         400, "invalid_records", [(1, "addr_state")]),
        ("too many records", dumps([good] * 1001), "application/json", 413,
         "too_many_records", None),
        ("text/plain", dumps([good]), "text/plain", 415, "unsupported_media_type", None),
        ("form", b"dti=3", "application/x-www-form-urlencoded", 415,
         "unsupported_media_type", None),
    ]  # fmt: skip


def test_bad_inputs_get_their_status_and_error_json(api_url: str, good: dict[str, Any]) -> None:
    for name, body, content_type, status, code, where in cases(good):
        response = httpx.post(f"{api_url}/predict", content=body,
                              headers={"Content-Type": content_type}, timeout=30)  # fmt: skip
        assert response.status_code == status, name
        assert response.headers["content-type"].startswith("application/json"), name
        error = response.json()["error"]
        assert error["code"] == code, name
        assert error["message"], name
        assert SECRET not in response.text and "Traceback" not in response.text, name
        if where is not None:
            assert [(d["record"], d["field"]) for d in error["details"]] == where, name
            assert all(d["problem"] for d in error["details"]), name
    # ... and it keeps serving.
    assert httpx.post(f"{api_url}/predict", json=[good], timeout=30).status_code == 200
    assert httpx.get(f"{api_url}/health").json()["status"] == "ok"


def test_every_route_answers_the_api_error_body_whatever_the_content_type(api_url: str) -> None:
    for path in ("/health", "/model"):  # GET routes ignore the header
        response = httpx.get(f"{api_url}{path}", headers={"Content-Type": f"text/{SECRET}"})
        assert response.status_code == 200, path
        assert SECRET not in response.text
    response = httpx.get(f"{api_url}/predict", headers={"Content-Type": f"text/{SECRET}"})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"
    assert SECRET not in response.text and SECRET not in str(response.headers)


def test_an_unknown_path_is_api_gateways_403_and_echoes_nothing(api_url: str) -> None:
    """`chalice local` answers what API Gateway would, before the app runs."""
    response = httpx.post(f"{api_url}/{SECRET}", json=[])
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}
