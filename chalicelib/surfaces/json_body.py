"""JSON HTTP bodies: media type, UTF-8, the one budgeted parse, `/predict`'s records.

`parse_json` is how every JSON surface turns its body into Python objects: it takes
the surface's `JsonBudget` and checks the body's structure against it before any
object is built (a body too small to be costly is parsed straight away), so memory
stays bounded for any body. Checks that need no model run first, so a malformed
request gets its 4xx even while the model is unavailable.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from chalicelib.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.surfaces.json_structure import (
    FAST_PATH_TOKENS,
    JsonBudget,
    check_budget,
    records_budget,
    token_bound,
)

_JSON_MEDIA_TYPES = ("application/json",)


def check_media_type(content_type: str | None) -> None:
    """Accept JSON (`application/json`, `*+json`; UTF-8 only); a missing header means JSON."""
    if not content_type:
        return
    media_type, *params = (part.strip().lower() for part in content_type.split(";"))
    if media_type not in _JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType("Send the records as JSON with Content-Type: application/json.")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("JSON bodies must be UTF-8 encoded.")


def parse_json(raw_body: bytes | None, budget: JsonBudget, *, lenient: bool = False) -> Any:
    """The body's JSON document, parsed only once its structure fits `budget`.

    Strict RFC 8259 UTF-8 (orjson); `lenient` falls back to the stdlib parser for what
    orjson refuses (a BOM, NaN, 1e999, huge integers) so record rules can name them.
    """
    if raw_body is None or not raw_body.strip():
        raise InvalidRequest("The request body is empty.", code="empty_body")
    checked = token_bound(raw_body) > FAST_PATH_TOKENS
    if checked:
        check_budget(raw_body, budget)
    try:
        return orjson.loads(raw_body)  # ~4x faster than json; strict RFC 8259
    except orjson.JSONDecodeError as exc:
        if not lenient:
            message = "The body is not valid JSON (UTF-8)."
            raise InvalidRequest(message, code="invalid_json") from exc
        if not checked:  # the stdlib parser recurses: nesting is checked first
            check_budget(raw_body, budget)
        return _parse_leniently(raw_body)


def parse_records(raw_body: bytes | None, max_records: int) -> list[Any]:
    """Decode and parse the body; return its records (not yet validated one by one)."""
    document = parse_json(raw_body, records_budget(max_records), lenient=True)
    records = _records_of(document)
    if not records:
        raise InvalidRequest("There are no records to predict.", code="empty_instances")
    if len(records) > max_records:
        raise PayloadTooLarge(
            f"{len(records)} records exceed the maximum of {max_records} per request."
        )
    return records


def _parse_leniently(raw_body: bytes) -> Any:
    """The stdlib parser, for what orjson refuses: a BOM, NaN, 1e999, huge integers.

    Those then reach record validation, which names the record and field; truly
    malformed bodies get a position-only message.
    """
    try:
        text = raw_body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            "The request body is not valid UTF-8.", code="invalid_encoding"
        ) from exc
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise InvalidRequest("The JSON is nested too deeply.", code="invalid_json") from exc
    except ValueError as exc:
        raise InvalidRequest(_json_error(exc), code="invalid_json") from exc


def _records_of(document: Any) -> list[Any]:
    if type(document) is list:
        return document
    if type(document) is dict:
        unknown = [key for key in document if key != "instances"]
        if unknown or "instances" not in document:
            raise InvalidRequest(
                'The body must be {"instances": [record, ...]} or an array of records.',
                code="invalid_shape",
            )
        if type(document["instances"]) is not list:
            raise InvalidRequest('"instances" must be an array of records.', code="invalid_shape")
        return document["instances"]
    raise InvalidRequest(
        'The body must be {"instances": [record, ...]} or an array of records.',
        code="invalid_shape",
    )


def _json_error(exc: ValueError) -> str:
    """Position, never content: the body may hold personal data."""
    if isinstance(exc, json.JSONDecodeError):
        return f"The body is not valid JSON (line {exc.lineno}, column {exc.colno})."
    return "The body is not valid JSON."
