"""CloudWatch Embedded Metric Format: one JSON object per line, written to a sink.

https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
Metric names and units are data (`METRIC_UNITS`); a directive holds at most 100
metrics and 30 dimensions, so larger sets are split into several directives.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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
    """Writes EMF lines under one namespace to `sink` (stdout by default)."""

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
        """One EMF line: `values` for every metric a directive names, `dimensions` for
        every key a dimension set uses, `properties` as extra searchable members."""
        cloudwatch = [
            {
                "Namespace": self.namespace,
                "Dimensions": [list(keys) for keys in directive.dimension_sets],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in chunk],
            }
            for directive in directives
            for chunk in _chunks(list(directive.metrics.items()), MAX_METRICS_PER_DIRECTIVE)
        ]
        if not cloudwatch:
            return
        document: dict[str, object] = dict(properties or {})
        document.update(dimensions)
        document.update(values)
        document["_aws"] = {"Timestamp": int(self._clock() * 1000), "CloudWatchMetrics": cloudwatch}
        self._sink(json.dumps(document, separators=(",", ":"), allow_nan=False))


def _chunks[T](items: list[T], size: int) -> list[list[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)] if items else []
