"""RecordReader: raw and encoded records to the encoded matrix, and every rejection."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.encoding import FeatureEncoder
from chalicelib.errors import InvalidRecords
from chalicelib.records import MAX_REPORTED_PROBLEMS, RecordReader
from tests.unit.schema_fixtures import SCHEMA, encoded_record, loan_manifest, raw_record

READER = RecordReader(loan_manifest())


def problems_of(records: Sequence[object]) -> list[dict[str, object]]:
    with pytest.raises(InvalidRecords) as caught:
        READER.to_matrix(records)
    return [p.to_json() for p in caught.value.details]


def test_raw_record_is_standardised_and_one_hot_encoded() -> None:
    record = raw_record(3)
    matrix = READER.to_matrix([record])
    spec = loan_manifest().preprocessing
    assert spec is not None
    first = spec.numeric[0]
    assert matrix.shape == (1, 113) and matrix.dtype == np.float32
    assert matrix[0, 0] == pytest.approx((record[first.name] - first.mean) / first.std)
    one_hot = matrix[0, len(spec.numeric) :]
    assert one_hot.sum() == len(spec.categorical)
    term_column = SCHEMA["encoded_features"].index(record["term"])
    assert matrix[0, term_column] == 1.0


def test_raw_matches_offline_column_encoding() -> None:
    records = [raw_record(i) for i in range(20)]
    spec = loan_manifest().preprocessing
    assert spec is not None
    columns = {name: [r[name] for r in records] for name in spec.raw_fields()}
    expected = FeatureEncoder(spec).encode_columns(columns)
    np.testing.assert_array_equal(READER.to_matrix(records), expected)


def test_encoded_record_values_are_used_as_given() -> None:
    record = encoded_record(2)
    matrix = READER.to_matrix([record])
    np.testing.assert_array_equal(matrix[0], np.full(113, 2.0, dtype=np.float32))


def test_mixed_formats_keep_input_order() -> None:
    records = [encoded_record(1), raw_record(0), encoded_record(2), raw_record(5)]
    matrix = READER.to_matrix(records)
    for row, record in enumerate(records):
        np.testing.assert_array_equal(matrix[row], READER.to_matrix([record])[0])


@given(st.randoms(use_true_random=False))
@settings(max_examples=25, deadline=None)
def test_key_order_never_matters(rng: random.Random) -> None:
    record = raw_record(4)
    items = list(record.items())
    rng.shuffle(items)
    np.testing.assert_array_equal(READER.to_matrix([dict(items)]), READER.to_matrix([record]))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("12", "must be a number, not text"),
        (True, "must be a number, not a boolean"),
        (None, "must be a number, not null"),
        ({"a": 1}, "must be a number, not an object"),
        ([1], "must be a number, not an array"),
        (math.nan, "must be a finite number (not NaN or infinity)"),
        (math.inf, "must be a finite number (not NaN or infinity)"),
        (10**400, "must be a finite number (out of range)"),
    ],
)
def test_bad_numbers_name_record_and_field(value: object, problem: str) -> None:
    records = [raw_record(0), raw_record(1) | {"dti": value}]
    assert problems_of(records) == [{"record": 1, "field": "dti", "problem": problem}]


@pytest.mark.parametrize("value", ["PLUTO", " 36 MONTHS", 36, None, ["RENT"]])
def test_bad_categories_are_rejected(value: object) -> None:
    (problem,) = problems_of([raw_record(0) | {"home_ownership": value}])
    assert problem["record"] == 0 and problem["field"] == "home_ownership"


def test_missing_and_unknown_fields() -> None:
    record = raw_record(0)
    del record["fico_range_high"]
    record["favourite_colour"] = "blue"
    assert problems_of([record]) == [
        {"record": 0, "field": "fico_range_high", "problem": "missing field"},
        {"record": 0, "field": "favourite_colour", "problem": "unknown field"},
    ]


def test_encoded_record_with_a_missing_column_is_reported_as_encoded() -> None:
    record = encoded_record(0)
    del record[" 60 months"]
    assert problems_of([record]) == [
        {"record": 0, "field": " 60 months", "problem": "missing field"}
    ]


@pytest.mark.parametrize("record", [[1, 2], "text", 3, None, True])
def test_record_that_is_not_an_object(record: object) -> None:
    assert problems_of([raw_record(0), record]) == [
        {"record": 1, "field": None, "problem": "record must be a JSON object"}
    ]


def test_problems_never_echo_values() -> None:
    secret = "SSN-123-45-6789"
    with pytest.raises(InvalidRecords) as caught:
        READER.to_matrix([raw_record(0) | {"annual_inc": secret, "addr_state": secret}])
    assert secret not in repr(caught.value.to_json())


def test_many_problems_are_capped() -> None:
    records = [raw_record(i) | {"dti": "x", "bc_util": "y"} for i in range(200)]
    with pytest.raises(InvalidRecords) as caught:
        READER.to_matrix(records)
    assert len(caught.value.details) == MAX_REPORTED_PROBLEMS
    assert caught.value.message == (
        "More than 100 problem(s) (the first 100 shown); nothing was predicted."
    )


def test_a_few_problems_are_counted_exactly() -> None:
    records = [raw_record(i) | {"dti": "x", "bc_util": "y"} for i in range(3)]
    with pytest.raises(InvalidRecords) as caught:
        READER.to_matrix(records)
    assert caught.value.message == "6 problem(s) in 3 record(s); nothing was predicted."


def test_collecting_unknown_keys_stops_at_the_cap() -> None:
    record = raw_record(0) | {f"extra_{i}": 0 for i in range(500_000)}
    reported = problems_of([record, record])
    assert len(reported) == MAX_REPORTED_PROBLEMS
    assert {p["record"] for p in reported} == {0}


@pytest.mark.parametrize("key", ["nickname", "loan.amount", "x-1", "_private", "a" * 64])
def test_unknown_keys_that_look_like_field_names_are_named(key: str) -> None:
    assert problems_of([raw_record(0) | {key: 1}]) == [
        {"record": 0, "field": key, "problem": "unknown field"}
    ]


@pytest.mark.parametrize(
    "key",
    ["Jane Doe SSN 123-45-6789", "a" * 65, "1st", "", "näme", "dti ", "\ud800", "a/b", "x\n"],
)
def test_other_unknown_keys_are_reported_by_position_only(key: str) -> None:
    record = {"zz_first": 0} | raw_record(0) | {key: "Jane"}
    problems = problems_of([record])
    assert problems[-1] == {
        "record": 0,
        "field": None,
        "problem": f"unknown field (key #{len(record)} of the record)",
    }
    assert key not in json.dumps(problems) or key == ""


@given(
    st.lists(
        st.one_of(
            st.integers(-(10**12), 10**12),
            st.floats(allow_nan=False, allow_infinity=False, width=32),
        ),
        min_size=113,
        max_size=113,
    )
)
@settings(max_examples=50, deadline=None)
def test_any_finite_numbers_encode_exactly(values: list[float]) -> None:
    record = dict(zip(SCHEMA["encoded_features"], values, strict=True))
    np.testing.assert_array_equal(READER.to_matrix([record])[0], np.array(values, np.float32))


@given(st.one_of(st.text(), st.booleans(), st.none(), st.lists(st.integers(), max_size=2)))
@settings(max_examples=50, deadline=None)
def test_any_non_number_in_a_numeric_field_is_a_400(value: object) -> None:
    (problem,) = problems_of([raw_record(0) | {"revol_util": value}])
    assert problem["field"] == "revol_util" and problem["record"] == 0


def test_model_without_preprocessing_accepts_encoded_only() -> None:
    reader = RecordReader(loan_manifest(with_preprocessing=False))
    assert reader.to_matrix([encoded_record(1)]).shape == (1, 113)
    with pytest.raises(InvalidRecords) as caught:
        reader.to_matrix([raw_record(0)])
    fields = {p.field for p in caught.value.details}
    assert "term" in fields and "INDIVIDUAL" in fields


@pytest.mark.parametrize("value", [3.4028234663852886e38, 3.4028235e38, -3.40282356e38])
def test_values_float32_rounds_to_its_maximum_are_finite_and_consistent(value: float) -> None:
    """float32 rounds these to +-3.4028235e38: finite, so not a 400 (the range rule
    and the output check refuse them); the per-field pass agrees with the vectorised one."""
    record = encoded_record(0) | {"dti": value}
    assert np.isfinite(READER.to_matrix([record])).all()
    problems = problems_of([record, record | {"bc_util": "x"}])
    assert problems == [{"record": 1, "field": "bc_util", "problem": "must be a number, not text"}]


@pytest.mark.parametrize("value", [3.4028235677973366e38, 1e39, -1e300, 10**39])
def test_encoded_values_that_become_infinite_in_float32_are_rejected(value: float) -> None:
    record = encoded_record(0) | {"dti": value}
    assert problems_of([record]) == [
        {"record": 0, "field": "dti", "problem": "must be a finite number (out of range)"}
    ]


def test_encoded_values_beyond_float32_are_rejected() -> None:
    record = encoded_record(0) | {"dti": 1e300}
    assert problems_of([record]) == [
        {"record": 0, "field": "dti", "problem": "must be a finite number (out of range)"}
    ]
