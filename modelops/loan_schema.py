"""The lender's loan schema (loan_schema.json): field lists and labels, in one place."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parent / "loan_schema.json"
GRADE_COLUMN = "grade"


@cache
def schema() -> dict[str, Any]:
    """The parsed schema file."""
    return json.loads(SCHEMA_PATH.read_text())


def numeric_fields() -> list[str]:
    return [field["name"] for field in schema()["numeric"]]


def categorical_fields() -> dict[str, list[str]]:
    """Field name -> categories, in the schema's (= one-hot) order."""
    return {name: list(categories) for name, categories in schema()["categorical"].items()}


def labels() -> list[str]:
    return list(schema()["labels"])


def raw_columns() -> list[str]:
    """The CSV layout: numeric fields, categorical fields, then the grade."""
    return numeric_fields() + list(categorical_fields()) + [GRADE_COLUMN]
