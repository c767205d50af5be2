"""Manifest round trip and the consistency checks the store relies on."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib.manifest import (
    BundleManifest,
    FeatureStats,
    ManifestError,
    ModelInput,
    PreprocessingSpec,
)
from tests.unit.schema_fixtures import SCHEMA, loan_manifest, loan_spec


def test_loan_spec_encodes_in_the_schema_order() -> None:
    assert loan_spec().encoded_features() == SCHEMA["encoded_features"]


def test_round_trip() -> None:
    manifest = loan_manifest()
    assert BundleManifest.loads(manifest.dumps()) == manifest


def test_public_part_has_no_checksums() -> None:
    public = loan_manifest().public_json()
    assert public["labels"] == SCHEMA["labels"]
    assert {"name": "term", "kind": "categorical", "categories": [" 36 months", " 60 months"]} in (
        public["features"]
    )
    assert "sha256" not in json.dumps(public)


@pytest.mark.parametrize(
    "change",
    [
        {"encoded_features": ()},
        {"labels": ("A",)},
        {"labels": ("A", "A")},
        {"encoded_features": tuple(reversed(SCHEMA["encoded_features"]))},
    ],
)
def test_inconsistent_manifests_are_rejected(change: dict[str, Any]) -> None:
    with pytest.raises(ManifestError):
        BundleManifest.loads(dataclasses.replace(loan_manifest(), **change).dumps())


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"format_version": 99}', b"[]"])
def test_malformed_manifests_are_rejected(raw: bytes) -> None:
    with pytest.raises(ManifestError):
        BundleManifest.loads(raw)


@pytest.mark.parametrize(
    ("mean", "std"),
    [("Infinity", 1.0), ("-Infinity", 1.0), (0.0, "Infinity"), ("NaN", 1.0), (0.0, "NaN"),
     (0.0, 0.0), (0.0, -1.0)],
)  # fmt: skip
def test_a_numeric_field_needs_a_finite_mean_and_a_finite_positive_std(
    mean: float | str, std: float | str
) -> None:
    spec = loan_spec().to_json()
    spec["numeric"][0] |= {"mean": mean, "std": std}
    with pytest.raises(ManifestError, match="finite mean and a finite std > 0"):
        PreprocessingSpec.from_json(spec)
    with pytest.raises(ManifestError):
        BundleManifest.loads(
            json.dumps(loan_manifest().to_json() | {"preprocessing": spec}).encode()
        )


def test_feature_stats_round_trip_and_old_manifests_still_load() -> None:
    width = len(SCHEMA["encoded_features"])
    stats = FeatureStats((0.0,) * width, (1.0,) * width)
    manifest = dataclasses.replace(loan_manifest(), feature_stats=stats)
    assert BundleManifest.loads(manifest.dumps()) == manifest
    old = json.loads(loan_manifest().dumps())
    assert "feature_stats" not in old  # absent section: no range rule for encoded input
    assert BundleManifest.loads(json.dumps(old).encode()).feature_stats is None
    assert "feature_stats" not in loan_manifest().public_json()


@pytest.mark.parametrize(
    "stats",
    [
        {"mean": [0.0], "std": [1.0]},
        {"mean": [0.0] * 113, "std": [0.0] * 113},
        {"mean": [float("nan")] * 113, "std": [1.0] * 113},
        {"mean": [0.0] * 113},
        {"mean": "x", "std": [1.0] * 113},
    ],
)
def test_bad_feature_stats_are_rejected(stats: dict[str, object]) -> None:
    data = json.loads(loan_manifest().dumps()) | {"feature_stats": stats}
    with pytest.raises(ManifestError):
        BundleManifest.loads(json.dumps(data).encode())


def tensor_manifest(**input_changes: Any) -> BundleManifest:
    """A sequence input [rows, 10, 4] and a flat one, without preprocessing."""
    seq = ModelInput("seq", "float32", ("seq",), shape=(10, 4))
    inputs = (dataclasses.replace(seq, **input_changes), ModelInput("extra", "float32", ("a", "b")))
    return dataclasses.replace(
        loan_manifest(), preprocessing=None, feature_stats=None,
        encoded_features=("seq", "a", "b"), inputs=inputs,
    )  # fmt: skip


def test_a_tensor_input_round_trips_with_its_shape_and_its_columns() -> None:
    manifest = BundleManifest.loads(tensor_manifest().dumps())
    assert manifest.inputs[0].shape == (10, 4) and manifest.inputs[0].record_shape == (10, 4)
    assert manifest.column_names() == ["seq"] * 40 + ["a", "b"]
    assert manifest.public_json()["inputs"][0]["shape"] == [10, 4]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"shape": (40,)}, "two or more"),
        ({"shape": (10, 0)}, "each > 0"),
        ({"features": ("seq", "x")}, "it takes one field"),
    ],
)
def test_a_tensor_input_must_be_well_formed(change: dict[str, Any], problem: str) -> None:
    manifest = tensor_manifest(**change)
    if "features" in change:
        manifest = dataclasses.replace(manifest, encoded_features=("seq", "x", "a", "b"))
    with pytest.raises(ManifestError, match=problem):
        manifest.check()


def test_a_tensor_input_takes_no_preprocessing_or_feature_stats() -> None:
    stats = FeatureStats((0.0,) * 3, (1.0,) * 3)
    with pytest.raises(ManifestError, match="no preprocessing spec and no feature_stats"):
        dataclasses.replace(tensor_manifest(), feature_stats=stats).check()
