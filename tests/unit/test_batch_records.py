"""RecordReader.partition and the core's score_each: per-row outcomes with the
same checks and outputs as the all-or-nothing path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chalicelib.core import Records, score_each
from chalicelib.records import RecordReader
from chalicelib.tasks.checks import NO_VALID_SCORE
from tests.fakes import (
    FakeEngine,
    FakeEngineLoader,
    make_bundle,
    make_service,
    s3_holding,
)
from tests.unit.schema_fixtures import encoded_record, loan_manifest, raw_record

READER = RecordReader(loan_manifest())


def test_partition_keeps_valid_rows_encoded_and_names_each_bad_row() -> None:
    records: list[object] = [raw_record(i) for i in range(40)] + [encoded_record(40)]
    records[3] = raw_record(3) | {"annual_inc": "a lot"}
    records[17] = raw_record(17) | {"term": "forever"}
    records[18] = "not an object"
    records[29] = raw_record(29) | {"dti": 1e12}  # far outside the training range
    valid, matrix, problems = READER.partition(records)

    assert valid == [i for i in range(41) if i not in {3, 17, 18, 29}]
    np.testing.assert_array_equal(matrix, READER.to_matrix([records[i] for i in valid]))
    assert sorted(problems) == [3, 17, 18, 29]
    assert [(p.record, p.field) for p in problems[3]] == [(3, "annual_inc")]
    assert [(p.record, p.field) for p in problems[17]] == [(17, "term")]
    assert [(p.record, p.field) for p in problems[18]] == [(18, None)]
    assert [(p.record, p.field) for p in problems[29]] == [(29, "dti")]
    assert all("a lot" not in p.problem for found in problems.values() for p in found)


@pytest.mark.parametrize("records", [[], ["x", 1]])
def test_partition_with_nothing_valid_has_an_empty_matrix(records: list[object]) -> None:
    valid, matrix, problems = READER.partition(records)
    assert (
        valid == [] and matrix.shape == (0, 113) and sorted(problems) == list(range(len(records)))
    )


def test_header_problems_name_missing_unknown_and_duplicate_columns() -> None:
    names = list(raw_record(0))
    assert READER.header_problems(names) == []
    assert READER.header_problems(list(encoded_record(0))) == []
    renamed = ["income" if n == "annual_inc" else n for n in names] + ["dti"]
    found = {(p.field, p.problem) for p in READER.header_problems(renamed)}
    assert found == {("annual_inc", "missing column"), ("income", "unknown column"),
                     ("dti", "duplicate column")}  # fmt: skip


class NanForNegativeEngine(FakeEngine):
    """Row by row: the winner is the first input mod 3; a negative one scores NaN."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        first = next(iter(inputs.values()))[:, 0]
        probabilities = np.full((len(first), 3), 0.25, np.float32)
        probabilities[np.arange(len(first)), np.abs(first).astype(int) % 3] = 0.5
        probabilities[first < 0] = np.nan
        return probabilities


def test_predict_each_scores_good_rows_like_predict_and_reports_the_rest(tmp_path: Path) -> None:
    s3 = s3_holding(make_bundle(version="4", name="tiny"))
    service = make_service(s3, tmp_path, FakeEngineLoader(NanForNegativeEngine()))
    rows: list[dict[str, Any]] = [{"x0": i, "x1": 0.5, "x2": -1, "x3": 2.0} for i in range(5)]
    rows[1] = rows[1] | {"x1": "secret"}
    rows[3] = rows[3] | {"x0": -1}
    answer = score_each(service.snapshot(), Records(rows))

    assert answer.model == {"name": "tiny", "version": "4"}
    assert [index for index, _ in answer.indexed()] == [0, 2, 4]
    expected = service.predict([rows[i] for i in (0, 2, 4)])["predictions"]
    assert [p for _, p in answer.indexed()] == expected
    assert [(p.record, p.field) for p in answer.problems[1]] == [(1, "x1")]
    assert answer.problems[3][0].problem == NO_VALID_SCORE
