"""PredictionService over fakes: records in, plain results out, no HTTP anywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chalicelib.engines import load_engine
from chalicelib.errors import InvalidRecords, ModelNotFound
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    FakeS3,
    make_bundle,
    make_service,
    put_bundle,
    s3_holding,
    tiny_expected,
    tiny_litert_bundle,
)


@pytest.fixture
def s3() -> FakeS3:
    return s3_holding(make_bundle(version="4", name="tiny"))


def records(count: int) -> list[dict[str, float]]:
    return [{"x0": i, "x1": 0.5, "x2": -1, "x3": 2.0} for i in range(count)]


def test_predictions_come_back_in_input_order_with_labels(s3: FakeS3, tmp_path: Path) -> None:
    engine = FakeEngine()
    answer = make_service(s3, tmp_path, FakeEngineLoader(engine)).predict(records(4))
    assert answer["model"] == {"name": "tiny", "version": "4"}
    assert [p["label"] for p in answer["predictions"]] == ["A", "B", "C", "A"]
    assert answer["predictions"][1]["probabilities"] == {"A": 0.25, "B": 0.5, "C": 0.25}
    fed = engine.calls[-1]["input"]
    assert fed.dtype == np.float32 and fed[:, 0].tolist() == [0, 1, 2, 3]


def test_invalid_records_are_refused_before_the_engine_runs(s3: FakeS3, tmp_path: Path) -> None:
    engine = FakeEngine()
    service = make_service(s3, tmp_path, FakeEngineLoader(engine))
    with pytest.raises(InvalidRecords) as raised:
        service.predict([*records(2), {"x0": "secret", "x1": 2, "x2": 3, "x3": 4}])
    assert [(d.record, d.field) for d in raised.value.details] == [(2, "x0")]
    assert "secret" not in str(raised.value.to_json())
    assert len(engine.calls) == 1  # only the load probe


def test_the_real_litert_engine_end_to_end(tmp_path: Path) -> None:
    s3 = FakeS3(buckets={BUCKET})
    bundle = tiny_litert_bundle()
    put_bundle(s3, BUCKET, PREFIX, bundle)
    expected = tiny_expected()
    names = bundle.manifest.encoded_features
    rows = [dict(zip(names, row, strict=True)) for row in expected["inputs"]]
    answer = make_service(s3, tmp_path, load_engine).predict(rows)
    got = [[p["probabilities"][label] for label in "ABCDEFG"] for p in answer["predictions"]]
    assert np.abs(np.asarray(got) - np.asarray(expected["probabilities"])).max() <= 1e-5
    winners = np.asarray(expected["probabilities"]).argmax(axis=1)
    assert [p["label"] for p in answer["predictions"]] == ["ABCDEFG"[w] for w in winners]


def test_health_never_loads_and_reports_the_last_failure(tmp_path: Path) -> None:
    s3 = FakeS3(buckets={BUCKET})
    service = make_service(s3, tmp_path)
    assert service.health() == {"status": "ok", "model_loaded": False}
    with pytest.raises(ModelNotFound):
        service.predict(records(1))
    assert service.health() == {
        "status": "ok",
        "model_loaded": False,
        "last_load_error": "model_unavailable",
    }
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="4", name="tiny"))
    service.predict(records(1))
    assert service.health() == {
        "status": "ok",
        "model_loaded": True,
        "model": {"name": "tiny", "version": "4"},
    }


def test_model_info_is_the_public_manifest_and_the_engine(s3: FakeS3, tmp_path: Path) -> None:
    info = make_service(s3, tmp_path).model_info()
    assert info["name"] == "tiny" and info["version"] == "4" and info["engine"] == "litert"
    assert info["labels"] == ["A", "B", "C"] and info["accepts"] == ["encoded"]
    assert "artifacts" not in info and "sha256" not in str(info)
