"""How `make test`'s xdist workers are given work: `--dist loadgroup` whose groups are the
files sharing a module-scoped fixture, handed out longest first.

pytest-xdist 3.8's own loadgroup tags groups on `item._nodeid`, which pytest 9 no longer
reads, so its groups are silently ignored; this scheduler groups by file instead. Its
work units (a file whose tests share a module- or class-scoped fixture, or one test) go
out longest first (LPT), so the two workers finish together instead of one starting a
100-second schemathesis run while the other has nothing left. A unit's length is the sum
of its tests' durations: those recorded by the last run (pytest's cache, when it is on),
else `tests/durations.json` (measured: `python -m tests.scheduling OUT` rewrites it from
the output of a run with `--durations=60`), else a guess from the file's markers."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

DURATIONS = Path(__file__).with_name("durations.json")
CACHE_KEY = "keras-lambda-serving/durations"
DURATION_LINE = re.compile(r"([0-9.]+)s (?:setup|call|teardown) +(.+)$")
#: Seconds guessed for a test no run has timed, by its file's heaviest marker.
GUESSES = {"lambda_like": 10.0, "deploy": 10.0, "slow": 3.0}
UNTIMED = 0.2


def known_durations(config: pytest.Config) -> dict[str, float]:
    """nodeid -> seconds: the committed measurements, updated by the last run's."""
    durations: dict[str, float] = json.loads(DURATIONS.read_text()) if DURATIONS.is_file() else {}
    cache = getattr(config, "cache", None)
    if cache is not None:
        durations.update(cache.get(CACHE_KEY, {}))
    return durations


class LongestFirst(LoadScopeScheduling):
    """LoadScopeScheduling by shared file, its units assigned longest first."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        self._shares: dict[str, bool] = {}
        self._guess: dict[str, float] = {}
        self._durations = known_durations(config)
        self._sorted = False

    def _file_text(self, path: str) -> str:
        file = self.config.rootpath / path
        return file.read_text() if file.suffix == ".py" and file.is_file() else ""

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        if path not in self._shares:
            text = self._file_text(path)
            self._shares[path] = 'scope="module"' in text or 'scope="class"' in text
            marks = [s for mark, s in GUESSES.items() if f"mark.{mark}" in text]
            self._guess[path] = max(marks, default=UNTIMED)
        return path if self._shares[path] else nodeid

    def _seconds(self, nodeid: str) -> float:
        return self._durations.get(nodeid) or self._guess.get(nodeid.split("::", 1)[0], UNTIMED)

    def _assign_work_unit(self, node: Any) -> None:
        if not self._sorted:  # the queue is complete before the first unit goes out
            units = sorted(self.workqueue.items(),
                           key=lambda unit: -sum(self._seconds(n) for n in unit[1]))  # fmt: skip
            self.workqueue.clear()
            self.workqueue.update(units)
            self._sorted = True
        super()._assign_work_unit(node)


class DurationRecorder:
    """Records each test's setup + call + teardown seconds (in the controller, which
    sees every worker's reports) into pytest's cache for the next run's schedule."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seen: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seen[report.nodeid] = self.seen.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        cache = getattr(self.config, "cache", None)
        if cache is not None and self.seen:
            recorded = cache.get(CACHE_KEY, {})
            recorded.update({k: round(v, 2) for k, v in self.seen.items()})
            cache.set(CACHE_KEY, recorded)


def from_durations_output(text: str, at_least: float = 1.0) -> dict[str, float]:
    """nodeid -> seconds (setup + call + teardown) from pytest's `--durations` lines."""
    durations: dict[str, float] = {}
    for line in text.splitlines():
        match = DURATION_LINE.match(line.strip())
        if match:
            seconds, nodeid = float(match[1]), match[2]
            durations[nodeid] = durations.get(nodeid, 0.0) + seconds
    return {k: round(v, 1) for k, v in sorted(durations.items()) if v >= at_least}


if __name__ == "__main__":
    written = from_durations_output(Path(sys.argv[1]).read_text())
    DURATIONS.write_text(json.dumps(written, indent=1) + "\n")
    print(f"{len(written)} durations -> {DURATIONS}")
