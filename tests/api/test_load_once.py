"""One service, one load: 32 concurrent first requests to a fresh `chalice local`
fetch each bundle file from S3 exactly once, counted by a proxy in front of moto."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from localdev.servers import ChaliceLocal, MotoServer, s3_env
from modelops.examples import holdout_records
from tests.conftest import STAGE, PublishedModel

CLIENTS = 32
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class CountingProxy:
    """Forwards HTTP to `upstream` on a thread and counts each (method, path)."""

    def __init__(self, upstream: str) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        target = urlsplit(upstream)
        host = target.hostname or "127.0.0.1"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                with proxy._lock:
                    proxy.requests[(self.command, self.path.split("?")[0])] += 1
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(host, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                content = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(content)
                upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> CountingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def gets(self, key: str) -> int:
        return sum(n for (method, path), n in self.requests.items()
                   if method == "GET" and path.endswith("/" + key))  # fmt: skip


@pytest.fixture
def proxy(s3_server: MotoServer) -> Iterator[CountingProxy]:
    with CountingProxy(s3_server.url) as counting:
        yield counting


def fresh_chalice_local(s3_url: str, cache_dir: Path) -> ChaliceLocal:
    """A new `chalice local`; its readiness probe (GET /health) never loads the model,
    so no bundle file has been fetched before the test's first requests."""
    env = s3_env(s3_url) | {"MODEL_CACHE_DIR": str(cache_dir)}
    return ChaliceLocal(STAGE, env)


def test_concurrent_first_requests_load_the_bundle_once(
    proxy: CountingProxy, published: PublishedModel, tmp_path: Path
) -> None:
    records, _ = holdout_records(published.model_dir, 3)
    with fresh_chalice_local(proxy.url, tmp_path / "cache") as server:
        assert not proxy.requests, "nothing may reach S3 before the first request"
        # Connect one by one: the server's listen backlog is 5 and 32 simultaneous
        # connects get reset; 32 simultaneous first requests are what is tested.
        connections = []
        for _ in range(CLIENTS):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            connection.connect()
            connections.append(connection)
            time.sleep(0.02)  # let the server accept it
        start = threading.Barrier(CLIENTS)
        body = json.dumps(records)

        def first_request(connection: http.client.HTTPConnection) -> int:
            start.wait()
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            status = connection.getresponse().status
            connection.close()
            return status

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            statuses = list(pool.map(first_request, connections))
    assert statuses == [200] * CLIENTS
    assert {key: proxy.gets(key) for key in ("LATEST", "manifest.json", "model.tflite")} == {
        "LATEST": 1,
        "manifest.json": 1,
        "model.tflite": 1,
    }, proxy.requests
