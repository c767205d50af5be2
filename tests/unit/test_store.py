"""ModelStore over the in-memory S3 fake: every way a load succeeds or fails, no I/O
beyond its cache directory. The moto-over-HTTP tier (tests/functional) covers real S3."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ReadTimeoutError

from chalicelib.bundle_layout import BundleLayout
from chalicelib.engines import load_engine
from chalicelib.errors import ModelCorrupt, ModelNotFound, RuntimeMismatch, StorageUnreachable
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    FakeS3,
    client_error,
    connection_error,
    internal_error,
    make_bundle,
    make_store,
    put_bundle,
    tiny_expected,
    tiny_litert_bundle,
)

LAYOUT = BundleLayout(PREFIX)


@pytest.fixture
def s3() -> FakeS3:
    return FakeS3(buckets={BUCKET})


def test_follows_latest_and_hands_the_verified_file_to_the_engine(
    s3: FakeS3, tmp_path: Path
) -> None:
    bundle = make_bundle(version="7")
    put_bundle(s3, BUCKET, PREFIX, bundle)
    loader = FakeEngineLoader()
    loaded = make_store(s3, tmp_path, loader).get()
    assert loaded.manifest == bundle.manifest
    assert loaded.engine is loader.engine
    assert loader.loads == [("litert", bundle.files["model.tflite"])]


def test_a_pinned_version_ignores_latest(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="1"))
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="2"))
    assert make_store(s3, tmp_path, version="1").get().manifest.version == "1"
    assert make_store(s3, tmp_path).get().manifest.version == "2"


def test_each_engine_gets_its_own_artifact(s3: FakeS3, tmp_path: Path) -> None:
    bundle = make_bundle(artifacts={"litert": b"lite bytes", "keras": b"keras bytes"})
    put_bundle(s3, BUCKET, PREFIX, bundle)
    loader = FakeEngineLoader()
    make_store(s3, tmp_path, loader, engine="keras").get()
    assert loader.loads == [("keras", b"keras bytes")]


def test_a_bundle_for_another_engine_names_the_runtime_it_needs(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle(artifacts={"keras": b"a big keras file"}))
    loader = FakeEngineLoader()
    with pytest.raises(RuntimeMismatch) as raised:
        make_store(s3, tmp_path, loader, engine="litert").get()
    assert raised.value.status == 503 and raised.value.code == "model_unavailable"
    assert "needs the tensorflow runtime flavor (MODEL_ENGINE=keras, stage dev-tensorflow/" in (
        raised.value.message
    )
    assert loader.loads == []  # decided from the manifest: the model file is never fetched
    assert [key for op, _, key in s3.calls if op == "GetObject"][-1].endswith("manifest.json")


def test_a_bundle_no_engine_can_load_is_corrupt(s3: FakeS3, tmp_path: Path) -> None:
    bundle = make_bundle(artifacts={})
    put_bundle(s3, BUCKET, PREFIX, bundle)
    with pytest.raises(ModelCorrupt, match="no artifact any engine loads"):
        make_store(s3, tmp_path).get()


def test_the_real_litert_engine_loads_the_committed_fixture(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, tiny_litert_bundle())
    loaded = make_store(s3, tmp_path, load_engine).get()
    expected = tiny_expected()
    got = loaded.engine.predict({"input": np.asarray(expected["inputs"], dtype=np.float32)})
    assert loaded.engine.name == "litert"
    assert np.abs(got - np.asarray(expected["probabilities"])).max() <= 1e-5


def test_loads_once_then_serves_from_memory(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle())
    loader = FakeEngineLoader()
    store = make_store(s3, tmp_path, loader)
    assert store.loaded is None
    first = store.get()
    calls = len(s3.calls)
    assert store.get() is first and store.loaded is first
    assert len(s3.calls) == calls and len(loader.loads) == 1


def test_concurrent_first_calls_load_once(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle())

    class SlowLoader(FakeEngineLoader):
        def __call__(self, kind: str, path: str) -> Any:
            time.sleep(0.05)  # widen the race window
            return super().__call__(kind, path)

    loader = SlowLoader()
    store = make_store(s3, tmp_path, loader)
    barrier = threading.Barrier(6)
    results: list[object] = []

    def first_call() -> None:
        barrier.wait()
        results.append(store.get())

    threads = [threading.Thread(target=first_call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(loader.loads) == 1
    assert len(results) == 6 and len({id(r) for r in results}) == 1


def test_a_failed_load_is_retried_on_the_next_call(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle())
    s3.fail(internal_error(), times=1)
    store = make_store(s3, tmp_path)
    with pytest.raises(StorageUnreachable):
        store.get()
    assert store.loaded is None and store.last_error == "model_unavailable"
    assert store.get().manifest.version == "1"
    assert store.last_error is None


@pytest.mark.parametrize(
    "error",
    [
        internal_error(),
        client_error("SlowDown", 503, "GetObject"),
        connection_error(),
        ReadTimeoutError(endpoint_url="https://s3.fake.amazonaws.com"),
    ],
    ids=["500-InternalError", "503-SlowDown", "connection", "read-timeout"],
)
def test_s3_errors_other_than_missing_are_unreachable(
    s3: FakeS3, tmp_path: Path, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle())
    s3.fail(error)
    with pytest.raises(StorageUnreachable) as raised:
        make_store(s3, tmp_path).get()
    assert raised.value.status == 503
    assert BUCKET not in raised.value.message and PREFIX not in raised.value.message
    assert f"s3://{BUCKET}/{LAYOUT.pointer_key()}" in caplog.text  # the log has the where


def test_a_stream_that_breaks_mid_download_is_unreachable_and_leaves_no_file(
    s3: FakeS3, tmp_path: Path
) -> None:
    bundle = make_bundle(artifacts={"litert": b"x" * (3 << 20)})  # several 1 MiB chunks
    put_bundle(s3, BUCKET, PREFIX, bundle)
    s3.fail(ReadTimeoutError(endpoint_url="e"), LAYOUT.file_key("1", "model.tflite"),
            mid_stream=True, times=1)  # fmt: skip
    store = make_store(s3, tmp_path)
    with pytest.raises(StorageUnreachable):
        store.get()
    assert list(tmp_path.iterdir()) == []
    assert store.get().manifest.version == "1"


@pytest.mark.parametrize(
    "missing",
    ["no-latest", "no-version", "no-bucket", "no-artifact", "access-denied"],
)
def test_a_missing_bundle_is_not_found(s3: FakeS3, tmp_path: Path, missing: str) -> None:
    bundle = make_bundle()
    version = "latest"
    if missing == "no-version":
        put_bundle(s3, BUCKET, PREFIX, bundle)
        version = "8"
    elif missing == "no-bucket":
        s3.buckets.clear()
    elif missing == "no-artifact":
        put_bundle(s3, BUCKET, PREFIX, bundle)
        del s3.objects[(BUCKET, LAYOUT.file_key("1", "model.tflite"))]
    elif missing == "access-denied":  # real S3 without s3:ListBucket
        put_bundle(s3, BUCKET, PREFIX, bundle)
        s3.fail(client_error("AccessDenied", 403, "GetObject"))
    with pytest.raises(ModelNotFound) as raised:
        make_store(s3, tmp_path, version=version).get()
    assert raised.value.status == 503 and raised.value.code == "model_unavailable"


@pytest.mark.parametrize("pointer", [b"", b"  \n", b"../../etc", b"a b", b"latest", b"\xff\xfe"])
def test_a_malformed_latest_pointer_is_corrupt(s3: FakeS3, tmp_path: Path, pointer: bytes) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle())
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.pointer_key(), Body=pointer)
    with pytest.raises(ModelCorrupt, match="version pointer is malformed"):
        make_store(s3, tmp_path).get()


def test_a_manifest_describing_another_version_is_corrupt(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="2"))
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.manifest_key("3"),
                  Body=s3.objects[(BUCKET, LAYOUT.manifest_key("2"))])  # fmt: skip
    with pytest.raises(ModelCorrupt, match="describes another version"):
        make_store(s3, tmp_path, version="3").get()


@pytest.mark.parametrize("manifest", [b"", b"{", b"[]", b'{"format_version": 2}'])
def test_an_invalid_manifest_is_corrupt(s3: FakeS3, tmp_path: Path, manifest: bytes) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle())
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.manifest_key("1"), Body=manifest)
    with pytest.raises(ModelCorrupt, match="manifest of model version 1 is invalid"):
        make_store(s3, tmp_path).get()


def test_a_checksum_mismatch_is_corrupt_caches_nothing_then_recovers(
    s3: FakeS3, tmp_path: Path
) -> None:
    bundle = make_bundle()
    put_bundle(s3, BUCKET, PREFIX, bundle)
    key = LAYOUT.file_key("1", "model.tflite")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"tampered in transit")
    store = make_store(s3, tmp_path)
    with pytest.raises(ModelCorrupt, match="checksum"):
        store.get()
    assert list(tmp_path.iterdir()) == []  # neither the bad file nor a .partial
    s3.put_object(Bucket=BUCKET, Key=key, Body=bundle.files["model.tflite"])
    assert store.get().manifest.version == "1"


def test_a_verified_cached_copy_is_reused_and_a_bad_one_replaced(
    s3: FakeS3, tmp_path: Path
) -> None:
    bundle = make_bundle()
    put_bundle(s3, BUCKET, PREFIX, bundle)
    key = LAYOUT.file_key("1", "model.tflite")
    make_store(s3, tmp_path).get()
    cached = tmp_path / f"{bundle.manifest.artifacts['tflite'].sha256}-model.tflite"
    assert cached.read_bytes() == bundle.files["model.tflite"]
    make_store(s3, tmp_path).get()
    assert s3.calls.count(("GetObject", BUCKET, key)) == 1
    cached.write_bytes(b"tampered on disk")
    make_store(s3, tmp_path).get()
    assert cached.read_bytes() == bundle.files["model.tflite"]


def test_an_engine_that_cannot_load_the_file_is_corrupt_and_logged(
    s3: FakeS3, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle())
    loader = FakeEngineLoader(error=ValueError("flatbuffer: bad magic"))
    with caplog.at_level(logging.ERROR), pytest.raises(ModelCorrupt, match="could not be loaded"):
        make_store(s3, tmp_path, loader).get()
    assert "bad magic" in caplog.text


def test_the_real_litert_engine_refuses_a_file_that_is_not_a_model(
    s3: FakeS3, tmp_path: Path
) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle(artifacts={"litert": b"\x00" * 64}))
    with pytest.raises(ModelCorrupt, match="could not be loaded"):
        make_store(s3, tmp_path, load_engine).get()


@pytest.mark.parametrize("outputs", [2, 4])
def test_an_output_width_that_does_not_match_the_labels_is_corrupt(
    s3: FakeS3, tmp_path: Path, outputs: int
) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle(labels=("A", "B", "C")))
    loader = FakeEngineLoader(FakeEngine(outputs=outputs))
    expected = f"to {outputs} outputs; the manifest.s classification task expects 3"
    with pytest.raises(ModelCorrupt, match=expected):
        make_store(s3, tmp_path, loader).get()


def test_the_load_probe_feeds_the_manifests_width(s3: FakeS3, tmp_path: Path) -> None:
    put_bundle(s3, BUCKET, PREFIX, make_bundle(features=("a", "b", "c", "d", "e")))
    engine = FakeEngine()
    make_store(s3, tmp_path, FakeEngineLoader(engine)).get()
    assert [{n: a.shape for n, a in probe.items()} for probe in engine.calls] == [{"input": (1, 5)}]
    assert engine.calls[0]["input"].dtype == np.float32
