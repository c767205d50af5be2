"""When a warm container re-reads the version pointer, and what the last check found.

Lambda freezes a container between invocations, so there is no background thread: the
request that finds a check due performs it (`RefreshSchedule.claim`), at most once per
interval and one at a time; every other request keeps serving the bundle in memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import (
    CacheUnwritable,
    ModelCorrupt,
    ModelNotFound,
    RuntimeMismatch,
    ServiceError,
    StorageUnreachable,
)

#: What a failed load is reported as (health, metrics); the first matching class wins.
_FAILURE_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (ModelNotFound, "not_found"),
    (RuntimeMismatch, "runtime_mismatch"),
    (ModelCorrupt, "corrupt"),
    (StorageUnreachable, "storage_unreachable"),
    (CacheUnwritable, "cache_unwritable"),
)


def failure_kind(exc: BaseException) -> str:
    """A short, stable code for why a load or a challenger score failed."""
    for kind, code in _FAILURE_KINDS:
        if isinstance(exc, kind):
            return code
    return exc.code if isinstance(exc, ServiceError) else "internal_error"


@dataclass(frozen=True)
class RefreshStatus:
    """The outcome of the last pointer check: ok (swapped), unchanged or failed."""

    at: float  # wall-clock seconds since the epoch
    outcome: str
    version: str  # the version served after the check
    seconds: float  # the check's duration, a new version's load included
    code: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at)),
            "outcome": self.outcome,
            "version": self.version,
            "seconds": round(self.seconds, 3),
        }
        if self.code is not None:
            body["code"] = self.code
        return body


class RefreshSchedule:
    """At most one pointer check per `seconds`, by one caller at a time.

    `clock` (monotonic) times the interval and `now` (wall clock) stamps outcomes;
    both are injectable for tests.
    """

    def __init__(
        self,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.seconds = seconds
        self.now = now
        self._clock = clock
        self._due_at = clock() + seconds
        self._lock = threading.Lock()

    def restart(self) -> None:
        """A fresh load just read the pointer: the next check is one interval away."""
        self._due_at = self._clock() + self.seconds

    def claim(self) -> bool:
        """True if a check is due and the caller now owns it (call `release` after);
        False without waiting if it is not due or another caller is checking."""
        if self._clock() < self._due_at or not self._lock.acquire(blocking=False):
            return False
        if self._clock() < self._due_at:  # another caller checked meanwhile
            self._lock.release()
            return False
        self._due_at = self._clock() + self.seconds  # a failure retries next interval
        return True

    def release(self) -> None:
        self._lock.release()
