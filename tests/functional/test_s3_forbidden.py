"""403 is S3's answer for a missing key when the caller may not s3:ListBucket (the batch
and model policies grant GetObject on prefixes, not ListBucket on the bucket). Every
reader treats it as "missing or forbidden" (chalicelib.s3_errors) and each surface
answers its documented status: POST /batch and GET /batch/{job} 404 (never 500), the
model store 503, the tools one line.

The S3 here is moto behind a real HTTP proxy that answers as S3 does without
ListBucket: a GET or HEAD of a missing key gets 403 AccessDenied instead of 404.
"""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import orjson
import pytest

from chalicelib.bundle_layout import BundleLayout
from chalicelib.errors import ModelNotFound
from chalicelib.s3_errors import absence
from chalicelib.version_pointer import PointerMissing, read_latest
from localdev.batch import local_env
from localdev.servers import MotoServer
from tests.conftest import PublishedModel
from tests.functional.test_batch import Batch, _batch

_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class NoListBucketS3(ThreadingHTTPServer):
    """Forwards every request to `upstream` (moto); a 404 for a GET or HEAD of a key
    becomes S3's 403 AccessDenied. Counts the 403s it made up."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urlsplit(upstream)
        self.denied = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: NoListBucketS3
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(
            self.server.upstream.hostname or "127.0.0.1", self.server.upstream.port, timeout=30
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        is_key = urlsplit(self.path).path.strip("/").count("/") >= 1  # /bucket/key
        if answer.status == 404 and self.command in ("GET", "HEAD") and is_key:
            self.server.denied += 1
            self._send(403, [("Content-Type", "application/xml")], _DENIED)
            return
        kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP]
        self._send(answer.status, kept, data)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward


@pytest.fixture
def no_list_bucket(s3_server: MotoServer) -> Iterator[NoListBucketS3]:
    server = NoListBucketS3(s3_server.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def forbidding_batch(
    s3_server: MotoServer, no_list_bucket: NoListBucketS3, published: PublishedModel,
    tmp_path: Path, monkeypatch: Any,
) -> Iterator[Batch]:  # fmt: skip
    """A batch path of its own (as test_batch's), its S3 reached through the proxy."""
    tag = uuid.uuid4().hex[:8]
    env = local_env(s3_server.url, "dev") | {
        "BATCH_INPUT_PREFIX": f"batch/in-{tag}/", "BATCH_OUTPUT_PREFIX": f"batch/out-{tag}/",
        "BATCH_CHUNK_QUEUE": f"chunks-{tag}", "BATCH_DEAD_LETTER_QUEUE": f"dlq-{tag}",
        "BATCH_EVENTS_QUEUE": f"events-{tag}", "MODEL_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_ENDPOINT_URL_S3": no_list_bucket.url,
    }  # fmt: skip
    yield from _batch(env, monkeypatch)


def test_the_proxy_answers_403_for_a_missing_key_as_s3_does(
    no_list_bucket: NoListBucketS3, published: PublishedModel
) -> None:
    s3 = boto3.client("s3", endpoint_url=no_list_bucket.url)
    with pytest.raises(Exception) as raised:
        s3.head_object(Bucket=published.bucket, Key="no/such/key")
    assert absence(raised.value) == "forbidden"
    with pytest.raises(Exception) as raised:
        s3.get_object(Bucket=published.bucket, Key="no/such/key")
    assert absence(raised.value) == "forbidden"
    manifest = f"{published.prefix}/{published.version}/manifest.json"
    assert s3.get_object(Bucket=published.bucket, Key=manifest)["Body"].read()


def test_post_and_get_batch_answer_202_and_404_never_500_when_s3_says_403(
    forbidding_batch: Batch, no_list_bucket: NoListBucketS3
) -> None:
    from chalice.test import Client

    import app

    batch = forbidding_batch
    key = batch.upload("posted.csv", b"annual_inc\n1\n")
    json = {"Content-Type": "application/json"}
    with Client(app.app) as client:
        posted = client.http.post(
            "/batch", headers=json, body=orjson.dumps({"input": f"s3://{batch.bucket}/{key}"})
        )
        assert posted.status_code == 202, posted.body  # the plan's HEAD said 403: no plan
        job = orjson.loads(posted.body)["job"]
        queued = client.http.get(f"/batch/{job}")  # summary and plan 403, requested 200
        assert (queued.status_code, orjson.loads(queued.body)["status"]) == (200, "queued")

        unknown = client.http.get("/batch/no-such-job")
        assert unknown.status_code == 404, unknown.body
        assert orjson.loads(unknown.body)["error"]["code"] == "not_found"

        gone = orjson.dumps({"input": f"s3://{batch.bucket}/{batch.input_prefix}none.csv"})
        missing = client.http.post("/batch", headers=json, body=gone)
        assert missing.status_code == 404, missing.body
    assert no_list_bucket.denied >= 5


def test_the_one_pointer_reader_and_the_store_take_403_as_missing(
    no_list_bucket: NoListBucketS3, published: PublishedModel, tmp_path: Path
) -> None:
    from chalicelib.store import BundleLocation, ModelStore

    s3 = boto3.client("s3", endpoint_url=no_list_bucket.url)
    with pytest.raises(PointerMissing):
        read_latest(s3, published.bucket, BundleLayout("models/nothing-here"))
    store = ModelStore(s3, BundleLocation(published.bucket, "models/nothing-here"), "litert",
                       str(tmp_path / "cache"))  # fmt: skip
    with pytest.raises(ModelNotFound):
        store.get()
    pointer = read_latest(s3, published.bucket, BundleLayout(published.prefix))
    assert pointer is not None and pointer.version == published.version


def test_predict_answers_503_model_unavailable_when_the_bundle_is_missing_or_forbidden(
    no_list_bucket: NoListBucketS3, published: PublishedModel, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from chalicelib.config import Settings
    from chalicelib.surfaces import rest
    from chalicelib.wiring import build_service

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", no_list_bucket.url)
    settings = Settings(model_bucket=published.bucket, model_prefix="models/nothing-here",
                        cache_dir=str(tmp_path / "cache"))  # fmt: skip
    service = build_service(settings)
    body = orjson.dumps({"instances": [{"x": 1}]})
    answer = rest.predict(lambda: service, lambda: body, "application/json")
    assert answer.status == 503, answer.body
    assert orjson.loads(answer.body)["error"]["code"] == "model_unavailable"
    assert no_list_bucket.denied >= 1
