"""Batch jobs' events as EMF metrics plus log fields (one line each, never a value).

    batch_job_split        BatchJobs, BatchJobRows, BatchJobChunks (Count)
                           by (Service, Stage, Model, Version, Engine)
    batch_job_failed       BatchJobFailures (Count) by (Service, Stage, ErrorCode):
                           not_csv_or_jsonl | not_text | header_unreadable |
                           header_mismatch | input_unreadable | input_replaced |
                           options_invalid | split_failed
    batch_chunk_scored     BatchChunks, BatchRows, BatchRowsScored, BatchRowsRejected
                           (Count), BatchRowsPerSecond (Count/Second), BatchChunkSeconds
                           (Seconds) by (Service, Stage, Model, Version, Engine); the
                           part's prediction summary is on the chunk's request line
                           (Surface batch_chunk, chalicelib.observability.telemetry)
    batch_chunk_dead_lettered  BatchChunksDeadLettered (Count) by (Service, Stage, Model,
                           Version)
    batch_challenger_scored    BatchChallengerRows (Count), BatchChallengerAgreement,
    batch_challenger_failed    BatchChallengerProbabilityDiff (None), or
                           BatchChallengerFailures (Count), by (Service, Stage, Model,
                           Version, ChallengerVersion)

Cardinality: as the request metrics (versions are the pinned ones; eight error codes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from chalicelib.observability import names
from chalicelib.observability.emf import Directive, MetricWriter
from chalicelib.observability.rollout import CHALLENGER_VERSION
from chalicelib.observability.telemetry import _never_raises

_CHUNK_UNITS = {
    "BatchChunks": names.COUNT,
    "BatchRows": names.COUNT,
    "BatchRowsScored": names.COUNT,
    "BatchRowsRejected": names.COUNT,
    "BatchRowsPerSecond": "Count/Second",
    "BatchChunkSeconds": names.SECONDS,
}
_SPLIT_DIRECTIVE = Directive(
    {"BatchJobs": names.COUNT, "BatchJobRows": names.COUNT, "BatchJobChunks": names.COUNT},
    [names.MODEL_DIMENSIONS],
)
_FAILED_DIRECTIVE = Directive(
    {"BatchJobFailures": names.COUNT}, [(names.SERVICE, names.STAGE, names.ERROR_CODE)]
)
_DEAD_DIRECTIVE = Directive(
    {"BatchChunksDeadLettered": names.COUNT},
    [(names.SERVICE, names.STAGE, names.MODEL, names.VERSION)],
)
_CHALLENGER_METRICS = (("agreement_rate", "BatchChallengerAgreement"),
                       ("mean_abs_probability_diff", "BatchChallengerProbabilityDiff"))  # fmt: skip
_CHALLENGER_DIMENSIONS = (names.SERVICE, names.STAGE, names.MODEL, names.VERSION,
                          CHALLENGER_VERSION)  # fmt: skip


class BatchMetrics:
    """Writes the splitter's, the workers' and the dead-letter handler's lines; a failure
    in here is logged by type and never fails a chunk."""

    def __init__(self, writer: MetricWriter, service: str, stage: str) -> None:
        self._writer = writer
        self._base = {names.SERVICE: service, names.STAGE: stage}

    @classmethod
    def discarding(cls) -> BatchMetrics:
        return cls(MetricWriter("none", sink=lambda _line: None), "none", "none")

    @_never_raises
    def job_split(self, job: str, model: Mapping[str, str], rows: int, chunks: int) -> None:
        values = {"BatchJobs": 1, "BatchJobRows": rows, "BatchJobChunks": chunks}
        self._writer.write([_SPLIT_DIRECTIVE], values, self._model(model),
                           {"level": "INFO", "event": "batch_job_split", "job": job})  # fmt: skip

    @_never_raises
    def job_failed(self, job: str, code: str) -> None:
        dimensions = self._base | {names.ERROR_CODE: code}
        self._writer.write([_FAILED_DIRECTIVE], {"BatchJobFailures": 1}, dimensions,
                           {"level": "WARNING", "event": "batch_job_failed", "job": job,
                            "error_code": code})  # fmt: skip

    @_never_raises
    def chunk_scored(
        self,
        job: str,
        part: int,
        model: Mapping[str, str],
        counts: tuple[int, int],
        seconds: float,
    ) -> None:
        """`counts` is (scored, rejected); `model` has name, version and engine."""
        scored, rejected = counts
        rows = scored + rejected
        rate = rows / seconds if seconds > 0 else 0.0
        values: dict[str, float] = {
            "BatchChunks": 1, "BatchRows": rows, "BatchRowsScored": scored,
            "BatchRowsRejected": rejected, "BatchRowsPerSecond": round(rate, 3),
            "BatchChunkSeconds": round(seconds, 6),
        }  # fmt: skip
        directives = [Directive(_CHUNK_UNITS, [names.MODEL_DIMENSIONS])]
        self._writer.write(directives, values, self._model(model),
                           {"level": "INFO", "event": "batch_chunk_scored", "job": job,
                            "part": part})  # fmt: skip

    @_never_raises
    def chunk_dead_lettered(self, job: str, part: int, model: Mapping[str, str]) -> None:
        dimensions = self._base | {names.MODEL: model["name"], names.VERSION: model["version"]}
        self._writer.write([_DEAD_DIRECTIVE], {"BatchChunksDeadLettered": 1}, dimensions,
                           {"level": "WARNING", "event": "batch_chunk_dead_lettered",
                            "job": job, "part": part})  # fmt: skip

    @_never_raises
    def challenger_scored(self, job: str, part: int, model: Mapping[str, str], challenger: str,
                          stats: Mapping[str, Any]) -> None:  # fmt: skip
        """`stats` as `ComparisonTotals.summary()`: rows, agreement_rate, probability diff."""
        values: dict[str, float] = {"BatchChallengerRows": stats["rows"]}
        units = {"BatchChallengerRows": names.COUNT}
        for field, metric in _CHALLENGER_METRICS:
            value = stats.get(field)
            if isinstance(value, int | float) and math.isfinite(value):
                values[metric], units[metric] = round(value, 6), names.NONE
        self._writer.write([Directive(units, [_CHALLENGER_DIMENSIONS])], values,
                           self._challenger(model, challenger),
                           {"level": "INFO", "event": "batch_challenger_scored", "job": job,
                            "part": part})  # fmt: skip

    @_never_raises
    def challenger_failed(self, job: str, part: int, model: Mapping[str, str], challenger: str,
                          code: str) -> None:  # fmt: skip
        directive = Directive({"BatchChallengerFailures": names.COUNT}, [_CHALLENGER_DIMENSIONS])
        self._writer.write([directive], {"BatchChallengerFailures": 1},
                           self._challenger(model, challenger),
                           {"level": "WARNING", "event": "batch_challenger_failed", "job": job,
                            "part": part, "error_code": code})  # fmt: skip

    def _model(self, model: Mapping[str, str]) -> dict[str, str]:
        return self._base | {names.MODEL: model["name"], names.VERSION: model["version"],
                             names.ENGINE: model["engine"]}  # fmt: skip

    def _challenger(self, model: Mapping[str, str], challenger: str) -> dict[str, str]:
        return self._base | {names.MODEL: model["name"], names.VERSION: model["version"],
                             CHALLENGER_VERSION: challenger}  # fmt: skip
