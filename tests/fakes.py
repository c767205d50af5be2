"""In-memory fakes for the unit tier, passed in through constructors (no patching).

- `FakeS3`: the boto3 S3 client calls the project makes, over a dict, raising real
  `botocore` exceptions with the codes S3 uses; `fail()` injects any other error.
  Objects have S3's ETag (quoted MD5) and `get_object(IfNoneMatch=...)` answers 304.
- `FakeEngine` / `FakeEngineLoader`: an engine with fixed outputs, and the
  `engine_loader` a `ModelStore` takes, counting loads.
- `make_bundle` / `put_bundle`: a valid bundle (manifest + artifacts with correct
  sha256) and writing it into a `FakeS3` in the layout the store reads.
- `make_store` / `make_service`: the real store and service over these fakes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from chalicelib.bundle_layout import BundleLayout
from chalicelib.engines.registry import ENGINES
from chalicelib.manifest import Artifact, BundleManifest, ModelInput
from chalicelib.observer import Observer, log_event
from chalicelib.refresh import RefreshSchedule
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore
from modelops.publish import BuiltBundle

FIXTURES = Path(__file__).resolve().parents[1] / "layer_build" / "fixtures"
TINY_TFLITE = FIXTURES / "tiny.tflite"
TINY_EXPECTED = FIXTURES / "tiny_expected.json"


def client_error(code: str, status: int, operation: str, message: str = "") -> ClientError:
    """A ClientError shaped like botocore's for an S3 error response."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message or code},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


def internal_error(operation: str = "GetObject") -> ClientError:
    """S3's 500 InternalError (retryable, not "missing")."""
    return client_error("InternalError", 500, operation, "We encountered an internal error.")


def connection_error() -> BotoCoreError:
    """What botocore raises when the endpoint cannot be reached."""
    return EndpointConnectionError(endpoint_url="https://s3.fake.amazonaws.com")


class FakeBody:
    """A StreamingBody stand-in; `fail_with` raises after the first chunk (a broken stream)."""

    def __init__(self, data: bytes, fail_with: Exception | None = None) -> None:
        self._data = data
        self._fail_with = fail_with

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        for start in range(0, max(len(self._data), 1), chunk_size):
            yield self._data[start : start + chunk_size]
            if self._fail_with is not None:
                raise self._fail_with

    def read(self) -> bytes:
        if self._fail_with is not None:
            raise self._fail_with
        return self._data

    def close(self) -> None:
        pass


@dataclass
class _Fault:
    error: Exception
    times: int | None  # None: every call
    mid_stream: bool


