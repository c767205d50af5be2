"""Example request bodies built from held-out records (for `make serve` and docs)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from chalicelib.encoding import FeatureEncoder
from chalicelib.manifest import PreprocessingSpec


def holdout_records(model_dir: Path, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The first `count` held-out raw records (numbers as numbers) and their grades."""
    spec = PreprocessingSpec.from_json(json.loads((model_dir / "preprocessing.json").read_text()))
    numeric = {f.name for f in spec.numeric}
    records: list[dict[str, Any]] = []
    grades: list[str] = []
    with open(model_dir / "holdout.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if len(records) == count:
                break
            grades.append(row.pop("grade"))
            records.append({k: _number(v) if k in numeric else v for k, v in row.items()})
    return records, grades


def encode_records(model_dir: Path, records: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The same records in the encoded-feature format (the original handler's)."""
    spec = PreprocessingSpec.from_json(json.loads((model_dir / "preprocessing.json").read_text()))
    columns = {name: [r[name] for r in records] for name in spec.raw_fields()}
    matrix = FeatureEncoder(spec).encode_columns(columns)
    names = spec.encoded_features()
    return [dict(zip(names, map(float, row), strict=True)) for row in matrix.tolist()]


def example_requests(model_dir: Path) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """A raw `{"instances": [...]}` body and a bare-array encoded body."""
    records, _ = holdout_records(model_dir, 2)
    return {"instances": records}, encode_records(model_dir, records)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value
