"""The REST surface over a service built on fakes: the route functions of
chalicelib.surfaces.rest called directly, and the Chalice app through its test client."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import wiring
from chalicelib.config import ConfigurationError
from chalicelib.service import PredictionService
from chalicelib.surfaces import rest
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    FakeS3,
    internal_error,
    make_bundle,
    make_service,
    s3_holding,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
JSON = "application/json"
RECORDS = [{"x0": 1, "x1": 2, "x2": 3, "x3": 4}, {"x0": 0, "x1": 0, "x2": 0, "x3": 0}]
INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "An internal error occurred."}}


@pytest.fixture
def s3() -> FakeS3:
    return s3_holding(make_bundle(version="2", name="tiny"))


def factory(service: PredictionService) -> Callable[[], PredictionService]:
    return lambda: service


def body(records: Any) -> Callable[[], bytes]:
    """A body reader for rest.predict, as app.py passes one."""
    raw = json.dumps({"instances": records}).encode()
    return lambda: raw


def broken_engine_service(s3: FakeS3, tmp_path: Path) -> PredictionService:
    """Loads fine, then its engine fails with an error nobody anticipated."""
    engine = FakeEngine(error=RuntimeError("tensor 7 exploded: Traceback secret"), fail_after=1)
    return make_service(s3, tmp_path, FakeEngineLoader(engine))


def test_predict_answers_200_with_the_contracts_body(s3: FakeS3, tmp_path: Path) -> None:
    answer = rest.predict(factory(make_service(s3, tmp_path)), body(RECORDS), JSON)
    assert answer.status == 200 and answer.headers["Content-Type"] == JSON
    assert json.loads(answer.body) == {
        "model": {"name": "tiny", "version": "2"},
        "predictions": [
            {"label": "A", "probabilities": {"A": 0.5, "B": 0.25, "C": 0.25}},
            {"label": "B", "probabilities": {"A": 0.25, "B": 0.5, "C": 0.25}},
        ],
    }


def test_an_unexpected_engine_error_is_a_logged_500_without_internals(
    s3: FakeS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = broken_engine_service(s3, tmp_path)
    with caplog.at_level(logging.ERROR, logger="chalicelib.surfaces.rest"):
        answer = rest.predict(factory(service), body(RECORDS), JSON)
    assert answer.status == 500 and json.loads(answer.body) == INTERNAL_ERROR
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert "tensor 7 exploded" in str(logged.exc_info[1])  # type: ignore[index]
    assert rest.health(factory(service)).status == 200  # the service keeps serving


def test_a_service_that_cannot_be_built_is_a_500(tmp_path: Path) -> None:
    def unconfigured() -> PredictionService:
        raise ConfigurationError("MODEL_BUCKET is not set")

    for answer in (rest.predict(unconfigured, body(RECORDS), JSON), rest.model(unconfigured)):
        assert answer.status == 500 and json.loads(answer.body) == INTERNAL_ERROR


@pytest.mark.parametrize("fault", ["missing", "checksum", "s3-500"])
def test_an_unavailable_model_is_503_naming_no_location(
    s3: FakeS3, tmp_path: Path, fault: str
) -> None:
    if fault == "missing":
        s3.objects.clear()
    elif fault == "checksum":
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/2/model.tflite", Body=b"flipped bits")
    else:
        s3.fail(internal_error())
    service = factory(make_service(s3, tmp_path))
    for answer in (rest.predict(service, body(RECORDS), JSON), rest.model(service)):
        assert answer.status == 503
        assert json.loads(answer.body)["error"]["code"] == "model_unavailable"
        assert BUCKET not in answer.body and PREFIX not in answer.body


def test_a_malformed_request_gets_its_4xx_while_the_model_is_unavailable(
    tmp_path: Path,
) -> None:
    service = factory(make_service(FakeS3(), tmp_path))  # no bucket at all
    assert rest.predict(service, lambda: b"{", JSON).status == 400
    assert rest.predict(service, body(RECORDS), "text/plain").status == 415
    assert rest.predict(service, body(RECORDS), JSON).status == 503


def test_health_and_model(s3: FakeS3, tmp_path: Path) -> None:
    service = factory(make_service(s3, tmp_path))
    assert json.loads(rest.health(service).body) == {"status": "ok", "model_loaded": False}
    model = rest.model(service)
    assert model.status == 200 and json.loads(model.body)["labels"] == ["A", "B", "C"]
    assert json.loads(rest.health(service).body)["model_loaded"] is True


# The Chalice app itself, with the service installed through the wiring seam.


@pytest.fixture
def install() -> Iterator[Callable[[PredictionService], Client]]:
    from app import app

    def installed(service: PredictionService) -> Client:
        wiring.install_service(service)
        return Client(app, project_dir=str(PROJECT_DIR))

    yield installed
    wiring.install_service(None)


def test_the_app_serves_the_installed_service(
    s3: FakeS3, tmp_path: Path, install: Callable[[PredictionService], Client]
) -> None:
    with install(make_service(s3, tmp_path)) as client:
        response = client.http.post(
            "/predict", headers={"Content-Type": JSON}, body=body(RECORDS)().decode()
        )
        assert response.status_code == 200
        assert [p["label"] for p in response.json_body["predictions"]] == ["A", "B"]
        assert client.http.get("/health").json_body["model_loaded"] is True
        assert client.http.get("/model").json_body["engine"] == "litert"
        hi = client.http.post("/predict", headers={"Content-Type": "text/plain"}, body="hi")
        assert hi.status_code == 415 and hi.body == (
            b'{"error":{"code":"unsupported_media_type","message":"Send the records as JSON '
            b'with Content-Type: application/json."}}'
        )


def test_the_app_answers_500_without_a_trace(
    s3: FakeS3, tmp_path: Path, install: Callable[[PredictionService], Client]
) -> None:
    with install(broken_engine_service(s3, tmp_path)) as client:
        response = client.http.post(
            "/predict", headers={"Content-Type": JSON}, body=body(RECORDS)().decode()
        )
    assert response.status_code == 500 and response.json_body == INTERNAL_ERROR
    assert b"Traceback" not in response.body and b"exploded" not in response.body


def test_uninstalling_restores_the_environment_built_service(
    s3: FakeS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wiring.install_service(make_service(s3, tmp_path))
    installed = wiring.get_service()
    wiring.install_service(None)
    monkeypatch.setenv("MODEL_BUCKET", "from-the-environment")
    try:
        assert wiring.get_service() is not installed
        assert wiring.get_service().store.location.bucket == "from-the-environment"
    finally:
        wiring.get_service.cache_clear()
