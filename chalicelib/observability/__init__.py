"""Metrics as CloudWatch Embedded Metric Format and JSON log lines, on stdout.

No API calls and no extra IAM: Lambda sends stdout to CloudWatch Logs, which turns
EMF lines into metrics. Nothing here ever writes a submitted value: only codes,
counts, timings, and names from the model's manifest.
"""

from chalicelib.observability.emf import MetricWriter
from chalicelib.observability.telemetry import RequestObservation, Telemetry
from chalicelib.observability.timings import Timings

__all__ = ["MetricWriter", "RequestObservation", "Telemetry", "Timings"]
