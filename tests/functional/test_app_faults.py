"""Outside faults through the Chalice app: S3 down or bundle missing -> 503 JSON, then
recovery without a restart once fixed. Uses Chalice's test client in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from chalice.test import Client

from chalicelib.wiring import get_service
from deployment.stages import stage_location
from localdev.servers import LocalServer, free_port, moto_s3_server
from modelops.examples import holdout_records
from tests.conftest import PublishedModel


@pytest.fixture
def app_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Client]:
    from app import app

    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    get_service.cache_clear()
    with Client(app, stage_name="dev") as client:
        yield client
    get_service.cache_clear()


def predict(client: Client, records: list[dict[str, object]]) -> object:
    import json

    return client.http.post("/predict", headers={"Content-Type": "application/json"},
                            body=json.dumps(records))  # fmt: skip


def test_s3_down_is_503_then_recovers(
    app_client: Client, published: PublishedModel, monkeypatch: pytest.MonkeyPatch,
    upload: Callable[[str, str], None],
) -> None:  # fmt: skip
    records, _ = holdout_records(published.model_dir, 2)
    # The test client applies the dev stage's variables on every request, so the
    # outage is staged by pointing the endpoint at a port where S3 is down.
    bucket, prefix = stage_location("dev")
    port = free_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    get_service.cache_clear()
    down = predict(app_client, records)
    assert down.status_code == 503
    assert down.json_body["error"]["code"] == "model_unavailable"
    assert app_client.http.get("/health").json_body["model_loaded"] is False
    server: LocalServer = moto_s3_server(port).start()  # S3 comes back
    try:
        boto3.client("s3").create_bucket(Bucket=bucket)
        upload(bucket, prefix)
        up = predict(app_client, records)
        assert up.status_code == 200, up.body
        assert len(up.json_body["predictions"]) == 2
        assert app_client.http.get("/health").json_body["model_loaded"] is True
    finally:
        server.stop()


def test_model_endpoint_is_503_while_the_bundle_is_missing(
    app_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    with moto_s3_server(free_port()) as empty_s3:  # S3 up, but no bucket, no bundle
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", empty_s3.url)
        get_service.cache_clear()
        response = app_client.http.get("/model")
    assert response.status_code == 503
    assert response.json_body["error"]["code"] == "model_unavailable"
    assert "Traceback" not in response.body.decode()
