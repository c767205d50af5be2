"""Champion/challenger: a pinned second version scores a sample of live requests.

For a sampled request, after the champion answered, the challenger bundle (its own
`ModelStore`, pinned, loaded lazily on the first sampled request) scores the same
records. The response is the champion's, untouched: the challenger only reads it, and
any challenger failure (load, refused records, invalid outputs, a bug) is caught and
observed. Lambda returns only after the handler does, so a sampled request pays the
challenger's latency: keep the sample small.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.observer import Observer, log_event, notify
from chalicelib.refresh import failure_kind
from chalicelib.store import ModelBundle, ModelStore
from chalicelib.tasks import task_named

logger = logging.getLogger(__name__)


class ChallengerOutputInvalid(Exception):
    """The challenger's outputs could not make a response (NaN, not probabilities)."""

    code = "invalid_outputs"


@dataclass(frozen=True)
class Comparison:
    """How a challenger's answers differ from the champion's for one request.

    Agreement counts records with the same decision (a label, or a multilabel set);
    None for regression. The differences are means over the records of the mean
    |champion - challenger| over the probabilities (values) both versions name."""

    records: int
    agreements: int | None
    probability_diff: float | None
    value_diff: float | None

    @property
    def agreement_rate(self) -> float | None:
        if self.agreements is None or not self.records:
            return None
        return self.agreements / self.records


def compare(
    champion: Sequence[Mapping[str, Any]], challenger: Sequence[Mapping[str, Any]]
) -> Comparison:
    """Compare two equally long lists of response objects (tasks' `respond` shapes)."""
    pairs = list(zip(champion, challenger, strict=True))
    agreements: int | None = None
    if pairs and "label" in pairs[0][0]:
        agreements = sum(a["label"] == b.get("label") for a, b in pairs)
    elif pairs and "labels" in pairs[0][0]:
        agreements = sum(set(a["labels"]) == set(b.get("labels", ())) for a, b in pairs)
    return Comparison(
        len(champion),
        agreements,
        _mean_abs_diff(champion, challenger, "probabilities"),
        _mean_abs_diff(champion, challenger, "values"),
    )


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


def _mean_abs_diff(
    champion: Sequence[Mapping[str, Any]], challenger: Sequence[Mapping[str, Any]], key: str
) -> float | None:
    per_record: list[float] = []
    for a, b in zip(champion, challenger, strict=True):
        first, second = a.get(key) or {}, b.get(key) or {}
        shared = [name for name in first if name in second]
        if shared:
            per_record.append(sum(abs(first[n] - second[n]) for n in shared) / len(shared))
    return sum(per_record) / len(per_record) if per_record else None


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

    def consider(
        self, records: Sequence[Any], champion: ModelBundle, answer: Sequence[Mapping[str, Any]]
    ) -> None:
        """If this request is sampled, score `records` with the challenger and compare
        with the champion's `answer`; never raises, never changes `answer`."""
        try:
            if self.sample <= 0 or self._draw() >= self.sample:
                return
            self._score(records, champion, answer)
        except Exception as exc:  # the champion's response must not depend on this
            logger.exception("challenger scoring failed unexpectedly")
            self._failed(champion, "predict", exc)

    def _score(
        self, records: Sequence[Any], champion: ModelBundle, answer: Sequence[Mapping[str, Any]]
    ) -> None:
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
            theirs = _respond(bundle, records)
        except Exception as exc:
            self._failed(champion, "predict", exc)
            return
        seconds = time.perf_counter() - started
        comparison = compare(answer, theirs)
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
        code = getattr(exc, "code", None) if isinstance(exc, ChallengerOutputInvalid) else None
        code = code or failure_kind(exc)
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

    def state(self) -> dict[str, Any]:
        """For GET /health: version, loaded/failed/not_loaded, and the running scores."""
        loaded = self.store.loaded is not None
        with self._lock:
            totals = self._totals.summary()
            body: dict[str, Any] = {
                "version": self.store.location.version,
                "sample": self.sample,
                "state": "loaded" if loaded else "failed" if self.last_failure else "not_loaded",
                "requests_scored": self.requests_scored,
                "records_compared": totals["rows"],
                "agreement": totals["agreement_rate"],
                "mean_abs_probability_diff": totals["mean_abs_probability_diff"],
                "failures": self.failures,
            }
            if self.last_failure:
                body["last_failure"] = self.last_failure
        return body


def _respond(bundle: ModelBundle, records: Sequence[Any]) -> list[dict[str, Any]]:
    """The challenger's response objects for `records` (its own reader and checks)."""
    inputs = bundle.reader.to_matrix(records)
    outputs = bundle.engine.predict(bundle.inputs.split(inputs))
    task = task_named(bundle.manifest.task)
    if not bool(task.valid_rows(outputs).all()):
        raise ChallengerOutputInvalid
    return task.respond(bundle.manifest, outputs)
