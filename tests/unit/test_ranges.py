"""The input range rule: values far from the training mean are unscorable (422)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from chalicelib.errors import InvalidRecords, UnscorableRecords
from chalicelib.manifest import FeatureStats
from chalicelib.records import MAX_REPORTED_PROBLEMS, RecordReader
from tests.unit.schema_fixtures import SCHEMA, encoded_record, loan_manifest, raw_record

WIDTH = len(SCHEMA["encoded_features"])
# Encoded training stats: mean 0.5, std 2 for every encoded feature.
STATS = FeatureStats((0.5,) * WIDTH, (2.0,) * WIDTH)
READER = RecordReader(dataclasses.replace(loan_manifest(), feature_stats=STATS))


def refusal_of(reader: RecordReader, records: Sequence[object]) -> UnscorableRecords:
    with pytest.raises(UnscorableRecords) as caught:
        reader.to_matrix(records)
    assert caught.value.status == 422 and caught.value.code == "unscorable_records"
    return caught.value


def spec_numeric(name: str) -> tuple[float, float]:
    spec = loan_manifest().preprocessing
    assert spec is not None
    (feature,) = [f for f in spec.numeric if f.name == name]
    return feature.mean, feature.std


@pytest.mark.parametrize("value", [6.3e36, 1.3e43, -1e300, 10**200])
def test_raw_value_far_outside_the_training_range_is_refused(value: float) -> None:
    records = [raw_record(0), raw_record(1) | {"annual_inc": value}]
    error = refusal_of(READER, records)
    assert [p.to_json() for p in error.details] == [
        {
            "record": 1,
            "field": "annual_inc",
            "problem": "more than 1000 standard deviations from the training mean",
        }
    ]
    assert str(value) not in repr(error.to_json())
    assert error.message.endswith("nothing was predicted.")


def test_raw_bound_is_inclusive_and_configurable() -> None:
    mean, std = spec_numeric("dti")
    at_bound = raw_record(0) | {"dti": mean + 999 * std}
    READER.to_matrix([at_bound])
    strict = RecordReader(loan_manifest(), max_deviations=5)
    assert strict.to_matrix([raw_record(0) | {"dti": mean + 4.5 * std}]).shape == (1, WIDTH)
    error = refusal_of(strict, [raw_record(0) | {"dti": mean - 6 * std}])
    assert error.details[0].field == "dti"
    assert "more than 5 standard deviations" in error.details[0].problem


def test_encoded_value_far_from_the_feature_stats_is_refused() -> None:
    record = encoded_record(0) | {"loan_amnt": 6.1e37, " 60 months": 3.4028234663852886e38}
    error = refusal_of(READER, [encoded_record(1), record])
    assert {(p.record, p.field) for p in error.details} == {(1, "loan_amnt"), (1, " 60 months")}


def test_encoded_bound_uses_mean_and_std() -> None:
    inside = encoded_record(0) | {"dti": 0.5 + 1000 * 2.0}
    READER.to_matrix([inside])
    refusal_of(READER, [encoded_record(0) | {"dti": 0.5 - 1001 * 2.0}])


def test_without_feature_stats_encoded_inputs_have_no_range_rule() -> None:
    reader = RecordReader(loan_manifest())
    matrix = reader.to_matrix([encoded_record(0) | {"loan_amnt": 6.1e37}])
    assert matrix[0, SCHEMA["encoded_features"].index("loan_amnt")] == np.float32(6.1e37)


def test_malformed_records_are_reported_before_range() -> None:
    records = [raw_record(0) | {"annual_inc": 1e43}, raw_record(1) | {"dti": "x"}]
    with pytest.raises(InvalidRecords):
        READER.to_matrix(records)


def test_mixed_formats_are_range_checked_in_input_order() -> None:
    records = [
        encoded_record(0) | {"dti": 1e9},
        raw_record(0),
        raw_record(1) | {"annual_inc": 1e43},
    ]
    error = refusal_of(READER, records)
    assert [(p.record, p.field) for p in error.details] == [(0, "dti"), (2, "annual_inc")]


def test_range_problems_are_capped() -> None:
    records = [encoded_record(0) | {"dti": 1e9, "bc_util": -1e9} for _ in range(80)]
    error = refusal_of(READER, records)
    assert len(error.details) == MAX_REPORTED_PROBLEMS
    assert error.message.startswith("More than 100 value(s) far outside the training range")


def test_suspect_fields_name_what_is_far_from_the_mean() -> None:
    mean, std = spec_numeric("dti")
    raw = raw_record(0) | {"dti": mean + 50 * std}
    assert READER.suspect_fields(raw, READER.to_matrix([raw])[0]) == ["dti"]
    encoded = encoded_record(0) | {"bc_util": 0.5 + 2.0 * 11}
    assert READER.suspect_fields(encoded, READER.to_matrix([encoded])[0]) == ["bc_util"]
    plain = RecordReader(loan_manifest())
    assert plain.suspect_fields(encoded, plain.to_matrix([encoded])[0]) == []
