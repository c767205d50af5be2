"""Rollout to a warm store over the in-memory S3: the pointer is re-read with a
conditional GET once per interval (an injected clock), a new version is swapped in
whole, a failed load keeps the current one, and pinned versions never move."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from chalicelib.bundle_layout import BundleLayout
from chalicelib.refresh import RefreshSchedule, failure_kind
from chalicelib.service import PredictionService
from chalicelib.store import ModelStore
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeClock,
    FakeEngine,
    FakeS3,
    RecordingObserver,
    internal_error,
    make_bundle,
    make_store,
    put_bundle,
)
from tests.unit.test_tasks import schema_validator

LAYOUT = BundleLayout(PREFIX)
INTERVAL = 60.0
#: One engine per version, told apart by the artifact's bytes: version n always
#: answers label n-1 ("A" for 1, "B" for 2, "C" for 3).
ROWS = {str(n): [[0.8 if i == n - 1 else 0.1 for i in range(3)]] for n in (1, 2, 3)}


class VersionedLoader:
    """An engine loader that gives each version's artifact its own FakeEngine;
    `gate`, if set, holds a load until it is opened (a slow download)."""

    def __init__(self) -> None:
        self.engines = {f"v{n}".encode(): FakeEngine(rows=rows) for n, rows in ROWS.items()}
        self.loads: list[bytes] = []
        self.gate: threading.Event | None = None
        self.loading = threading.Event()

    def __call__(self, kind: str, path: str) -> Any:
        content = Path(path).read_bytes()
        self.loads.append(content)
        self.loading.set()
        if self.gate is not None:
            assert self.gate.wait(10)
        return self.engines[content]


def publish(s3: FakeS3, version: str, *, promote: bool = True) -> None:
    bundle = make_bundle(version=version, artifacts={"litert": f"v{version}".encode()})
    put_bundle(s3, BUCKET, PREFIX, bundle, promote=promote)


def promote(s3: FakeS3, version: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=LAYOUT.pointer_key(), Body=version.encode())


def pointer_reads(s3: FakeS3) -> int:
    return sum(1 for op, _, key in s3.calls if op == "GetObject" and key == LAYOUT.pointer_key())


@pytest.fixture
def s3() -> FakeS3:
    s3 = FakeS3(buckets={BUCKET})
    publish(s3, "1")
    return s3


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def loader() -> VersionedLoader:
    return VersionedLoader()


@pytest.fixture
def store(
    s3: FakeS3, tmp_path: Path, clock: FakeClock, observer: RecordingObserver,
    loader: VersionedLoader,
) -> ModelStore:  # fmt: skip
    schedule = RefreshSchedule(INTERVAL, clock=clock, now=lambda: 1_800_000_000.0)
    return make_store(s3, tmp_path, loader, refresh=schedule, events=observer)


def version(store: ModelStore) -> str:
    return store.get().manifest.version


def test_the_pointer_is_read_at_most_once_per_interval(
    store: ModelStore, s3: FakeS3, clock: FakeClock, observer: RecordingObserver
) -> None:
    assert version(store) == "1" and pointer_reads(s3) == 1
    clock.advance(INTERVAL - 1)
    for _ in range(5):
        assert version(store) == "1"
    assert pointer_reads(s3) == 1 and store.last_refresh is None
    clock.advance(1)
    for _ in range(5):
        assert version(store) == "1"
    assert pointer_reads(s3) == 2  # one conditional GET, answered 304
    assert store.last_refresh is not None and store.last_refresh.outcome == "unchanged"
    status = store.last_refresh.to_json()
    assert status.pop("seconds") >= 0
    assert status == {"at": "2027-01-15T08:00:00Z", "outcome": "unchanged", "version": "1"}
    assert [e["outcome"] for e in observer.named("model_refresh")] == ["unchanged"]


def test_an_unchanged_pointer_downloads_nothing_else(
    store: ModelStore, s3: FakeS3, clock: FakeClock
) -> None:
    first = store.get()
    calls = len(s3.calls)
    clock.advance(INTERVAL)
    assert store.get() is first
    assert s3.calls[calls:] == [("GetObject", BUCKET, LAYOUT.pointer_key())]


def test_a_promoted_version_is_loaded_and_swapped_in_at_the_next_check(
    store: ModelStore, s3: FakeS3, clock: FakeClock, observer: RecordingObserver,
    loader: VersionedLoader,
) -> None:  # fmt: skip
    old = store.get()
    publish(s3, "2")
    assert store.get() is old  # not due yet
    clock.advance(INTERVAL)
    new = store.get()
    assert new.manifest.version == "2" and store.loaded is new
    assert old.manifest.version == "1"  # the old object is untouched for requests holding it
    assert loader.loads == [b"v1", b"v2"]
    event = observer.named("model_refresh")[-1]
    assert (event["outcome"], event["serving_version"], event["previous_version"]) == (
        "ok", "2", "1",
    )  # fmt: skip
    assert event["code"] is None and event["seconds"] >= 0


def test_rollback_by_promoting_the_old_version_reaches_the_warm_store(
    store: ModelStore, s3: FakeS3, clock: FakeClock
) -> None:
    assert version(store) == "1"
    publish(s3, "2")
    clock.advance(INTERVAL)
    assert version(store) == "2"
    promote(s3, "1")
    clock.advance(INTERVAL)
    assert version(store) == "1"
    assert store.last_refresh is not None and store.last_refresh.outcome == "ok"


def test_a_failed_load_keeps_serving_and_retries_next_interval(
    store: ModelStore, s3: FakeS3, clock: FakeClock, observer: RecordingObserver,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    current = store.get()
    publish(s3, "2")
    good = s3.objects[(BUCKET, LAYOUT.file_key("2", "model.tflite"))]
    s3.objects[(BUCKET, LAYOUT.file_key("2", "model.tflite"))] = b"corrupted"
    clock.advance(INTERVAL)
    assert store.get() is current
    assert store.last_refresh is not None
    assert store.last_refresh.to_json()["outcome"] == "failed"
    assert store.last_refresh.code == "corrupt" and store.last_refresh.version == "1"
    assert "model refresh failed (corrupt); still serving version 1" in caplog.text
    clock.advance(INTERVAL / 2)
    assert store.get() is current  # no retry before the interval
    s3.objects[(BUCKET, LAYOUT.file_key("2", "model.tflite"))] = good
    clock.advance(INTERVAL / 2)
    assert version(store) == "2"  # the pointer is read in full again: the load is retried
    assert [e["outcome"] for e in observer.named("model_refresh")] == ["failed", "ok"]
    assert observer.named("model_refresh")[0]["code"] == "corrupt"


def test_unreachable_storage_during_a_check_keeps_the_current_version(
    store: ModelStore, s3: FakeS3, clock: FakeClock
) -> None:
    current = store.get()
    s3.fail(internal_error(), key=LAYOUT.pointer_key(), times=1)
    clock.advance(INTERVAL)
    assert store.get() is current
    assert store.last_refresh is not None and store.last_refresh.code == "storage_unreachable"
    clock.advance(INTERVAL)
    assert store.get() is current
    assert store.last_refresh.outcome == "unchanged"


def test_a_malformed_pointer_is_a_failed_refresh(
    store: ModelStore, s3: FakeS3, clock: FakeClock
) -> None:
    current = store.get()
    promote(s3, "../other-model")
    clock.advance(INTERVAL)
    assert store.get() is current
    assert store.last_refresh is not None and store.last_refresh.code == "corrupt"


def test_a_pinned_version_never_reads_the_pointer_again(
    s3: FakeS3, tmp_path: Path, clock: FakeClock
) -> None:
    schedule = RefreshSchedule(INTERVAL, clock=clock)
    pinned = make_store(s3, tmp_path, VersionedLoader(), version="1", refresh=schedule)
    assert pinned.refresh is None
    assert version(pinned) == "1"
    publish(s3, "2")
    clock.advance(INTERVAL * 10)
    assert version(pinned) == "1" and pointer_reads(s3) == 0


def test_without_a_schedule_the_store_never_refreshes(s3: FakeS3, tmp_path: Path) -> None:
    store = make_store(s3, tmp_path, VersionedLoader())
    assert version(store) == "1"
    publish(s3, "2")
    assert version(store) == "1" and pointer_reads(s3) == 1 and store.refresh is None


def test_one_refresher_at_a_time_and_the_others_do_not_wait(
    store: ModelStore, s3: FakeS3, clock: FakeClock, loader: VersionedLoader
) -> None:
    old = store.get()
    publish(s3, "2")
    clock.advance(INTERVAL)
    loader.gate, loader.loading = threading.Event(), threading.Event()
    refreshed: list[Any] = []
    refresher = threading.Thread(target=lambda: refreshed.append(store.get()))
    refresher.start()
    assert loader.loading.wait(10)  # the refresher is inside the slow load of version 2
    others = [store.get() for _ in range(20)]  # would block here if they waited
    assert all(bundle is old for bundle in others)
    assert pointer_reads(s3) == 2  # nobody else checked meanwhile
    loader.gate.set()
    refresher.join(10)
    assert refreshed[0].manifest.version == "2" and store.get() is refreshed[0]


def test_responses_stay_consistent_while_versions_swap_under_threads(
    store: ModelStore, s3: FakeS3, clock: FakeClock
) -> None:
    """Each response's version matches the label its engine gives: a request never
    mixes one version's name with another's predictions."""
    service = PredictionService(store, 1000)
    service.predict([{"x0": 0, "x1": 0, "x2": 0, "x3": 0}])
    publish(s3, "2", promote=False)
    stop = threading.Event()
    seen: list[tuple[str, set[str]]] = []
    errors: list[BaseException] = []

    def client() -> None:
        while not stop.is_set():
            try:
                body = service.predict([{"x0": i, "x1": 0, "x2": 0, "x3": 0} for i in range(5)])
                orjson.dumps(body)
                seen.append((body["model"]["version"], {p["label"] for p in body["predictions"]}))
            except Exception as exc:  # any failure fails the test
                errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for target in ("2", "1", "2", "1", "2"):
        promote(s3, target)
        clock.advance(INTERVAL)
        deadline = time.monotonic() + 10
        while store.loaded is None or store.loaded.manifest.version != target:
            assert time.monotonic() < deadline, f"version {target} never swapped in"
            time.sleep(0.001)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert not errors
    expected = {"1": {"A"}, "2": {"B"}}
    assert {v for v, _ in seen} == {"1", "2"}
    assert all(labels == expected[v] for v, labels in seen)


def test_failure_kinds_name_the_cause() -> None:
    from chalicelib.errors import ModelNotFound, RuntimeMismatch, ServiceError

    assert failure_kind(ModelNotFound("x")) == "not_found"
    assert failure_kind(RuntimeMismatch("x")) == "runtime_mismatch"
    assert failure_kind(ServiceError("x", code="invalid_records")) == "invalid_records"
    assert failure_kind(KeyError("x")) == "internal_error"


def test_health_shows_the_serving_version_and_the_last_refresh(
    store: ModelStore, s3: FakeS3, clock: FakeClock
) -> None:
    service = PredictionService(store, 1000)
    assert service.health() == {
        "status": "ok", "model_loaded": False,
        "refresh": {"interval_seconds": INTERVAL, "last": None, "last_change": None},
    }  # fmt: skip
    store.get()
    publish(s3, "2")
    clock.advance(INTERVAL)
    store.get()
    health = service.health()
    assert health["model"] == {"name": "tiny", "version": "2"}
    assert health["refresh"]["last"].pop("seconds") >= 0
    assert health["refresh"].pop("last_change") is not None
    assert health["refresh"] == {
        "interval_seconds": INTERVAL,
        "last": {"at": "2027-01-15T08:00:00Z", "outcome": "ok", "version": "2"},
    }
    clock.advance(INTERVAL)
    store.get()
    refresh = service.health()["refresh"]
    assert refresh["last"]["outcome"] == "unchanged"
    assert (refresh["last_change"]["outcome"], refresh["last_change"]["version"]) == ("ok", "2")
    schema_validator("Health").validate(service.health())
