"""What the service reports about itself: per request of every surface (`/predict`, V2
infer, `/batch` calls, batch chunks; the `Surface` dimension says which) with its
outputs' summary, and per model load: one JSON line each through the writer, log
fields and EMF metrics together. Never a submitted value.

A failure in here is logged by type and swallowed: telemetry never changes an answer.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chalicelib.errors import ServiceError
from chalicelib.observability import names
from chalicelib.observability.context import ColdStart
from chalicelib.observability.emf import Directive, MetricWriter
from chalicelib.observability.timings import Timings
from chalicelib.tasks.answers import OutputSummary

if TYPE_CHECKING:  # imported only when sampling is on (hmac, random: cold-start time)
    from chalicelib.observability.sampling import PredictionSampler

logger = logging.getLogger(__name__)


def _never_raises[**P](method: Callable[P, None]) -> Callable[P, None]:
    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:  # the type only: a message could hold anything
            logger.error("telemetry failed", extra={"fields": {"exception": type(exc).__name__}})

    return guarded


@dataclass(frozen=True)
class ServedModel:
    """The model whose names become dimensions; labels bound the label metrics."""

    name: str
    version: str
    engine: str
    labels: tuple[str, ...]


#: The `Surface` dimension's values, each declared by its surface's module at import
#: (`declare_surface`, with a literal): a set fixed by the code, never by a request.
_SURFACES: set[str] = set()
_SURFACE_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def declare_surface(name: str) -> str:
    """Adds `name` to the `Surface` dimension's fixed set (a surface module, at import)."""
    if not _SURFACE_NAME.fullmatch(name):
        raise ValueError(f"a surface name is lowercase letters, digits and _: {name!r}")
    _SURFACES.add(name)
    return name


def declared_surfaces() -> frozenset[str]:
    """The `Surface` dimension's values declared by the modules imported so far."""
    return frozenset(_SURFACES)


@dataclass
class RequestObservation:
    """What the core and a surface learn while answering one request or scoring one
    batch chunk (counts and codes only); one request line when finished."""

    request_id: str
    #: A declared surface; "" for scoring outside any surface (embedding), never counted.
    surface: str = ""
    timings: Timings = field(default_factory=Timings)
    records: int = 0
    status: int = 0
    error_code: str | None = None
    #: The snapshot that scored it (None before one was taken): the metrics' Version.
    model: ServedModel | None = None
    #: The outputs summed (every scoring call of this request adds to it).
    summary: OutputSummary | None = field(default=None, repr=False)
    #: Set only on success when records were given, for the optional prediction sample.
    inputs: Sequence[Any] | None = field(default=None, repr=False)
    predictions: Callable[[], Sequence[Any]] | None = field(default=None, repr=False)

    def add(self, summary: OutputSummary) -> None:
        """Add a scoring call's summary (the first is kept as it is: it is this call's)."""
        if self.summary is None:
            self.summary = summary
        else:
            self.summary.add(summary)

    def __post_init__(self) -> None:
        if self.surface and self.surface not in _SURFACES:
            raise ValueError(f"undeclared surface {self.surface!r}: declare_surface() it")


