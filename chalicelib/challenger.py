"""Champion/challenger: a pinned second version scores a sample of live requests.

For a sampled request of any surface, after the champion scored it, the challenger
bundle (its own `ModelStore`, pinned, loaded lazily on the first sampled request)
scores the same input (records, tensors or columns) through the same pipeline, and
the champion's task compares the two output matrices. The response is the
champion's, untouched: the challenger only reads it, and any challenger failure (load,
refused input, invalid outputs, a bug) is caught and observed. Lambda returns only
after the handler does, so a sampled request pays the challenger's latency: keep the
sample small.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.errors import UnscorableRecords
from chalicelib.observer import Observer, log_event, notify
from chalicelib.refresh import failure_kind
from chalicelib.store import ModelBundle, ModelStore
from chalicelib.tasks.answers import Comparison

if TYPE_CHECKING:
    from chalicelib.core.inputs import ModelInput
    from chalicelib.core.pipeline import Scored

logger = logging.getLogger(__name__)


@dataclass
class ComparisonTotals:
    """Comparisons summed (a batch part's, then a job's): plain counts and sums, so
    parts' totals add up exactly and travel as JSON."""

    rows: int = 0
    labelled: int = 0
    agreements: int = 0
    probability_sum: float = 0.0
    probability_rows: int = 0

    def add(self, comparison: Comparison) -> None:
        self.rows += comparison.records
        if comparison.agreements is not None:
            self.labelled += comparison.records
            self.agreements += comparison.agreements
        if comparison.probability_diff is not None:
            self.probability_sum += comparison.probability_diff * comparison.records
            self.probability_rows += comparison.records

    def merge(self, other: ComparisonTotals) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def summary(self) -> dict[str, Any]:
        """Rows compared, agreement rate and mean |probability difference| (None when
        nothing was compared)."""
        return {
            "rows": self.rows,
            "agreement_rate": self.agreements / self.labelled if self.labelled else None,
            "mean_abs_probability_diff": (
                self.probability_sum / self.probability_rows if self.probability_rows else None
            ),
        }


class Challenger:
    """Scores a `sample` fraction of requests with `store`'s (pinned) version.

    `draw` returns a number in [0, 1) per request (default `random.random`; inject a
    seeded one in tests); a request is sampled when it is below `sample`. After a failed
    load, sampled requests skip the challenger for `load_retry_seconds` (`clock`).
    """

    def __init__(
        self,
        store: ModelStore,
        sample: float,
        *,
        draw: Callable[[], float] | None = None,
        observer: Observer = log_event,
        load_retry_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.sample = sample
        self._load_retry_seconds = load_retry_seconds
        self._clock = clock
        self._load_again_at = float("-inf")
        if draw is None:  # imported here: `random` costs cold-start time in every container
            import random

            draw = random.random
        self._draw = draw
        self._observer = observer
        self._lock = threading.Lock()
        self.requests_scored = 0
        self._totals = ComparisonTotals()
        self.failures = 0
        self.last_failure: str | None = None

    def consider(self, model_input: ModelInput, champion: Scored) -> None:
        """If this request is sampled, score `model_input` with the challenger and
        compare with the champion's outputs; never raises, never changes them."""
        try:
            if self.sample <= 0 or self._draw() >= self.sample:
                return
            self._score(model_input, champion)
        except Exception as exc:  # the champion's response must not depend on this
            logger.exception("challenger scoring failed unexpectedly")
            self._failed(champion.bundle, "predict", exc)

    def _score(self, model_input: ModelInput, scored: Scored) -> None:
        from chalicelib.core.pipeline import score_all

        champion = scored.bundle
        if self.store.loaded is None and self._clock() < self._load_again_at:
            return  # a missing or broken challenger must not cost every sampled request
        try:
            bundle = self.store.get()
        except Exception as exc:
            self._load_again_at = self._clock() + self._load_retry_seconds
            self._failed(champion, "load", exc)
            return
        started = time.perf_counter()
        try:
            theirs = score_all(bundle, model_input)
        except Exception as exc:  # refused input or invalid outputs: counted by code
            self._failed(champion, "predict", exc)
            return
        seconds = time.perf_counter() - started
        comparison = scored.compare(theirs)
        self._count(comparison)
        notify(self._observer, "challenger_scored", {
            **self._dimensions(champion), "records": comparison.records,
            "agreement_rate": comparison.agreement_rate,
            "mean_abs_probability_diff": comparison.probability_diff,
            "mean_abs_value_diff": comparison.value_diff,
            "latency_seconds": round(seconds, 6),
        })  # fmt: skip

    def _count(self, comparison: Comparison) -> None:
        with self._lock:
            self.requests_scored += 1
            self._totals.add(comparison)

    @property
    def records_compared(self) -> int:
        return self._totals.rows

    def _failed(self, champion: ModelBundle, stage: str, exc: Exception) -> None:
        code = "invalid_outputs" if _invalid_outputs(exc) else failure_kind(exc)
        with self._lock:
            self.failures += 1
            self.last_failure = code
        logger.warning("challenger %s failed (%s); the champion's answer stands", stage, code)
        notify(self._observer, "challenger_failed",
               {**self._dimensions(champion), "stage": stage, "code": code})  # fmt: skip

    def _dimensions(self, champion: ModelBundle) -> dict[str, str]:
        return {
            "model": champion.manifest.name,
            "champion_version": champion.manifest.version,
            "challenger_version": self.store.location.version,
        }

    def state(self, aggregates: bool = True) -> dict[str, Any]:
        """Version, loaded/failed/not_loaded, counts, and with `aggregates` the running
        comparison (agreement, mean probability difference: model outputs, so only
        for authenticated callers; GET /health leaves them out)."""
        loaded = self.store.loaded is not None
        with self._lock:
            totals = self._totals.summary()
            body: dict[str, Any] = {
                "version": self.store.location.version,
                "sample": self.sample,
                "state": "loaded" if loaded else "failed" if self.last_failure else "not_loaded",
                "requests_scored": self.requests_scored,
                "records_compared": totals["rows"],
                "failures": self.failures,
            }
            if aggregates:
                body["agreement"] = totals["agreement_rate"]
                body["mean_abs_probability_diff"] = totals["mean_abs_probability_diff"]
            if self.last_failure:
                body["last_failure"] = self.last_failure
        return body


def _invalid_outputs(exc: Exception) -> bool:
    """The challenger's own outputs were refused (NaN, not probabilities), not the input."""
    from chalicelib.tasks.checks import NO_VALID_SCORE

    details = getattr(exc, "details", None) or []
    return isinstance(exc, UnscorableRecords) and any(p.problem == NO_VALID_SCORE for p in details)


__all__ = ["Challenger", "Comparison", "ComparisonTotals"]
