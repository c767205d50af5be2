"""Output checks: no label from a non-finite or non-probability row; the service refuses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from chalicelib.errors import UnscorableRecords
from chalicelib.records import RecordReader
from chalicelib.service import PredictionService
from chalicelib.store import ModelBundle
from chalicelib.tasks.checks import NO_VALID_SCORE, check_probabilities, valid_probability_rows
from tests.unit.schema_fixtures import encoded_record, loan_manifest, raw_record

GOOD = [0.1, 0.2, 0.3, 0.1, 0.1, 0.1, 0.1]


@pytest.mark.parametrize(
    ("row", "valid"),
    [
        (GOOD, True),
        ([1.0, 0, 0, 0, 0, 0, 0], True),
        ([1 / 7 + 1e-5] * 7, True),  # float32 rounding in the sum is fine
        ([np.nan] * 7, False),
        ([np.nan, *GOOD[1:]], False),
        ([np.inf, 0, 0, 0, 0, 0, 0], False),
        ([1.2, -0.2, 0, 0, 0, 0, 0], False),  # sums to 1 but is no probability
        ([0.5, 0.4, 0, 0, 0, 0, 0], False),  # does not sum to 1
        ([0.0] * 7, False),
    ],
)
def test_probability_rows(row: list[float], valid: bool) -> None:
    rows = np.array([GOOD, row], dtype=np.float32)
    assert valid_probability_rows(rows).tolist() == [True, valid]


def test_unscorable_rows_are_named_with_their_suspects() -> None:
    rows = np.array([GOOD, [np.nan] * 7, GOOD, [np.nan] * 7], dtype=np.float32)
    with pytest.raises(UnscorableRecords) as caught:
        check_probabilities(rows, lambda row: ["annual_inc"] if row == 1 else [])
    assert [p.to_json() for p in caught.value.details] == [
        {"record": 1, "field": None, "problem": NO_VALID_SCORE},
        {
            "record": 1,
            "field": "annual_inc",
            "problem": "far outside the training range (likely cause)",
        },
        {"record": 3, "field": None, "problem": NO_VALID_SCORE},
    ]
    assert caught.value.message == (
        "2 record(s) got no valid score from the model; nothing was predicted."
    )


class OverflowingEngine:
    """A fake engine that overflows (NaN row) whenever any input exceeds 1e6."""

    name = "fake"

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        (matrix,) = inputs.values()
        out = np.full((matrix.shape[0], 7), 1 / 7, dtype=np.float32)
        out[np.abs(matrix).max(axis=1) > 1e6] = np.nan
        return out


class LoadedStore:
    """A store whose bundle is already in memory."""

    engine_kind = "fake"
    last_error = None

    def __init__(self, bundle: ModelBundle) -> None:
        self.loaded = bundle

    def get(self) -> ModelBundle:
        return self.loaded


def service() -> PredictionService:
    manifest = loan_manifest()  # no feature_stats: the range rule covers raw records only
    bundle = ModelBundle(manifest, OverflowingEngine(), RecordReader(manifest), 0.0)
    store: Any = LoadedStore(bundle)
    return PredictionService(store, 1000)


def test_service_refuses_the_whole_request_when_one_record_is_unscorable() -> None:
    records = [raw_record(0), encoded_record(0) | {"loan_amnt": 6.1e37}]
    with pytest.raises(UnscorableRecords) as caught:
        service().predict(records)
    assert [(p.record, p.field) for p in caught.value.details] == [(1, None)]
    assert "6.1e+37" not in repr(caught.value.to_json())


def test_service_answers_finite_probabilities() -> None:
    answer = service().predict([raw_record(0), encoded_record(1)])
    assert [p["label"] for p in answer["predictions"]] == ["A", "A"]