class Telemetry:
    """Writes the service's metrics and structured log events."""

    def __init__(
        self,
        writer: MetricWriter,
        service: str,
        stage: str,
        sampler: PredictionSampler | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._writer = writer
        self._base = {names.SERVICE: service, names.STAGE: stage}
        self._sampler = sampler
        self._clock = clock
        self._cold_request = ColdStart()
        self._cold_load = ColdStart()
        self._model: ServedModel | None = None

    @classmethod
    def discarding(cls) -> Telemetry:
        """Metrics go nowhere (tests and embedding that do not look at them)."""
        return cls(MetricWriter("none", sink=lambda _line: None), "none", "none")

    # -- requests -------------------------------------------------------------

    @_never_raises
    def finish_request(self, observation: RequestObservation) -> None:
        """The request's one line: log fields and metrics, with its outputs' summary,
        dimensioned by the snapshot that scored it (else the last model loaded)."""
        model, latency = observation.model or self._model, observation.timings.total_ms()
        values: dict[str, float] = {
            "Requests": 1,
            "Records": observation.records,
            "Status4xx": int(400 <= observation.status < 500),
            "Status5xx": int(observation.status >= 500),
            "Latency": round(latency, 3),
        }
        for phase, milliseconds in observation.timings.phases.items():
            values[names.PHASE_METRICS.get(phase, phase)] = round(milliseconds, 3)
        dimension_sets = [names.SERVICE_DIMENSIONS, names.SURFACE_DIMENSIONS] + (
            [names.MODEL_DIMENSIONS] if model else [])  # fmt: skip
        directives = [Directive({n: names.REQUEST_METRICS.get(n, names.MS) for n in values},
                                dimension_sets)]  # fmt: skip
        dimensions = self._dimensions(model) | {names.SURFACE: observation.surface}
        if observation.error_code:
            directives.append(names.ERROR_DIRECTIVE)
            values["Errors"] = 1
            dimensions[names.ERROR_CODE] = observation.error_code
        if model is not None and observation.summary is not None and observation.status < 400:
            batch = summary_metrics(observation.summary)
            if batch:
                units = dict.fromkeys(batch, names.NONE) | _label_units(batch)
                directives.append(Directive(units, [names.MODEL_DIMENSIONS]))
                values |= batch
        self._writer.write(directives, values, dimensions, {
            "level": "INFO",
            "event": "request",
            "request_id": observation.request_id,
            "cold_start": self._cold_request.take(),
            "status": observation.status,
            "error_code": observation.error_code,
        })  # fmt: skip
        if model is not None:
            self._sample(model, observation)

    def _sample(self, model: ServedModel, observation: RequestObservation) -> None:
        sampler = self._sampler
        if sampler is None or observation.inputs is None or observation.predictions is None:
            return
        if observation.status >= 400 or not sampler.sampled():
            return
        self._event("prediction_sample", {
            "request_id": observation.request_id,
            "surface": observation.surface,
            "model": model.name,
            "model_version": model.version,
            "predictions": sampler.entries(observation.inputs, observation.predictions()),
        })  # fmt: skip

    # -- model loads (the store calls these) ------------------------------------

    @_never_raises
    def load_started(self, location: str) -> None:
        self._event("model_load_started", {"location": location})

    @_never_raises
    def load_done(self, name: str, version: str, engine: str, labels: Sequence[str],
                  seconds: float) -> None:  # fmt: skip
        """A model is serving: it names the dimensions of the metrics from now on."""
        model = self._model = ServedModel(name, version, engine, tuple(labels))
        cold = self._cold_load.take()
        values = {"ModelLoadSeconds": round(seconds, 6)} | ({"ColdStart": 1} if cold else {})
        directive = Directive({n: names.LOAD_DIRECTIVE.metrics[n] for n in values},
                              names.LOAD_DIRECTIVE.dimension_sets)  # fmt: skip
        fields = {"level": "INFO", "event": "model_load_done", "cold_start": cold}
        self._writer.write([directive], values, self._dimensions(model), fields)

    @_never_raises
    def load_failed(self, error: BaseException, seconds: float) -> None:
        """A failed load, by kind: the ServiceError class (ModelNotFound, ...) and code."""
        kind = type(error).__name__ if isinstance(error, ServiceError) else "Unexpected"
        code = getattr(error, "code", "load_failed") if isinstance(error, ServiceError) else None
        dimensions = self._dimensions(None) | {names.ERROR_KIND: kind}
        self._writer.write([names.LOAD_FAILURE_DIRECTIVE], {"ModelLoadFailures": 1}, dimensions,
                           {"level": "WARNING", "event": "model_load_failed",
                            "error_code": code, "seconds": round(seconds, 6)})  # fmt: skip

    def _event(self, event: str, fields: Mapping[str, object]) -> None:
        """A line without metrics."""
        self._writer.write([], {}, {}, {"level": "INFO", "event": event, **fields})

    def _dimensions(self, model: ServedModel | None) -> dict[str, str]:
        dimensions = dict(self._base)
        if model is not None:
            dimensions |= {names.MODEL: model.name, names.VERSION: model.version,
                           names.ENGINE: model.engine}  # fmt: skip
        return dimensions


def _label_units(batch: Mapping[str, float]) -> dict[str, str]:
    return {n: names.COUNT for n in batch if n.startswith(names.LABEL_METRIC_PREFIX)}


def summary_metrics(summary: OutputSummary) -> dict[str, float]:
    """Metric values for a summary of outputs (empty when there is nothing to count):
    per-label decision counts and the mean top probability (classification, binary,
    multilabel), or mean/min/max per numeric output. The task summed them from the
    manifest's names, never a client's, so the metric names stay bounded."""
    metrics: dict[str, float] = {}
    if any(summary.label_counts.values()):
        metrics |= {names.LABEL_METRIC_PREFIX + label: n
                    for label, n in summary.label_counts.items()}  # fmt: skip
    if summary.top_probability_rows:
        metrics[names.CONFIDENCE] = round(
            summary.top_probability_sum / summary.top_probability_rows, 6
        )
    for name, (total, low, high) in summary.values.items():
        suffix = "" if len(summary.values) == 1 else f".{name}"
        metrics |= {f"PredictedMean{suffix}": round(total / summary.rows, 6),
                    f"PredictedMin{suffix}": low, f"PredictedMax{suffix}": high}  # fmt: skip
    return metrics
