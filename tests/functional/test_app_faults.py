"""Outside faults through the Chalice app: S3 down or bundle missing -> 503 JSON, then
recovery without a restart once fixed. Uses Chalice's test client in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from chalice.test import Client, HTTPResponse

from chalicelib.wiring import get_service
from localdev.servers import MotoServer, bound_socket
from modelops.examples import holdout_records
from tests.conftest import PublishedModel


@pytest.fixture
def client_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[str], Client]]:
    """Chalice's test client for a stage (it applies the stage's variables per request)."""
    from app import app

    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    get_service.cache_clear()
    with ExitStack() as clients:
        yield lambda stage: clients.enter_context(Client(app, stage_name=stage))
    get_service.cache_clear()


def predict(client: Client, records: list[dict[str, object]]) -> HTTPResponse:
    import json

    return client.http.post("/predict", headers={"Content-Type": "application/json"},
                            body=json.dumps(records))  # fmt: skip


def test_s3_down_is_503_then_recovers(
    client_for: Callable[[str], Client], published: PublishedModel,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    client = client_for("dev")
    records, _ = holdout_records(published.model_dir, 2)
    # The outage: the endpoint is a port that refuses connections (bound, not listening);
    # then moto serves on that very port, with the published bundle (moto's state is
    # shared by every server in this process).
    with bound_socket() as listener:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{listener.getsockname()[1]}")
        get_service.cache_clear()
        down = predict(client, records)
        assert down.status_code == 503
        assert down.json_body["error"]["code"] == "model_unavailable"
        assert client.http.get("/health").json_body["model_loaded"] is False
        with MotoServer(listener=listener):  # S3 comes back
            up = predict(client, records)
            assert up.status_code == 200, up.body
            assert len(up.json_body["predictions"]) == 2
            assert client.http.get("/health").json_body["model_loaded"] is True


def test_model_endpoint_is_503_while_the_bundle_is_missing(
    client_for: Callable[[str], Client], s3_server: MotoServer
) -> None:
    # S3 is up, but nothing ever created the prod stage's bucket.
    response = client_for("prod").http.get("/model")
    assert response.status_code == 503
    assert response.json_body["error"]["code"] == "model_unavailable"
    assert "Traceback" not in response.body.decode()
