"""Refresh and challenger events (chalicelib.observer) as EMF metrics plus log fields.

    model_refresh      ModelRefreshes, ModelRefreshFailures (Count), ModelRefreshSeconds
                       by (Service, Stage, Model, RefreshOutcome: ok | unchanged | failed)
    challenger_scored  ChallengerAgreement, ChallengerProbabilityDiff, ChallengerValueDiff
                       (None: rates and differences), ChallengerLatency (Milliseconds),
                       ChallengerRecords (Count) by (Service, Stage, Model, Version,
                       ChallengerVersion): both versions are dimensions
    challenger_failed  ChallengerFailures (Count), same dimensions; stage and code as fields

Cardinality: outcomes are three; versions are the champion and the one challenger a
stage names. A metric whose value is absent (agreement for regression) is left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chalicelib.observability import names
from chalicelib.observability.emf import Directive, MetricWriter

OUTCOME, CHALLENGER_VERSION = "RefreshOutcome", "ChallengerVersion"
_REFRESH_DIMENSIONS = (names.SERVICE, names.STAGE, names.MODEL, OUTCOME)
_CHALLENGER_DIMENSIONS = (names.SERVICE, names.STAGE, names.MODEL, names.VERSION,
                          CHALLENGER_VERSION)  # fmt: skip
_CHALLENGER_METRICS = {  # event field -> (metric, unit, scale)
    "agreement_rate": ("ChallengerAgreement", names.NONE, 1.0),
    "mean_abs_probability_diff": ("ChallengerProbabilityDiff", names.NONE, 1.0),
    "mean_abs_value_diff": ("ChallengerValueDiff", names.NONE, 1.0),
    "latency_seconds": ("ChallengerLatency", names.MS, 1000.0),
    "records": ("ChallengerRecords", names.COUNT, 1.0),
}


class RolloutMetrics:
    """An `Observer` writing each refresh and challenger event as one EMF line."""

    def __init__(self, writer: MetricWriter, service: str, stage: str) -> None:
        self._writer = writer
        self._base = {names.SERVICE: service, names.STAGE: stage}

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None:
        if event == "model_refresh":
            self._refresh(fields)
        elif event in ("challenger_scored", "challenger_failed"):
            self._challenger(event, fields)
        else:
            self._writer.write([], {}, {}, {"level": "INFO", "event": event, **fields})

    def _refresh(self, fields: Mapping[str, Any]) -> None:
        failed = fields["outcome"] == "failed"
        values = {"ModelRefreshes": 1, "ModelRefreshFailures": int(failed),
                  "ModelRefreshSeconds": round(float(fields["seconds"]), 6)}  # fmt: skip
        units = {"ModelRefreshes": names.COUNT, "ModelRefreshFailures": names.COUNT,
                 "ModelRefreshSeconds": names.SECONDS}  # fmt: skip
        dimensions = self._base | {names.MODEL: str(fields["model"]), OUTCOME: fields["outcome"]}
        properties = {"level": "WARNING" if failed else "INFO", "event": "model_refresh",
                      "serving_version": fields["serving_version"],
                      "previous_version": fields["previous_version"],
                      "error_code": fields.get("code")}  # fmt: skip
        self._writer.write([Directive(units, [_REFRESH_DIMENSIONS])], values, dimensions,
                           properties)  # fmt: skip

    def _challenger(self, event: str, fields: Mapping[str, Any]) -> None:
        dimensions = self._base | {
            names.MODEL: str(fields["model"]),
            names.VERSION: str(fields["champion_version"]),
            CHALLENGER_VERSION: str(fields["challenger_version"]),
        }
        values: dict[str, float] = {}
        units: dict[str, str] = {}
        if event == "challenger_failed":
            values["ChallengerFailures"], units["ChallengerFailures"] = 1, names.COUNT
            properties = {"level": "WARNING", "event": event, "stage": fields["stage"],
                          "error_code": fields["code"]}  # fmt: skip
        else:
            for field, (metric, unit, scale) in _CHALLENGER_METRICS.items():
                value = fields.get(field)
                if isinstance(value, int | float) and math.isfinite(value):
                    values[metric], units[metric] = round(value * scale, 6), unit
            properties = {"level": "INFO", "event": event}
        self._writer.write([Directive(units, [_CHALLENGER_DIMENSIONS])], values, dimensions,
                           properties)  # fmt: skip
