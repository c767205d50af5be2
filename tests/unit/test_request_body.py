"""Body parsing: media type, encoding, JSON, top-level shape, record count and the
structural checks that refuse hostile bodies before parsing them."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import InvalidRecords, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.surfaces.json_body import check_media_type, parse_records
from chalicelib.surfaces.json_structure import (
    FAST_PATH_TOKENS,
    MAX_VALUES_PER_RECORD,
    check_structure,
    token_bound,
)


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


# Structural checks: what cannot be a valid request is refused before parsing.


def _records_body(count: int, fields: int = 3) -> bytes:
    record = {f"f{i}": i + 0.5 for i in range(fields)} | {"text": 'a "quoted", [bracket] {x}\\'}
    return json.dumps({"instances": [record] * count}).encode()


@pytest.mark.parametrize(
    "body",
    [
        _records_body(1000),
        _records_body(1000)[len(b'{"instances": ') : -1],  # the bare-array form
        b"\xef\xbb\xbf" + _records_body(10),
        json.dumps([{"s": "],[" * 1000, "t": "\\\\", "u": '\\"]'}] * 10).encode(),
        json.dumps([{f"f{i}": 1.5 for i in range(MAX_VALUES_PER_RECORD)}]).encode(),
        b'"just a string"',
        b"[]",
    ],
)
def test_the_structure_of_valid_bodies_passes(body: bytes) -> None:
    check_structure(body, max_records=1000)


def test_a_body_beyond_the_fast_path_bound_is_still_parsed() -> None:
    body = _records_body(1000, fields=250)
    assert token_bound(body) > FAST_PATH_TOKENS
    assert len(parse_records(body, max_records=1000)) == 1000


@pytest.mark.parametrize("size", [2 * FAST_PATH_TOKENS, 2 * FAST_PATH_TOKENS + 3 * 65_536 + 17])
def test_the_token_bound_counts_every_bracket_brace_comma_and_colon(size: int) -> None:
    unit = b'{"k":[1,[2]],"s":"{[,:]}"} '  # tokens in strings count too: an upper bound
    body = (unit * (size // len(unit) + 1))[:size]
    assert token_bound(body) == sum(body.count(token) for token in (b"[", b"{", b",", b":")) + 1


def _values_and_keys(value: object) -> int:
    if isinstance(value, list):
        return 1 + sum(map(_values_and_keys, value))
    if isinstance(value, dict):
        return 1 + len(value) + sum(map(_values_and_keys, value.values()))
    return 1


@pytest.mark.parametrize(
    "body",
    [b"[" + b"0," * 300_000 + b"0]", b"[" + b"[]," * 200_000 + b"[]]",
     b"{" + b",".join(b'"%d":0' % i for i in range(70_000)) + b"}", b"[" * 50 + b"]" * 50,
     b"[" + b'{"":[]},' * 50_000 + b"{}]"],
)  # fmt: skip
def test_a_body_holds_at_most_half_its_length_of_values_and_keys(body: bytes) -> None:
    """The bound that lets bodies up to twice FAST_PATH_TOKENS bytes skip the count."""
    assert _values_and_keys(json.loads(body)) <= token_bound(body)
    assert _values_and_keys(json.loads(body)) <= len(body) // 2 + 1


@pytest.mark.parametrize(
    ("body", "error", "code"),
    [
        (b"[" * 65 + b"]" * 65, InvalidRequest, "invalid_json"),
        (b"[" + b"[],[[]]," * 600 + b"[]]", PayloadTooLarge, "too_many_records"),
        (b"[" + b"{}," * 1000 + b"{}]", PayloadTooLarge, "too_many_records"),
        (b'{"instances": [' + b"{}," * 1000 + b"{}]}", PayloadTooLarge, "too_many_records"),
        (b'{"instances": [{}], "extra": [1, 2]}', InvalidRequest, "invalid_shape"),
        (b'{"records": [{}, {}]}', InvalidRequest, "invalid_shape"),
        (b'{"instances": {"a": 1}}', InvalidRequest, "invalid_shape"),
    ],
)
def test_structures_no_valid_request_has_are_refused(
    body: bytes, error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as caught:
        check_structure(body, max_records=1000)
    assert getattr(caught.value, "code", None) == code


def test_too_many_records_counts_them_exactly() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        check_structure(_records_body(11), max_records=10)
    assert caught.value.message == "11 records exceed the maximum of 10 per request."


def test_a_record_with_too_many_values_is_named() -> None:
    wide = {f"k{i}": 0 for i in range(MAX_VALUES_PER_RECORD + 1)}
    with pytest.raises(InvalidRecords) as caught:
        check_structure(json.dumps([{"a": 1}, wide, [[1, 2]] * 600]).encode(), 10)
    assert [(p.record, p.field) for p in caught.value.details] == [(1, None), (2, None)]
    assert "k1" not in caught.value.message


def test_hostile_bodies_get_their_codes_from_parse_records() -> None:
    """Memory is measured per body in a subprocess (tests/functional/test_hostile_bodies)."""
    for body in (b"[" * 3_000_000 + b"]" * 3_000_000, b"[" + b"{}," * 2_000_000 + b"{}]"):
        with pytest.raises(InvalidRequest if body[1:2] == b"[" else PayloadTooLarge):
            parse_records(body, max_records=1000)
