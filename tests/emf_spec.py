"""A small checker for CloudWatch Embedded Metric Format lines, written from the spec:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import math
from typing import Any

UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_emf(line: str) -> dict[str, Any]:
    """Parse one line and assert it is a valid EMF document; return it."""
    document = json.loads(line)
    assert isinstance(document, dict), "an EMF document is a JSON object"
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int) and not isinstance(meta["Timestamp"], bool)
    assert meta["Timestamp"] > 1_500_000_000_000, "Timestamp is epoch milliseconds"
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        namespace = directive["Namespace"]
        assert isinstance(namespace, str) and 1 <= len(namespace) <= 255
        dimension_sets = directive["Dimensions"]
        assert isinstance(dimension_sets, list)
        for keys in dimension_sets:
            assert isinstance(keys, list) and len(keys) <= 30, "at most 30 dimensions per set"
            for key in keys:
                value = document[key]  # every dimension key is a top-level member
                assert isinstance(value, str) and 1 <= len(value) <= 1024, key
        metrics = directive["Metrics"]
        assert isinstance(metrics, list) and 1 <= len(metrics) <= 100, "1-100 metrics"
        for metric in metrics:
            name = metric["Name"]
            assert isinstance(name, str) and 1 <= len(name) <= 1024
            assert metric.get("Unit", "None") in UNITS, metric
            value = document[name]  # every metric name is a top-level member
            values = value if isinstance(value, list) else [value]
            assert values and len(values) <= 100 and all(_number(v) for v in values), name
    return document


def metric_values(document: dict[str, Any]) -> dict[str, float]:
    """Metric name -> value, for the metrics the document's directives declare."""
    return {
        metric["Name"]: document[metric["Name"]]
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }


def units(document: dict[str, Any]) -> dict[str, str]:
    return {
        metric["Name"]: metric["Unit"]
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }


def emf_lines(lines: list[str]) -> list[dict[str, Any]]:
    """The lines that are EMF documents (have `_aws`), each checked."""
    return [check_emf(line) for line in lines if line.startswith("{") and '"_aws"' in line]
