"""A property over the Lambda handler: for any record of JSON numbers and strings in
the published model's fields, the answer is 200 with finite probabilities summing to
1, or a 4xx naming the record. Never a grade from a broken computation."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdev.apigw_events import LambdaContext, proxy_event
from tests.functional.conftest import Handler

EXAMPLES = 300
JSON_NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63),
)
ANY_VALUE = st.one_of(JSON_NUMBERS, st.text(max_size=20))


def records_for(model: dict[str, Any]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Raw records with every field present: numbers in numeric fields and known
    categories, or such a record with one field set to any number or string."""
    fields = {
        f["name"]: st.sampled_from(f["categories"]) if f["kind"] == "categorical" else JSON_NUMBERS
        for f in model["features"]
    }
    plausible = st.fixed_dictionaries(fields)
    one_odd_field = st.tuples(plausible, st.sampled_from(sorted(fields)), ANY_VALUE).map(
        lambda drawn: drawn[0] | {drawn[1]: drawn[2]}
    )
    return st.lists(st.one_of(plausible, one_odd_field), min_size=1, max_size=3)


def post(app: Handler, records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    response = app(proxy_event("POST", "/predict", json.dumps(records)), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def assert_scored_or_refused(
    status: int, body: dict[str, Any], records: list[Any], labels: list[str]
) -> None:
    if status == 200:
        predictions = body["predictions"]
        assert len(predictions) == len(records)
        for prediction in predictions:
            probabilities = [prediction["probabilities"][label] for label in labels]
            assert all(isinstance(p, float) and math.isfinite(p) for p in probabilities)
            assert all(0.0 <= p <= 1.0 for p in probabilities)
            assert math.isclose(sum(probabilities), 1.0, abs_tol=1e-4)
            assert prediction["label"] == labels[probabilities.index(max(probabilities))]
        return
    assert 400 <= status < 500, body
    details = body["error"]["details"]
    assert details and all(0 <= d["record"] < len(records) for d in details), body


@pytest.mark.slow  # 300 generated requests, ~4 s
def test_any_record_is_scored_with_finite_probabilities_or_refused_by_name(
    handler: Handler,
) -> None:
    model = json.loads(handler(proxy_event("GET", "/model"), LambdaContext())["body"])
    labels = model["labels"]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(records=records_for(model))
    def check(records: list[dict[str, Any]]) -> None:
        status, body = post(handler, records)
        assert_scored_or_refused(status, body, records, labels)
        statuses.add(status)

    statuses: set[int] = set()
    check()
    assert 200 in statuses and any(400 <= s < 500 for s in statuses)
