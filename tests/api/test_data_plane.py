"""Over HTTP against a real `chalice local`: absurd but finite inputs never get a grade
(422 unscorable_records naming record and field), unknown keys that are not field
names are not echoed, and the public metadata names no path, bucket or key."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from modelops.examples import encode_records, holdout_records
from tests.conftest import PublishedModel

SECRET_KEY = "Jane Doe SSN 123-45-6789"


def post(api_url: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{api_url}/predict", content=body,
                      headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip


@pytest.fixture(scope="module")
def raw(published: PublishedModel) -> list[dict[str, Any]]:
    return holdout_records(published.model_dir, 2)[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("installment_pct_inc", "6.3e36"), ("annual_inc", "1.3e43"), ("dti", "-1e300")],
)
def test_absurd_raw_values_are_refused_not_graded(
    api_url: str, raw: list[dict[str, Any]], field: str, value: str
) -> None:
    body = json.dumps([raw[0], raw[1] | {field: "VALUE"}]).replace('"VALUE"', value)
    response = post(api_url, body.encode())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "unscorable_records"
    assert [(d["record"], d["field"]) for d in error["details"]] == [(1, field)]
    assert value not in response.text and value.replace("e", "e+") not in response.text


@pytest.mark.parametrize("value", ["6.1e37", "3.4028234663852886e38", "-3.4028235e38"])
def test_encoded_values_near_the_float32_maximum_are_refused(
    api_url: str, published: PublishedModel, raw: list[dict[str, Any]], value: str
) -> None:
    encoded = encode_records(published.model_dir, raw)
    body = json.dumps([encoded[0] | {"loan_amnt": "VALUE"}, encoded[1]]).replace('"VALUE"', value)
    response = post(api_url, body.encode())
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [(d["record"], d["field"]) for d in details] == [(0, "loan_amnt")]


def test_unknown_key_that_is_not_a_field_name_is_not_echoed(
    api_url: str, raw: list[dict[str, Any]]
) -> None:
    record = raw[0] | {SECRET_KEY: 1, "nickname": 2}
    response = post(api_url, json.dumps([record]).encode())
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert details == [
        {
            "record": 0,
            "field": None,
            "problem": f"unknown field (key #{len(raw[0]) + 1} of the record)",
        },
        {"record": 0, "field": "nickname", "problem": "unknown field"},
    ]
    assert "Jane" not in response.text and "SSN" not in response.text


def strings(value: Any) -> list[str]:
    """Every string (keys too) in a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_model_metadata_names_no_path_bucket_or_key(
    api_url: str, published: PublishedModel
) -> None:
    response = httpx.get(f"{api_url}/model", timeout=30)
    assert response.status_code == 200
    body = response.json()
    text = response.text
    for leak in (published.bucket, published.prefix, "LATEST", ".keras", ".tflite", "sha256",
                 str(published.model_dir), "/tmp"):  # fmt: skip
        assert leak not in text, leak
    # "/" only inside the schema's own category names ("n/a").
    categories = {c for f in body["features"] for c in f.get("categories", [])}
    assert [s for s in strings(body) if "/" in s and s not in categories] == []
    assert body["metrics"]["data"] == "synthetic demo, 4,000 rows, seed 11"
