"""A loan-schema manifest and valid records for unit tests (no I/O beyond the schema file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.manifest import (
    Artifact,
    BundleManifest,
    CategoricalFeature,
    NumericFeature,
    PreprocessingSpec,
)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "modelops" / "loan_schema.json").read_text()
)


def loan_spec() -> PreprocessingSpec:
    numeric = tuple(
        NumericFeature(
            f["name"],
            float(f["typical_min_median_max"][1]),
            max(1.0, float(f["typical_min_median_max"][2]) / 4),
        )
        for f in SCHEMA["numeric"]
    )
    categorical = tuple(
        CategoricalFeature(name, tuple(cats)) for name, cats in SCHEMA["categorical"].items()
    )
    return PreprocessingSpec(numeric, categorical)


def loan_manifest(with_preprocessing: bool = True) -> BundleManifest:
    spec = loan_spec()
    return BundleManifest(
        name="loan-grade",
        version="1",
        encoded_features=tuple(spec.encoded_features()),
        labels=tuple(SCHEMA["labels"]),
        artifacts={"tflite": Artifact("model.tflite", "0" * 64, 1)},
        preprocessing=spec if with_preprocessing else None,
    )


def raw_record(index: int = 0) -> dict[str, Any]:
    record: dict[str, Any] = {
        f["name"]: f["typical_min_median_max"][1] + index for f in SCHEMA["numeric"]
    }
    for name, categories in SCHEMA["categorical"].items():
        record[name] = categories[index % len(categories)]
    return record


def encoded_record(index: int = 0) -> dict[str, Any]:
    return {name: float(index % 3) for name in SCHEMA["encoded_features"]}
