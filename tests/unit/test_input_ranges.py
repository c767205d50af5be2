"""Index ranges and the engine guard over fakes: a manifest's integer input range is
enforced by the one split (400 naming record and field), round-trips through the
manifest, and any registered engine's failure on inputs is a 422 `engine_refused`; a
batch file header's problems are capped like every other detail list."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from chalicelib.engines.base import GuardedEngine
from chalicelib.engines.registry import EngineSpec
from chalicelib.errors import EngineRefused, InvalidRecords
from chalicelib.manifest import BundleManifest, FeatureStats, ManifestError, ModelInput
from chalicelib.model_inputs import ModelInputs
from chalicelib.records import RecordReader
from chalicelib.surfaces import rest
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    FakeS3,
    make_bundle,
    put_bundle,
)
from tests.fakes import make_service as build_service

INPUTS = (ModelInput("dense", "float32", ("x0", "x1", "x2")),
          ModelInput("index", "int32", ("x3",), index_range=(0, 11)))  # fmt: skip


def manifest() -> BundleManifest:
    return make_bundle(inputs=INPUTS).manifest


@pytest.mark.parametrize("index", [12, -1, 1e6])
def test_an_index_outside_the_recorded_range_names_record_and_field(index: float) -> None:
    records = [{"x0": 0.0, "x1": 0.0, "x2": 0.0, "x3": i} for i in (0, 11, index)]
    with pytest.raises(InvalidRecords) as refused:
        RecordReader(manifest()).to_matrix(records)
    [problem] = refused.value.details
    assert (problem.record, problem.field) == (2, "x3")
    assert problem.problem == "must be a whole number from 0 to 11 (an index the model has)"


def test_the_range_round_trips_and_is_public() -> None:
    loaded = BundleManifest.loads(manifest().dumps())
    assert loaded.inputs == INPUTS
    assert loaded.public_json()["range_checks"] == {
        "encoded": False, "index_ranges": {"index": [0, 11]}
    }  # fmt: skip
    assert ModelInputs(loaded).zeros(1)["index"].tolist() == [[0]]  # the probe stays valid


@pytest.mark.parametrize(
    "entry",
    [{"name": "i", "dtype": "int32", "features": ["x"], "range": [5, 1]},
     {"name": "i", "dtype": "float32", "features": ["x"], "range": [0, 1]},
     {"name": "i", "dtype": "int32", "features": ["x"], "range": [0]}],
)  # fmt: skip
def test_a_malformed_range_is_a_manifest_error(entry: dict[str, object]) -> None:
    with pytest.raises(ManifestError):
        bad = BundleManifest.loads(manifest().dumps()).to_json()
        bad["encoded_features"], bad["inputs"] = ["x"], [entry]
        BundleManifest.loads(json.dumps(bad).encode())


def test_feature_stats_keep_min_and_max() -> None:
    stats = FeatureStats((1.0,), (2.0,), (0.0,), (5.0,))
    assert FeatureStats.from_json(stats.to_json()) == stats
    assert "min" not in FeatureStats((1.0,), (2.0,)).to_json()
    with pytest.raises(ManifestError):
        FeatureStats.from_json({"mean": [1.0], "std": [1.0], "min": [0.0], "max": []})


class Raising:
    """An engine that fails on any input, quoting it as engines do."""

    name = "raising"

    @classmethod
    def from_file(cls, path: str) -> Raising:
        return cls()

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        raise RuntimeError(f"index {inputs['x'][0, 0]} out of range")


def test_every_registered_engine_is_guarded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = EngineSpec("raising", "raising", (".r",), f"{__name__}:Raising", "anywhere")
    engine = spec.load(str(tmp_path / "model.r"))
    assert isinstance(engine, GuardedEngine) and engine.name == "raising"
    with caplog.at_level(logging.WARNING), pytest.raises(EngineRefused) as refused:
        engine.predict({"x": np.array([[123456.0]])})
    assert (refused.value.status, refused.value.code) == (422, "engine_refused")
    assert "123456" not in refused.value.message + caplog.text
    assert "RuntimeError" in caplog.text


def test_an_engine_failure_through_predict_is_422_not_500(tmp_path: Path) -> None:
    s3 = FakeS3(buckets={BUCKET})
    put_bundle(s3, BUCKET, PREFIX, make_bundle())
    failing = GuardedEngine(FakeEngine(error=RuntimeError("index 99"), fail_after=1))
    service = build_service(s3, tmp_path, FakeEngineLoader(failing))
    body = b'[{"x0": 1, "x1": 2, "x2": 3, "x3": 4}]'
    answer = rest.predict(lambda: service, lambda: body, "application/json")
    assert answer.status == 422 and '"engine_refused"' in str(answer.body)
    assert "99" not in str(answer.body)


def test_a_file_header_of_many_unknown_columns_gets_capped_problems() -> None:
    reader = RecordReader(manifest())
    header = [f"c{i}" for i in range(50_000)] + ["c1", "c1"]
    problems = reader.header_problems(header)
    assert len(problems) == 100
    assert problems[0].field == "c1" and problems[0].problem == "duplicate column"
