"""Body parsing: media type, encoding, JSON, top-level shape and record count."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.surfaces.json_body import check_media_type, parse_records


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/vnd.api+json",
        'application/json; charset="UTF-8"',
    ],
)
def test_json_media_types_are_accepted(content_type: str | None) -> None:
    check_media_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonp",
    ],
)
def test_other_media_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        check_media_type(content_type)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, "empty_body"),
        (b"", "empty_body"),
        (b"  \n ", "empty_body"),
        (b"\xff\xfe{}", "invalid_encoding"),
        (b'{"instances": [', "invalid_json"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
        (b"42", "invalid_shape"),
        (b'"text"', "invalid_shape"),
        (b"null", "invalid_shape"),
        (b'{"records": []}', "invalid_shape"),
        (b'{"instances": [], "extra": 1}', "invalid_shape"),
        (b'{"instances": {"a": 1}}', "invalid_shape"),
        (b"[]", "empty_instances"),
        (b'{"instances": []}', "empty_instances"),
    ],
)
def test_unreadable_bodies_are_400(body: bytes | None, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_records(body, max_records=10)
    assert caught.value.code == code and caught.value.status == 400


def test_json_error_gives_position_not_content() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_records(b'{"instances": [{"name": "Jane Doe", }]}', max_records=10)
    assert "Jane" not in caught.value.message and "column" in caught.value.message


def test_both_body_forms_give_the_records() -> None:
    records = [{"a": 1}, {"a": 2}]
    assert parse_records(json.dumps({"instances": records}).encode(), 10) == records
    assert parse_records(json.dumps(records).encode(), 10) == records
    assert parse_records(b"\xef\xbb\xbf" + json.dumps(records).encode(), 10) == records


def test_more_records_than_the_maximum_is_413() -> None:
    assert len(parse_records(json.dumps([{}] * 10).encode(), max_records=10)) == 10
    with pytest.raises(PayloadTooLarge) as caught:
        parse_records(json.dumps([{}] * 11).encode(), max_records=10)
    assert caught.value.status == 413
