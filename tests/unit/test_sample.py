"""`publish --sample`: training records read from CSV, JSON Lines or JSON, encoded as
the service encodes them, summarised as feature statistics with min and max."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from chalicelib.manifest import FeatureStats
from chalicelib.records import RecordReader
from modelops.cli_errors import UserMistake
from modelops.sample import read_sample, sample_matrix, sample_stats
from tests.unit.schema_fixtures import loan_manifest, raw_record


def test_a_csv_sample_with_a_label_column_encodes_as_records(tmp_path: Path) -> None:
    manifest = loan_manifest()
    rows = [raw_record(i) | {"grade": "B"} for i in range(6)]
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    records = read_sample(str(path), manifest.preprocessing)
    assert records is not None
    matrix = sample_matrix(manifest, records)
    expected = RecordReader(manifest).to_matrix([raw_record(i) for i in range(6)])
    np.testing.assert_allclose(matrix, expected, rtol=1e-6)
    stats = sample_stats(matrix)
    assert stats.min == tuple(map(float, matrix.min(axis=0)))
    assert all(s > 0 for s in stats.std)  # constant one-hot columns get std 1
    assert FeatureStats.from_json(json.loads(json.dumps(stats.to_json()))) == stats


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("train.txt", "", "give an existing .csv, .jsonl, .json file"),
        ("train.jsonl", "{not json\n", "cannot read it as .jsonl"),
        ("train.json", "[]", "holds no records"),
    ],
)
def test_an_unusable_sample_is_one_clear_mistake(
    tmp_path: Path, name: str, text: str, says: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(UserMistake, match=says):
        read_sample(str(tmp_path / name), None)
