"""JSON lines written to a sink, carrying CloudWatch Embedded Metric Format metrics.

https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
Metric names and units are data (`METRIC_UNITS`); a directive holds at most 100
metrics and 30 dimensions, so larger sets are split into several directives. Values
are finite numbers by construction (orjson would write NaN as null).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson

MAX_METRICS_PER_DIRECTIVE = 100
MAX_DIMENSIONS = 30

Sink = Callable[[str], None]


def stdout_sink(line: str) -> None:
    """Write one line to the current stdout (Lambda forwards it to CloudWatch Logs)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Directive:
    """Metrics (name -> unit) sharing dimension sets (each a list of dimension keys)."""

    metrics: Mapping[str, str]
    dimension_sets: Sequence[Sequence[str]]


class MetricWriter:
    """Writes JSON lines, with EMF metrics under one namespace, to `sink` (stdout by
    default): one line per event, its log fields and its metrics together."""

    def __init__(
        self,
        namespace: str,
        sink: Sink = stdout_sink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self._sink = sink
        self._clock = clock

    def write(
        self,
        directives: Sequence[Directive],
        values: Mapping[str, float],
        dimensions: Mapping[str, str],
        properties: Mapping[str, object] | None = None,
    ) -> None:
        """One JSON line: its time, `properties`, then `dimensions` for every key a
        dimension set uses and `values` for every metric a directive names, with the EMF
        metadata (`_aws`) when there are directives; without, a plain log line."""
        now = self._clock()
        document: dict[str, object] = {"time": iso_time(now)}
        document.update(properties or {})
        cloudwatch = [
            {
                "Namespace": self.namespace,
                "Dimensions": [list(keys) for keys in directive.dimension_sets],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in chunk],
            }
            for directive in directives
            for chunk in _chunks(list(directive.metrics.items()), MAX_METRICS_PER_DIRECTIVE)
        ]
        if cloudwatch:
            document.update(dimensions)
            document.update(values)
            document["_aws"] = {"Timestamp": int(now * 1000), "CloudWatchMetrics": cloudwatch}
        self._sink(orjson.dumps(document).decode())


def iso_time(epoch: float) -> str:
    """UTC, millisecond precision: 2026-11-25T09:55:24.788Z."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"
    )


def _chunks[T](items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)] if items else []
