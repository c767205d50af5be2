"""The one budgeted JSON parse: each limit of a JsonBudget refuses a body before any
object is built, and no surface parses a request body any other way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.errors import InvalidRequest, PayloadTooLarge
from chalicelib.surfaces.batch_rest import BATCH_BUDGET
from chalicelib.surfaces.json_body import parse_json
from chalicelib.surfaces.json_structure import FAST_PATH_TOKENS, JsonBudget, check_budget
from chalicelib.surfaces.v2_tensors import infer_budget

SURFACES = Path(__file__).resolve().parents[2] / "chalicelib" / "surfaces"


@pytest.mark.parametrize(
    ("budget", "body", "says"),
    [
        (JsonBudget("x", values=3), b"[1,2,3,4]", "more values than x can (3 at most)"),
        (JsonBudget("x", containers=2), b"[[],[],[]]", "more objects and arrays"),
        (JsonBudget("x", keys=1), b'{"a":1,"b":2}', "more keys"),
        (JsonBudget("x", strings=1), b'["a","b"]', "more strings"),
        (JsonBudget("x", keys=1), b'{"a":"b:c,d"}', None),  # inside strings: not counted
        (JsonBudget("x", strings=1), b'["a\\"b"]', None),  # an escaped quote is no string
    ],
)
def test_each_limit_refuses_with_413(budget: JsonBudget, body: bytes, says: str | None) -> None:
    if says is None:
        check_budget(body, budget)
        return
    with pytest.raises(PayloadTooLarge) as refused:
        check_budget(body, budget)
    assert refused.value.code == "too_many_values" and says in refused.value.message


def test_too_deep_is_invalid_json() -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_budget(b"[" * 70 + b"]" * 70, JsonBudget("x"))
    assert refused.value.code == "invalid_json"


def test_a_large_body_is_checked_before_it_is_parsed() -> None:
    hostile = b'{"input":[' + b"{}," * FAST_PATH_TOKENS + b"{}]}"
    with pytest.raises(PayloadTooLarge):
        parse_json(hostile, BATCH_BUDGET)
    with pytest.raises(PayloadTooLarge):
        parse_json(b'{"inputs":[' + b"[]," * FAST_PATH_TOKENS + b"[]]}", infer_budget(1000))
    assert parse_json(b'{"input": "s3://b/k.csv"}', BATCH_BUDGET) == {"input": "s3://b/k.csv"}


def test_strict_parse_refuses_what_orjson_refuses() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_json(b"[NaN]", BATCH_BUDGET)
    assert refused.value.code == "invalid_json"
    assert parse_json(b"[NaN]", BATCH_BUDGET, lenient=True) != [0]  # the stdlib's NaN


def test_no_surface_parses_json_but_through_the_budgeted_parse() -> None:
    """A `loads(` in chalicelib/surfaces outside json_body.py must say why it is bounded
    (`# bounded: ...` on its line or the one before): the service's own text, an SQS
    message (256 KB at most)."""
    unbounded = []
    for path in sorted(SURFACES.glob("*.py")):
        lines = ["", *path.read_text().splitlines()]
        unbounded += [
            f"{path.name}:{number}"
            for number, line in enumerate(lines)
            if path.name != "json_body.py"
            and re.search(r"\bloads\(", line)
            and "# bounded:" not in lines[number - 1] + line
        ]
    assert unbounded == []
