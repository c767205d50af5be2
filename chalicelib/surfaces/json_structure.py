"""A byte-level look at a JSON body's structure, before any Python object is built.

Parsing a 6 MB body can build millions of objects (`[{},{},...]`, one record with
500,000 keys) and cost hundreds of MB before the request is found invalid. These
checks refuse what cannot be a valid request from counts over the bytes alone:

- `token_bound` counts `[`, `{`, `,` and `:` (strings included, so it only
  over-counts; numpy, in chunks); every JSON value or key but the first follows one
  of them, so a body under `FAST_PATH_TOKENS` builds a bounded number of objects and
  is parsed straight away. Each also has a byte of its own, so a body of up to about
  twice `FAST_PATH_TOKENS` bytes is under it without counting. For scale: 1,000 raw
  records hold ~100,000 such bytes, 1,000 encoded ones ~230,000.
- `check_budget` (for larger bodies) follows brackets, commas, colons and quotes
  outside strings, and the nesting depth, in numpy chunks, and holds them to the
  surface's `JsonBudget`: what a valid request of that surface can hold (values,
  objects and arrays, keys, strings). Too deep is 400 `invalid_json`, over budget 413
  `too_many_values`. A records budget (`/predict`: `check_structure`) also refuses
  more records than allowed, a top-level object other than `{"instances": [...]}`,
  or a record with more values than any record may have, with the code the full
  parse would give.

Every JSON surface parses its body with `chalicelib.surfaces.json_body.parse_json`,
which takes a budget: no surface builds objects from a body that was not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from chalicelib.errors import FieldProblem, InvalidRecords, InvalidRequest, PayloadTooLarge

FAST_PATH_TOKENS = 400_000  # <= ~80 bytes per object worst case: ~32 MB parsed
MAX_DEPTH = 64  # a valid body is 3 levels deep: object, instances array, record
MAX_VALUES_PER_RECORD = 1024  # fields (or nested values) in one record; 113 in the demo
_MAX_REPORTED = 100
_CHUNK = 1 << 18


@dataclass(frozen=True)
class JsonBudget:
    """What a valid body of one surface can hold at most (None: no such limit).

    Each limit bounds one kind of Python object the parse would build: values
    (array elements and object members, from the commas), objects and arrays,
    keys (the colons) and strings (keys included). `records` (`/predict`: the
    request's maximum records) adds the records checks of `check_structure`.
    """

    #: What the body is, for messages: "an inference request", "a batch request".
    what: str
    values: int | None = None
    containers: int | None = None
    keys: int | None = None
    strings: int | None = None
    records: int | None = None
    depth: int = MAX_DEPTH


_TOP = re.compile(rb"\A(?:\xef\xbb\xbf)?\s*([\[{])")  # the top-level value's first byte
_INSTANCES_OBJECT = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"instances"\s*:\s*\[')
_OPEN = ord("{")
_UNCLOSED = 1_025
_TOKEN_CHUNK = 1 << 16
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")] = 1
_STEP[list(b"]}")] = -1
_STRUCTURAL = np.zeros(256, dtype=bool)
_STRUCTURAL[list(b"[]{},")] = True
_STRUCTURAL_AND_COLONS = _STRUCTURAL.copy()
_STRUCTURAL_AND_COLONS[ord(":")] = True
_COMMA, _QUOTE, _COLON = ord(","), ord('"'), ord(":")

_SHAPE = 'The body must be {"instances": [record, ...]} or an array of records.'


def token_bound(body: bytes) -> int:
    """An upper bound on the number of JSON values and keys in `body` (at most one pass)."""
    # Each value or key but the first has a token byte before it and a byte of its own
    # that is none (a scalar's or key's first byte, a container's closing bracket), so
    # a body holds at most half its length of them, plus the containers left unclosed
    # (a parse error), which the parser nests at most ~1,000 deep.
    quick = len(body) // 2 + _UNCLOSED
    if quick <= FAST_PATH_TOKENS:
        return quick
    # numpy compares in cache-sized chunks ~3x faster than bytes.translate deletes.
    codes = np.frombuffer(body, dtype=np.uint8)
    found = np.empty(min(codes.size, _TOKEN_CHUNK), dtype=bool)
    folded = np.empty(found.size, dtype=np.uint8)
    tokens = 1
    for start in range(0, codes.size, _TOKEN_CHUNK):
        chunk = codes[start : start + _TOKEN_CHUNK]
        seen, lower = found[: chunk.size], folded[: chunk.size]
        np.bitwise_or(chunk, 0x20, out=lower)  # "[" | 0x20 is "{"
        tokens += int(np.count_nonzero(np.equal(lower, _OPEN, out=seen)))
        tokens += int(np.count_nonzero(np.equal(chunk, _COMMA, out=seen)))
        tokens += int(np.count_nonzero(np.equal(chunk, _COLON, out=seen)))
    return tokens


@dataclass
class _Counts:
    max_depth: int = 0
    containers: int = 0  # objects and arrays
    commas: int = 0
    colons: int = 0
    quotes: int = 0
    top_commas: int = 0  # separators of the top level: > 0 means several keys
    record_commas: int = 0  # separators between records
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # ^ commas inside each record, by record index (capped at max_records + 1)


def check_structure(body: bytes, max_records: int) -> None:
    """Raise the error a full parse of a `/predict` body would end in, if the structure
    alone shows it (the records budget)."""
    check_budget(body, records_budget(max_records))


def records_budget(max_records: int) -> JsonBudget:
    """`/predict`'s budget: the records checks (at most `max_records` records of at most
    `MAX_VALUES_PER_RECORD` values each) bound it already."""
    return JsonBudget("a prediction request", records=max_records)


def check_budget(body: bytes, budget: JsonBudget) -> None:
    """Raise what a body beyond `budget` gets (400 too deep, 413 too many values), or the
    error a full parse would end in when the records checks show it."""
    top = _TOP.match(body)
    if top is None:
        return  # a scalar at the top: a single value, bounded by the body's size
    in_object = top.group(1) == b"{"
    records = budget.records
    totals = any(limit is not None for limit in (budget.values, budget.containers, budget.keys))
    counts = _count(body, 2 if in_object else 1, records or 0, totals)
    if counts.max_depth > budget.depth:
        raise InvalidRequest("The JSON is nested too deeply.", code="invalid_json")
    if records is not None:
        _check_records(body, counts, in_object, records)
    limits = (
        (budget.values, counts.commas + 1, "values"),
        (budget.containers, counts.containers, "objects and arrays"),
        (budget.keys, counts.colons, "keys"),
        (budget.strings, counts.quotes // 2, "strings"),
    )
    for limit, found, kind in limits:
        if limit is not None and found > limit:
            raise PayloadTooLarge(
                f"The body holds more {kind} than {budget.what} can ({limit:,} at most); "
                "nothing was read.",
                code="too_many_values",
            )


def _check_records(body: bytes, counts: _Counts, in_object: bool, max_records: int) -> None:
    if in_object and (counts.top_commas or not _INSTANCES_OBJECT.match(body)):
        raise InvalidRequest(_SHAPE, code="invalid_shape")
    records = counts.record_commas + 1  # exact for valid JSON with at least one record
    if records > max_records:
        raise PayloadTooLarge(f"{records} records exceed the maximum of {max_records} per request.")
    wide = np.flatnonzero(counts.values[:records] + 1 > MAX_VALUES_PER_RECORD)
    if wide.size:
        raise InvalidRecords(
            f"{wide.size} record(s) have more than {MAX_VALUES_PER_RECORD} values; "
            "nothing was predicted.",
            details=[
                FieldProblem(int(index), None, f"more than {MAX_VALUES_PER_RECORD} values")
                for index in wide[:_MAX_REPORTED]
            ],
        )


def _count(body: bytes, records_depth: int, max_records: int, totals: bool = False) -> _Counts:
    """Brackets and commas outside strings, in chunks so memory stays a few MB; with
    `totals`, colons too, and the totals of commas, colons and containers.

    JSON escapes are two bytes (`\\"`, `\\\\`, ...), so blanking the two
    that involve a quote or a backslash leaves every remaining quote a string's
    start or end.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    codes = np.frombuffer(body, dtype=np.uint8)
    counts = _Counts(values=np.zeros(max_records + 2, dtype=np.int64))
    structural = _STRUCTURAL_AND_COLONS if totals else _STRUCTURAL
    quotes = depth_carry = 0
    for start in range(0, codes.size, _CHUNK):
        chunk = codes[start : start + _CHUNK]
        quoted = np.cumsum(chunk == _QUOTE, dtype=np.int32)
        quoted += quotes
        quotes = int(quoted[-1])
        chunk = chunk[structural[chunk] & (quoted & 1 == 0)]
        counts.quotes = quotes
        if chunk.size:
            depth_carry = _count_chunk(
                chunk, depth_carry, records_depth, max_records, counts, totals
            )
    return counts


def _count_chunk(
    chunk: np.ndarray,
    depth_carry: int,
    records_depth: int,
    max_records: int,
    counts: _Counts,
    totals: bool,
) -> int:
    step = _STEP[chunk]
    depth = np.cumsum(step, dtype=np.int32)
    depth += depth_carry
    counts.max_depth = max(counts.max_depth, int(depth.max()))
    commas = chunk == _COMMA
    if totals:
        counts.commas += int(np.count_nonzero(commas))
        counts.colons += int(np.count_nonzero(chunk == _COLON))
        counts.containers += int(np.count_nonzero(step > 0))
    counts.top_commas += int(np.count_nonzero(commas & (depth == 1)))
    between = commas & (depth == records_depth)
    record = np.cumsum(between, dtype=np.int32) + counts.record_commas  # enclosing record
    counts.record_commas += int(np.count_nonzero(between))
    inside = commas & (depth > records_depth)
    counts.values += np.bincount(
        np.minimum(record[inside], max_records + 1), minlength=max_records + 2
    )
    return int(depth[-1])
