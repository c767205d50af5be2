"""Model store: S3 -> /tmp -> in-memory bundle, once per container.

The bundle loads lazily on first use under a lock, so concurrent first requests
load it once. A failed load is not cached: the next request tries again.
Client-facing messages name no bucket or key; the log has the details.

Following LATEST with a `RefreshSchedule`, a warm store re-reads the pointer with a
conditional GET (If-None-Match: its ETag) once per interval on the request path. A new
version is loaded in full beside the current one, then swapped in by one reference
assignment: a request keeps the bundle object `get()` gave it. A failed refresh keeps
the current bundle and is retried at the next interval. A pinned version never refreshes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.bundle_layout import FOLLOW_LATEST, BundleLayout, is_version_name
from chalicelib.engines import InferenceEngine, engine_spec, load_engine
from chalicelib.engines.registry import engines_for, serving_engine
from chalicelib.errors import (
    CacheUnwritable,
    ModelCorrupt,
    ModelNotFound,
    RuntimeMismatch,
    StorageUnreachable,
)
from chalicelib.manifest import BundleManifest, ManifestError
from chalicelib.model_inputs import ModelInputs
from chalicelib.observer import Observer, log_event, notify
from chalicelib.records import DEFAULT_MAX_DEVIATIONS, RecordReader
from chalicelib.refresh import RefreshSchedule, RefreshStatus, failure_kind
from chalicelib.s3_errors import error_code, is_missing
from chalicelib.tasks import task_named
from chalicelib.version_pointer import Pointer, PointerMalformed, PointerMissing, read_latest

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class BundleLocation:
    """Which bundle to serve: bucket, prefix (keys per `BundleLayout`) and version
    ("latest" follows the LATEST pointer)."""

    bucket: str
    prefix: str
    version: str = FOLLOW_LATEST

    @property
    def layout(self) -> BundleLayout:
        return BundleLayout(self.prefix)


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model version: its manifest, its engine and the reader for its records."""

    manifest: BundleManifest
    engine: InferenceEngine
    reader: RecordReader
    load_seconds: float
    #: The registry kind of `engine` ("" where a test builds a bundle by hand).
    engine_kind: str = ""

    @property
    def inputs(self) -> ModelInputs:
        """Splits the reader's matrix into the engine's inputs."""
        return self.reader.inputs


class LoadObserver(Protocol):
    """Told about each load (chalicelib.observability.Telemetry is one)."""

    def load_started(self, location: str) -> None: ...
    def load_done(self, name: str, version: str, engine: str, labels: Sequence[str],
                  seconds: float) -> None: ...  # fmt: skip
    def load_failed(self, error: BaseException, seconds: float) -> None: ...


EngineLoader = Callable[[str, str], InferenceEngine]
#: Creates a new, empty file in a directory: (open binary handle, its path).
FileCreator = Callable[[str], tuple[IO[bytes], str]]


def create_partial_file(directory: str) -> tuple[IO[bytes], str]:
    """A fresh `*.partial` file in `directory` for a download in progress."""
    handle, path = tempfile.mkstemp(dir=directory, suffix=".partial")
    return os.fdopen(handle, "wb"), path


