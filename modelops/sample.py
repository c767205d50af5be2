"""`publish --sample FILE`: a sample of the training data, for feature statistics.

The sample is records as the service takes them, raw fields or encoded features: a
CSV file with a header, JSON Lines (one record per line), or a JSON array. Other
columns (a label, an id) are ignored. The records are encoded exactly as the service
encodes them; the mean, standard deviation (0 becomes 1), minimum and maximum of each
encoded feature become the manifest's `feature_stats`, which turn on the service's
range check for encoded records (values more than `max_deviations` standard
deviations from the sample's mean are refused as unscorable).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.errors import ServiceError
from chalicelib.manifest import BundleManifest, FeatureStats, PreprocessingSpec
from chalicelib.records import RecordReader
from modelops.cli_errors import UserMistake

#: Rows read from a sample at most (the first ones): statistics need no more.
MAX_SAMPLE_ROWS = 100_000
SUFFIXES = (".csv", ".jsonl", ".json")


def read_sample(path: str | None, preprocessing: PreprocessingSpec | None) -> list[Any] | None:
    """The sample's records (CSV numbers parsed, category columns kept as text)."""
    if path is None:
        return None
    file = Path(path)
    if file.suffix not in SUFFIXES or not file.is_file():
        raise UserMistake(
            f"--sample {path}: give an existing {', '.join(SUFFIXES)} file of training records"
        )
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            if file.suffix == ".csv":
                text = {f.name for f in preprocessing.categorical} if preprocessing else set()
                rows = islice(csv.DictReader(handle), MAX_SAMPLE_ROWS)
                records: list[Any] = [_typed(row, text) for row in rows]
            elif file.suffix == ".jsonl":
                lines = islice((line for line in handle if line.strip()), MAX_SAMPLE_ROWS)
                records = [json.loads(line) for line in lines]
            else:
                data = json.load(handle)
                records = list(data if isinstance(data, list) else data.get("instances", []))
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise UserMistake(f"--sample {path}: cannot read it as {file.suffix} ({exc})") from exc
    if not records:
        raise UserMistake(f"--sample {path}: holds no records")
    return records[:MAX_SAMPLE_ROWS]


def _typed(row: dict[str, Any], text: set[str]) -> dict[str, Any]:
    return {k: v if k in text else _number(v) for k, v in row.items() if k is not None}


def _number(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def sample_matrix(manifest: BundleManifest, records: Sequence[Any]) -> np.ndarray:
    """The sample's encoded matrix under `manifest`'s rules; a bad record is a
    UserMistake naming its row and field (never its value)."""
    reader = RecordReader(manifest)
    raw = set(reader.raw_fields)
    encoded = set(reader.encoded_names)
    kept = [
        {k: v for k, v in r.items() if k in (raw if raw and raw <= r.keys() else encoded)}
        if isinstance(r, dict)
        else r
        for r in records
    ]
    try:
        return np.asarray(reader.to_matrix(kept), dtype=np.float64)
    except ServiceError as exc:
        first = exc.details[0] if exc.details else None
        where = f": row {first.record}, field {first.field}: {first.problem}" if first else ""
        raise UserMistake(f"--sample: the records do not fit the model{where}") from exc


def sample_stats(matrix: np.ndarray) -> FeatureStats:
    """Mean, standard deviation (0 becomes 1), min and max of each encoded column."""
    std = matrix.std(axis=0)
    std[~(std > 0)] = 1.0

    def floats(values: np.ndarray) -> tuple[float, ...]:
        return tuple(map(float, values))

    return FeatureStats(
        floats(matrix.mean(axis=0)), floats(std), floats(matrix.min(axis=0)),
        floats(matrix.max(axis=0)),
    )  # fmt: skip