@dataclass
class FakeS3:
    """A dict-backed S3 client: {(bucket, key): bytes}, plus a log of calls."""

    buckets: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    page_size: int = 1000  # list_objects_v2's MaxKeys default
    _faults: dict[str | None, _Fault] = field(default_factory=dict)

    def fail(
        self,
        error: Exception,
        key: str | None = None,
        *,
        times: int | None = None,
        mid_stream: bool = False,
    ) -> None:
        """Raise `error` on calls for `key` (None: any key), `times` times (None: always).
        With `mid_stream`, get_object succeeds and its body breaks while streaming."""
        self._faults[key] = _Fault(error, times, mid_stream)

    def create_bucket(self, *, Bucket: str, **_: Any) -> dict[str, Any]:
        self.buckets.add(Bucket)
        return {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes | str, **_: Any) -> dict[str, Any]:
        self._call("PutObject", Bucket, Key)
        self._check_bucket(Bucket, "PutObject")
        self.objects[(Bucket, Key)] = Body.encode() if isinstance(Body, str) else bytes(Body)
        return {"ETag": self.etag(Bucket, Key)}

    def etag(self, bucket: str, key: str) -> str:
        """S3's ETag of a single-part object: its MD5, quoted."""
        return f'"{hashlib.md5(self.objects[(bucket, key)]).hexdigest()}"'

    def get_object(
        self, *, Bucket: str, Key: str, IfNoneMatch: str | None = None, **_: Any
    ) -> dict[str, Any]:
        fault = self._call("GetObject", Bucket, Key)
        self._check_bucket(Bucket, "GetObject")
        if (Bucket, Key) not in self.objects:
            raise client_error("NoSuchKey", 404, "GetObject", "The specified key does not exist.")
        data, etag = self.objects[(Bucket, Key)], self.etag(Bucket, Key)
        if IfNoneMatch == etag:  # what botocore raises for S3's (and moto's) 304
            raise client_error("304", 304, "GetObject", "Not Modified")
        return {"Body": FakeBody(data, fault), "ContentLength": len(data), "ETag": etag}

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._call("HeadObject", Bucket, Key)
        if Bucket not in self.buckets or (Bucket, Key) not in self.objects:
            raise client_error("404", 404, "HeadObject", "Not Found")  # HEAD has no body
        return {"ContentLength": len(self.objects[(Bucket, Key)])}

    def list_objects_v2(
        self, *, Bucket: str, Prefix: str = "", ContinuationToken: str = "", **_: Any
    ) -> dict[str, Any]:
        """One page of at most `page_size` keys; the token is the page's last key."""
        self._call("ListObjectsV2", Bucket, Prefix)
        self._check_bucket(Bucket, "ListObjectsV2")
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix))
        keys = [k for k in keys if k > ContinuationToken]
        page, truncated = keys[: self.page_size], len(keys) > self.page_size
        contents = [{"Key": k, "Size": len(self.objects[(Bucket, k)])} for k in page]
        more = {"NextContinuationToken": page[-1]} if truncated else {}
        return {"KeyCount": len(page), "IsTruncated": truncated, "Contents": contents} | more

    def keys(self, bucket: str) -> set[str]:
        return {k for b, k in self.objects if b == bucket}

    def _call(self, operation: str, bucket: str, key: str) -> Exception | None:
        """Record the call; raise an injected fault, or return it if it is mid-stream."""
        self.calls.append((operation, bucket, key))
        fault = self._faults.get(key) or self._faults.get(None)
        if fault is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self._faults = {k: f for k, f in self._faults.items() if f is not fault}
        if fault.mid_stream:
            return fault.error
        raise fault.error

    def _check_bucket(self, bucket: str, operation: str) -> None:
        if bucket not in self.buckets:
            raise client_error("NoSuchBucket", 404, operation, "The bucket does not exist")


class FakeEngine:
    """Answers a fixed, valid probability row per input row: row i's winner is i mod n;
    or, given `rows`, input row i gets `rows[i % len(rows)]` (any task's outputs).

    `fail_after` successful calls it raises `error` (the store's load probe is call 1).
    """

    name = "fake"

    def __init__(
        self,
        outputs: int = 3,
        *,
        error: Exception | None = None,
        fail_after: int = 0,
        rows: Sequence[Sequence[float]] | None = None,
    ) -> None:
        self.rows = None if rows is None else np.asarray(rows, dtype=np.float32)
        self.outputs = outputs if self.rows is None else self.rows.shape[1]
        self.error = error
        self.fail_after = fail_after
        self.calls: list[Mapping[str, np.ndarray]] = []

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        self.calls.append(inputs)
        if self.error is not None and len(self.calls) > self.fail_after:
            raise self.error
        rows = next(iter(inputs.values())).shape[0]
        if self.rows is not None:
            return self.rows[np.arange(rows) % len(self.rows)]
        probabilities = np.full((rows, self.outputs), 0.5 / (self.outputs - 1), np.float32)
        probabilities[np.arange(rows), np.arange(rows) % self.outputs] = 0.5
        return probabilities


class FakeEngineLoader:
    """A ModelStore `engine_loader`: hands out `engine`, records what it was asked to load.

    `error`, if set, is raised on load instead (a file no framework can read)."""

    def __init__(self, engine: Any = None, error: Exception | None = None) -> None:
        self.engine = engine if engine is not None else FakeEngine()
        self.error = error
        self.loads: list[tuple[str, bytes]] = []  # (engine kind, the file's bytes)

    def __call__(self, kind: str, path: str) -> Any:
        self.loads.append((kind, Path(path).read_bytes()))
        if self.error is not None:
            raise self.error
        return self.engine