class ModelStore:
    """Loads the bundle at `location` with `s3_client` into memory, once."""

    def __init__(
        self,
        s3_client: Any,
        location: BundleLocation,
        engine: str,
        cache_dir: str,
        engine_loader: EngineLoader = load_engine,
        *,
        max_deviations: float = DEFAULT_MAX_DEVIATIONS,
        create_file: FileCreator = create_partial_file,
        observer: LoadObserver | None = None,
        refresh: RefreshSchedule | None = None,
        events: Observer = log_event,
    ) -> None:
        self._s3 = s3_client
        self.location = location
        self._configured_engine = engine
        self._cache_dir = cache_dir
        self._engine_loader = engine_loader
        self._max_deviations = max_deviations
        self._create_file = create_file
        self._observer = observer
        self._events = events
        self._bundle: ModelBundle | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        #: None when this store never refreshes (no schedule, or a pinned version).
        self.refresh = refresh if location.version == FOLLOW_LATEST else None
        self._pointer_etag: str | None = None
        self.last_refresh: RefreshStatus | None = None
        #: The last check that swapped in another version (kept past later checks).
        self.last_change: RefreshStatus | None = None

    @property
    def loaded(self) -> ModelBundle | None:
        """The bundle if it is already in memory, without loading it."""
        return self._bundle

    def get(self) -> ModelBundle:
        """The bundle, loading it on first use; raises ModelUnavailable subclasses.

        When a refresh is due, this caller checks the pointer (and loads a new version)
        first; concurrent callers meanwhile get the current bundle without waiting.
        """
        bundle = self._bundle
        if bundle is None:
            return self._first_load()
        if self.refresh is not None and self.refresh.claim():
            try:
                self._refresh_from(bundle)
            finally:
                self.refresh.release()
            return self._bundle or bundle
        return bundle

    def _first_load(self) -> ModelBundle:
        with self._lock:
            if self._bundle is None:
                try:
                    pointer = self._read_pointer(None) if self.refresh is not None else None
                    self._bundle = self._observed_load(pointer.version if pointer else None)
                except Exception as exc:
                    self.last_error = getattr(exc, "code", "load_failed")
                    raise
                self.last_error = None
                if self.refresh is not None and pointer is not None:
                    self._pointer_etag = pointer.etag
                    self.refresh.restart()
            return self._bundle

    def _observed_load(self, version: str | None = None) -> ModelBundle:
        """`_load`, told to the load observer (first loads and refreshes alike)."""
        started = time.perf_counter()
        if self._observer:
            where = f"{self.location.prefix}@{version or self.location.version}"
            self._observer.load_started(where)
        try:
            bundle = self._load(version)
        except Exception as exc:
            if self._observer:
                self._observer.load_failed(exc, time.perf_counter() - started)
            raise
        if self._observer:
            manifest = bundle.manifest
            self._observer.load_done(manifest.name, manifest.version, bundle.engine.name,
                                     manifest.labels, bundle.load_seconds)  # fmt: skip
        return bundle

    def _refresh_from(self, current: ModelBundle) -> None:
        """Check LATEST; load and swap in a new version, or keep `current` on failure."""
        assert self.refresh is not None
        started = time.perf_counter()
        serving = current.manifest.version
        try:
            pointer = self._read_pointer(self._pointer_etag)
            if pointer is None or pointer.version == serving:
                if pointer is not None:
                    self._pointer_etag = pointer.etag
                self._refreshed("unchanged", current, serving, started)
                return
            bundle = self._observed_load(pointer.version)
        except Exception as exc:  # whatever failed, the current version keeps serving
            code = failure_kind(exc)
            logger.warning("model refresh failed (%s); still serving version %s", code, serving)
            self._refreshed("failed", current, serving, started, code)
            return
        self._bundle = bundle  # the swap: one reference assignment
        self._pointer_etag = pointer.etag
        self._refreshed("ok", bundle, serving, started)

    def _refreshed(
        self, outcome: str, bundle: ModelBundle, previous: str, started: float,
        code: str | None = None,
    ) -> None:  # fmt: skip
        assert self.refresh is not None
        version, seconds = bundle.manifest.version, time.perf_counter() - started
        self.last_refresh = RefreshStatus(self.refresh.now(), outcome, version, seconds, code)
        if outcome == "ok":
            self.last_change = self.last_refresh
        notify(self._events, "model_refresh", {
            "model": bundle.manifest.name, "outcome": outcome, "code": code,
            "serving_version": version, "previous_version": previous,
            "seconds": round(seconds, 6),
        })  # fmt: skip

    @property
    def engine_kind(self) -> str:
        """The engine serving the loaded version: the configured one, or another its
        runtime carries (registry.serving_engine); the configured one before any load."""
        bundle = self._bundle
        return (
            bundle.engine_kind
            if bundle is not None and bundle.engine_kind
            else (self._configured_engine)
        )

    def _load(self, version: str | None = None) -> ModelBundle:
        """Load `version` (default: the location's, following LATEST) in full."""
        started = time.perf_counter()
        version = version or self._resolve_version()
        manifest = self._read_manifest(version)
        kind = serving_engine(self._configured_engine, manifest.artifacts)
        if kind is None:
            raise _no_artifact_for(self._configured_engine, manifest)
        artifact = manifest.artifacts[engine_spec(kind).artifact]
        path = self._fetch(self.location.layout.file_key(version, artifact.file), artifact.sha256)
        reader = RecordReader(manifest, self._max_deviations)
        engine = self._start_engine(kind, path, manifest, reader.inputs)
        seconds = time.perf_counter() - started
        logger.info(
            "loaded model %s version %s (%s engine) in %.3f s",
            manifest.name,
            manifest.version,
            engine.name,
            seconds,
        )
        return ModelBundle(manifest, engine, reader, seconds, kind)

    def _resolve_version(self) -> str:
        version = self.location.version
        if version == FOLLOW_LATEST:
            pointer = self._read_pointer(None)
            assert pointer is not None  # an unconditional read always has a body
            return pointer.version
        if not is_version_name(version):
            raise ModelCorrupt("The model's version pointer is malformed.")
        return version

    def _read_pointer(self, etag: str | None) -> Pointer | None:
        """LATEST's version and ETag; None if its ETag is still `etag` (304)."""
        key = self.location.layout.pointer_key()
        with self._s3_errors(key):
            try:
                return read_latest(self._s3, self.location.bucket, self.location.layout, etag)
            except PointerMissing as exc:
                logger.error("S3 404/403 for s3://%s/%s", self.location.bucket, key)
                raise ModelNotFound(
                    "The model bundle was not found at the configured location."
                ) from exc
            except PointerMalformed as exc:
                raise ModelCorrupt("The model's version pointer is malformed.") from exc

    def _read_manifest(self, version: str) -> BundleManifest:
        try:
            manifest = BundleManifest.loads(self._get(self.location.layout.manifest_key(version)))
        except ManifestError as exc:
            logger.error("manifest of version %s is invalid: %s", version, exc)
            raise ModelCorrupt(f"The manifest of model version {version} is invalid.") from exc
        if manifest.version != version:
            raise ModelCorrupt(f"The manifest at version {version} describes another version.")
        return manifest

    def _start_engine(
        self, kind: str, path: str, manifest: BundleManifest, inputs: ModelInputs
    ) -> InferenceEngine:
        """Load the engine and prove it maps the manifest's inputs to its task's outputs."""
        width, outputs = (
            len(manifest.encoded_features),
            task_named(manifest.task).output_width(manifest),
        )
        try:
            engine = self._engine_loader(kind, path)
            probe = engine.predict(inputs.zeros(1))
        except Exception as exc:  # any framework error means this file cannot serve
            logger.exception("engine %s failed to load %s", kind, path)
            raise ModelCorrupt("The model file could not be loaded by the engine.") from exc
        if probe.shape != (1, outputs):
            raise ModelCorrupt(
                f"The model maps {width} inputs to {probe.shape[-1]} outputs; "
                f"the manifest's {manifest.task} task expects {outputs}."
            )
        return engine

    def _fetch(self, key: str, sha256: str) -> str:
        """Download `key` to the cache (atomic rename) unless a verified copy is there.

        A cache directory that is missing and uncreatable, read-only or full is a
        503 (CacheUnwritable), retried by the next request like any failed load.
        """
        path = os.path.join(self._cache_dir, f"{sha256}-{os.path.basename(key)}")
        with self._cache_errors():
            os.makedirs(self._cache_dir, exist_ok=True)
            if os.path.exists(path) and _sha256_file(path) == sha256:
                return path
            out, partial = self._create_file(self._cache_dir)
        try:
            digest = hashlib.sha256()
            with self._cache_errors(), out:  # closing flushes: a full disk fails there too
                for chunk in self._stream(key):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                logger.error("checksum mismatch for s3://%s/%s", self.location.bucket, key)
                raise ModelCorrupt("A model file failed its checksum; it was not loaded.")
            with self._cache_errors():
                os.replace(partial, path)
        finally:
            with contextlib.suppress(OSError):
                os.remove(partial)
        return path

    @contextlib.contextmanager
    def _cache_errors(self) -> Iterator[None]:
        """OSError from the local cache -> CacheUnwritable; the log keeps the path."""
        try:
            yield
        except OSError as exc:
            logger.error("model cache %s unusable: %s", self._cache_dir, exc)
            raise CacheUnwritable(
                "The model cache on local disk cannot be written (missing, read-only "
                "or full); retry later."
            ) from exc

    def _get(self, key: str) -> bytes:
        return b"".join(self._stream(key))

    def _stream(self, key: str) -> Any:
        with self._s3_errors(key):
            body = self._s3.get_object(Bucket=self.location.bucket, Key=key)["Body"]
            yield from body.iter_chunks(_CHUNK)

    @contextlib.contextmanager
    def _s3_errors(self, key: str) -> Iterator[None]:
        """botocore's errors -> ModelNotFound or StorageUnreachable; the log has the key."""
        try:
            yield
        except ClientError as exc:
            code = error_code(exc)
            logger.error("S3 %s for s3://%s/%s", code, self.location.bucket, key)
            # A missing bucket is a deployment mistake like a missing key: nothing to serve.
            if is_missing(exc) or code == "NoSuchBucket":
                raise ModelNotFound(
                    "The model bundle was not found at the configured location."
                ) from exc
            raise StorageUnreachable("Model storage returned an error; retry later.") from exc
        except BotoCoreError as exc:
            logger.error("S3 unreachable for s3://%s/%s: %s", self.location.bucket, key, exc)
            raise StorageUnreachable("Model storage did not answer in time; retry later.") from exc


def _no_artifact_for(engine: str, manifest: BundleManifest) -> ModelCorrupt | RuntimeMismatch:
    """Before any download: name the runtime that can serve the bundle, if one can."""
    others = engines_for(manifest.artifacts)
    if not others:
        return ModelCorrupt(f"Model version {manifest.version} has no artifact any engine loads.")
    logger.error(
        "version %s needs engine %s; this runtime runs %s", manifest.version, others, engine
    )
    return RuntimeMismatch(
        f"Model version {manifest.version} cannot run on the {engine} engine: "
        f"this model needs {engine_spec(others[0]).runtime}."
    )


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
