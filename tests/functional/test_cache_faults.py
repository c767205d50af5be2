"""A model cache that cannot be written is a 503 (never a 500), and serving recovers
once the disk is fixed. Real S3 (moto server over HTTP); the faults are real
filesystem errors, or a fault-injecting file creator passed through the constructor
(tests run as root, so chmod cannot make a directory read-only for them)."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO

import boto3
import pytest

from chalicelib.errors import CacheUnwritable
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore, create_partial_file
from chalicelib.surfaces import rest
from modelops.examples import holdout_records
from tests.conftest import PublishedModel

MESSAGE = "The model cache on local disk cannot be written"


def predict(service: PredictionService, records: list[dict[str, object]]) -> rest.HttpAnswer:
    return rest.predict(lambda: service, lambda: json.dumps(records).encode(), "application/json")


def assert_unavailable(answer: rest.HttpAnswer) -> None:
    assert answer.status == 503, answer.body
    error = json.loads(answer.body)["error"]
    assert error["code"] == "model_unavailable"
    assert error["message"].startswith(MESSAGE)
    assert "/" not in error["message"]  # no path to the cache


@pytest.fixture
def records(published: PublishedModel) -> list[dict[str, object]]:
    return holdout_records(published.model_dir, 2)[0]


def test_cache_dir_under_a_regular_file_is_503_then_recovers(
    fresh_bucket: str,
    upload: Callable[[str, str], None],
    tmp_path: Path,
    records: list[dict[str, object]],
) -> None:
    upload(fresh_bucket, "m")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache's parent should be")
    store = ModelStore(boto3.client("s3"), BundleLocation(fresh_bucket, "m"), "litert",
                       str(blocker / "cache"))  # fmt: skip
    service = PredictionService(store, 1000)
    assert_unavailable(predict(service, records))
    assert service.health()["last_load_error"] == "model_unavailable"
    blocker.unlink()  # fixed: the parent can now be created
    answer = predict(service, records)
    assert answer.status == 200, answer.body
    assert service.health()["model_loaded"] is True


def test_cache_dir_that_is_a_file_is_503(
    fresh_bucket: str, upload: Callable[[str, str], None], tmp_path: Path,
    records: list[dict[str, object]],
) -> None:  # fmt: skip
    upload(fresh_bucket, "m")
    cache = tmp_path / "cache"
    cache.write_text("")
    store = ModelStore(boto3.client("s3"), BundleLocation(fresh_bucket, "m"), "litert",
                       str(cache))  # fmt: skip
    assert_unavailable(predict(PredictionService(store, 1000), records))


class FaultyDisk:
    """Creates real partial files, but fails like a full or read-only disk while `fault` is set."""

    def __init__(self, fault: int | None) -> None:
        self.fault = fault

    def create(self, directory: str) -> tuple[IO[bytes], str]:
        if self.fault == errno.EROFS:
            raise OSError(errno.EROFS, "Read-only file system")
        handle, path = create_partial_file(directory)
        if self.fault == errno.ENOSPC:
            handle = FullFile(handle)  # type: ignore[assignment]  # writes are all it needs
        return handle, path


class FullFile:
    """A file whose writes fail with ENOSPC, as on a full disk."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self) -> FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


@pytest.mark.parametrize("fault", [errno.ENOSPC, errno.EROFS], ids=["full", "read-only"])
def test_full_or_read_only_cache_is_503_then_recovers(
    fault: int, fresh_bucket: str, upload: Callable[[str, str], None], tmp_path: Path,
    records: list[dict[str, object]],
) -> None:  # fmt: skip
    upload(fresh_bucket, "m")
    disk = FaultyDisk(fault)
    cache = tmp_path / "cache"
    store = ModelStore(boto3.client("s3"), BundleLocation(fresh_bucket, "m"), "litert",
                       str(cache), create_file=disk.create)  # fmt: skip
    service = PredictionService(store, 1000)
    with pytest.raises(CacheUnwritable):
        store.get()
    assert_unavailable(predict(service, records))
    assert not list(cache.glob("*.partial")), "a failed download leaves no partial file"
    disk.fault = None  # space freed / remounted read-write
    answer = predict(service, records)
    assert answer.status == 200, answer.body
    assert len(json.loads(answer.body)["predictions"]) == 2
