"""Per-request phase timings, passed down explicitly (no globals)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Timings:
    """Milliseconds per named phase (parse, validate, predict, serialise)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self.started = clock()
        self.phases: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as `name`; recorded even when it raises."""
        begin = self._clock()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + (self._clock() - begin) * 1000

    def total_ms(self) -> float:
        """Milliseconds since this recorder was made."""
        return (self._clock() - self.started) * 1000
