"""ModelStore against a real S3-compatible server over HTTP (moto server)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.engines import load_engine
from chalicelib.errors import ModelCorrupt, ModelNotFound, StorageUnreachable
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore
from localdev.servers import bound_socket
from modelops.publish import BuiltBundle


def test_loads_latest_and_pinned_versions(
    fresh_bucket: str, upload: Callable[[str, str], None], service_for: Callable[..., Any]
) -> None:
    upload(fresh_bucket, "m")
    for version in ("latest", "7"):
        bundle = service_for(fresh_bucket, version=version).store.get()
        assert bundle.manifest.version == "7" and bundle.engine.name == "litert"


def test_concurrent_first_requests_load_once(
    fresh_bucket: str, upload: Callable[[str, str], None], tmp_path: Path
) -> None:
    upload(fresh_bucket, "m")
    loads = []

    def counting_loader(kind: str, path: str) -> Any:
        loads.append(path)
        time.sleep(0.2)  # widen the race window
        return load_engine(kind, path)

    store = ModelStore(boto3.client("s3"), BundleLocation(fresh_bucket, "m"), "litert",
                       str(tmp_path), engine_loader=counting_loader)  # fmt: skip
    barrier = threading.Barrier(8)

    def first_request() -> object:
        barrier.wait()
        return store.get()

    threads_results: list[object] = []
    threads = [threading.Thread(target=lambda: threads_results.append(first_request()))
               for _ in range(8)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert len(threads_results) == 8 and len({id(r) for r in threads_results}) == 1


def test_download_is_cached_and_verified_in_tmp(
    fresh_bucket: str, upload: Callable[[str, str], None], service_for: Callable[..., Any],
    bundle: BuiltBundle, tmp_path: Path,
) -> None:  # fmt: skip
    upload(fresh_bucket, "m")
    service_for(fresh_bucket).store.get()
    sha = bundle.manifest.artifacts["tflite"].sha256
    cached = tmp_path / "cache" / f"{sha}-model.tflite"
    assert cached.read_bytes() == bundle.files["model.tflite"]
    assert not list((tmp_path / "cache").glob("*.partial"))
    cached.write_bytes(b"tampered")  # a bad cached copy is replaced, not trusted
    service_for(fresh_bucket).store.get()
    assert cached.read_bytes() == bundle.files["model.tflite"]


def test_missing_bundle_bucket_or_version_is_not_found(
    fresh_bucket: str, upload: Callable[[str, str], None], service_for: Callable[..., Any]
) -> None:
    with pytest.raises(ModelNotFound):
        service_for(fresh_bucket).store.get()
    with pytest.raises(ModelNotFound):
        service_for("no-such-bucket-here").store.get()
    upload(fresh_bucket, "m")
    with pytest.raises(ModelNotFound):
        service_for(fresh_bucket, version="8").store.get()


def test_403_without_list_permission_counts_as_missing(tmp_path: Path) -> None:
    class DeniedS3:  # what real S3 answers for a missing key without s3:ListBucket
        def get_object(self, **_: object) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied"}}, "GetObject")

    store = ModelStore(DeniedS3(), BundleLocation("b", "m"), "litert", str(tmp_path))
    with pytest.raises(ModelNotFound):
        store.get()


def test_checksum_mismatch_is_corrupt_then_recovers(
    fresh_bucket: str, upload: Callable[[str, str], None], service_for: Callable[..., Any],
    bundle: BuiltBundle,
) -> None:  # fmt: skip
    upload(fresh_bucket, "m")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=fresh_bucket, Key="m/7/model.tflite", Body=b"corrupted bytes")
    service = service_for(fresh_bucket)
    with pytest.raises(ModelCorrupt):
        service.store.get()
    assert service.health() == {"status": "ok", "model_loaded": False,
                                "last_load_error": "model_unavailable",
                                "refresh": {"interval_seconds": 60.0, "last": None,
                                            "last_change": None}}  # fmt: skip
    s3.put_object(Bucket=fresh_bucket, Key="m/7/model.tflite", Body=bundle.files["model.tflite"])
    assert service.store.get().manifest.version == "7"  # a failed load is not cached


def test_corrupt_manifest_and_unloadable_model_are_corrupt(
    fresh_bucket: str, upload: Callable[[str, str], None], service_for: Callable[..., Any],
    bundle: BuiltBundle,
) -> None:  # fmt: skip
    upload(fresh_bucket, "m")
    s3 = boto3.client("s3")
    s3.put_object(Bucket=fresh_bucket, Key="m/7/manifest.json", Body=b'{"format_version": 1')
    with pytest.raises(ModelCorrupt):
        service_for(fresh_bucket).store.get()
    # A file whose checksum matches but that no engine can load:
    garbage = b"\x00" * 64
    import dataclasses
    import hashlib

    from chalicelib.manifest import Artifact

    manifest = dataclasses.replace(bundle.manifest, artifacts={
        **bundle.manifest.artifacts,
        "tflite": Artifact("model.tflite", hashlib.sha256(garbage).hexdigest(), len(garbage)),
    })  # fmt: skip
    s3.put_object(Bucket=fresh_bucket, Key="m/7/model.tflite", Body=garbage)
    s3.put_object(Bucket=fresh_bucket, Key="m/7/manifest.json", Body=manifest.dumps())
    with pytest.raises(ModelCorrupt):
        service_for(fresh_bucket).store.get()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a stalled S3)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A port bound but not listening: connections are refused while the test runs."""
    with bound_socket() as sock:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    "endpoint_kind",
    [pytest.param("stalled", marks=pytest.mark.slow), "refused"],  # stalled waits ~4 s
)
def test_unreachable_storage_fails_fast(
    endpoint_kind: str, silent_server: str, refused_url: str, service_for: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    url = silent_server if endpoint_kind == "stalled" else refused_url
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
    service: PredictionService = service_for("any-bucket")
    started = time.monotonic()
    with pytest.raises(StorageUnreachable):
        service.store.get()
    assert time.monotonic() - started < 10  # well inside Lambda's 10 s init budget
