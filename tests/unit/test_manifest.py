"""Manifest round trip and the consistency checks the store relies on."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib.manifest import BundleManifest, FeatureStats, ManifestError, PreprocessingSpec
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