def make_bundle(
    *,
    version: str = "1",
    name: str = "tiny",
    labels: Sequence[str] = ("A", "B", "C"),
    features: Sequence[str] = ("x0", "x1", "x2", "x3"),
    artifacts: dict[str, bytes] | None = None,
    inputs: Sequence[ModelInput] = (),
    task: str = "classification",
    outputs: Sequence[str] = (),
    threshold: float | None = None,
) -> BuiltBundle:
    """A valid bundle: `artifacts` maps engine kind -> file bytes (default: a fake
    LiteRT file), named and keyed as the engine registry says, with true sha256;
    `inputs` as a manifest records several (default: none recorded, one float32 input)."""
    contents = artifacts if artifacts is not None else {"litert": b"not really a tflite file"}
    files: dict[str, bytes] = {}
    entries: dict[str, Artifact] = {}
    for kind, content in contents.items():
        spec = ENGINES[kind]
        files[spec.file_name()] = content
        entries[spec.artifact] = Artifact(
            spec.file_name(), hashlib.sha256(content).hexdigest(), len(content)
        )
    manifest = BundleManifest(
        name=name,
        version=version,
        encoded_features=tuple(features),
        labels=tuple(labels),
        artifacts=entries,
        created_at="2026-11-25T00:00:00Z",
        inputs=tuple(inputs),
        task=task,
        outputs=tuple(outputs),
        threshold=threshold,
    )
    manifest.check()
    return BuiltBundle(manifest, files, 0.0)


def tiny_litert_bundle(version: str = "1") -> BuiltBundle:
    """The committed tiny LiteRT fixture (113 inputs, 7 outputs) as a bundle."""
    width = len(tiny_expected()["inputs"][0])
    return make_bundle(
        version=version,
        labels=tuple("ABCDEFG"),
        features=tuple(f"f{i}" for i in range(width)),
        artifacts={"litert": TINY_TFLITE.read_bytes()},
    )


def tiny_expected() -> dict[str, Any]:
    """The fixture's inputs and the probabilities Keras gave for them."""
    expected: dict[str, Any] = json.loads(TINY_EXPECTED.read_text())
    return expected


def put_bundle(
    s3: FakeS3, bucket: str, prefix: str, bundle: BuiltBundle, *, promote: bool = True
) -> None:
    """Write `bundle` into `s3` where a store reading `prefix` looks (BundleLayout)."""
    layout = BundleLayout(prefix)
    version = bundle.manifest.version
    s3.buckets.add(bucket)
    for file_name, content in bundle.files.items():
        s3.put_object(Bucket=bucket, Key=layout.file_key(version, file_name), Body=content)
    s3.put_object(Bucket=bucket, Key=layout.manifest_key(version), Body=bundle.manifest.dumps())
    if promote:
        s3.put_object(Bucket=bucket, Key=layout.pointer_key(), Body=version.encode())


BUCKET = "models"
PREFIX = "team/loan-grade"


def s3_holding(*bundles: BuiltBundle) -> FakeS3:
    """A fake S3 with `bundles` published, in order, under BUCKET/PREFIX."""
    s3 = FakeS3(buckets={BUCKET})
    for bundle in bundles:
        put_bundle(s3, BUCKET, PREFIX, bundle)
    return s3


def make_store(
    s3: FakeS3,
    cache_dir: Path,
    loader: Any = None,
    *,
    engine: str = "litert",
    version: str = "latest",
    prefix: str = PREFIX,
    refresh: RefreshSchedule | None = None,
    events: Observer | None = None,
    loads: Any = None,
) -> ModelStore:
    """A ModelStore over `s3` (bucket BUCKET) with a fake engine loader by default;
    `refresh` makes a store following LATEST re-read it on that schedule; `events` gets
    refresh events and `loads` (a LoadObserver) load events."""
    return ModelStore(
        s3,
        BundleLocation(BUCKET, prefix, version),
        engine,
        str(cache_dir),
        engine_loader=loader if loader is not None else FakeEngineLoader(),
        refresh=refresh,
        events=events if events is not None else log_event,
        observer=loads,
    )


class FakeClock:
    """A monotonic clock that moves only when told (`advance`)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RecordingObserver:
    """An observer that keeps every event: [(name, fields)]."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None:
        self.events.append((event, dict(fields)))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [fields for name, fields in self.events if name == event]


def make_service(
    s3: FakeS3, cache_dir: Path, loader: Any = None, *, max_records: int = 1000, **store: Any
) -> PredictionService:
    """A PredictionService on `make_store(...)`."""
    return PredictionService(make_store(s3, cache_dir, loader, **store), max_records)
