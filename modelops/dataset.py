"""Read loan CSVs in the cleaned layout (schema's raw fields + `grade`) into columns.

The demo generator writes this layout, so synthetic and real data share one path.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from modelops.loan_schema import GRADE_COLUMN, categorical_fields, labels, numeric_fields


class DatasetError(ValueError):
    """The CSV does not fit the schema; the message names the line and column."""


def read_loans(path: Path) -> dict[str, np.ndarray]:
    """Columns: numeric fields as float64, categorical fields and grade as str arrays."""
    numeric, categorical, grades = numeric_fields(), categorical_fields(), set(labels())
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in numeric + list(categorical) + [GRADE_COLUMN] if c not in header]
        if missing:
            raise DatasetError(f"{path}: missing columns {', '.join(missing)}")
        values: dict[str, list[object]] = {c: [] for c in [*numeric, *categorical, GRADE_COLUMN]}
        for line, row in enumerate(reader, start=2):
            for name in numeric:
                values[name].append(_number(row[name], path, line, name))
            for name, categories in categorical.items():
                if row[name] not in categories:
                    raise DatasetError(f"{path}:{line}: column {name}: unknown category")
                values[name].append(row[name])
            if row[GRADE_COLUMN] not in grades:
                raise DatasetError(f"{path}:{line}: column {GRADE_COLUMN}: unknown grade")
            values[GRADE_COLUMN].append(row[GRADE_COLUMN])
    if not values[GRADE_COLUMN]:
        raise DatasetError(f"{path}: no rows")
    return {
        name: np.asarray(column, dtype=np.float64 if name in numeric else str)
        for name, column in values.items()
    }


def _number(text: str | None, path: Path, line: int, name: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise DatasetError(f"{path}:{line}: column {name}: not a number") from None
    if not math.isfinite(value):
        raise DatasetError(f"{path}:{line}: column {name}: not a finite number")
    return value
