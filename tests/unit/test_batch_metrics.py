"""The batch metric lines (EMF spec, never a failure that reaches the worker), the
output summaries a chunk's batches add up to, and the comparison totals a batch
challenger's parts add up."""

from __future__ import annotations

import numpy as np
import pytest

from chalicelib.challenger import ComparisonTotals
from chalicelib.observability import MetricWriter
from chalicelib.observability.batch import BatchMetrics
from chalicelib.observability.telemetry import summary_metrics
from chalicelib.tasks import task_named
from chalicelib.tasks.answers import Comparison, OutputSummary
from tests.emf_spec import check_emf, metric_values, units
from tests.fakes import make_bundle

MODEL = {"name": "loan-grade", "version": "3", "engine": "litert"}


def _metrics() -> tuple[BatchMetrics, list[str]]:
    lines: list[str] = []
    return BatchMetrics(MetricWriter("T", lines.append), "svc", "dev"), lines


def test_a_chunk_line_carries_counts_and_rate() -> None:
    metrics, lines = _metrics()
    metrics.chunk_scored("job-1", 4, MODEL, (10, 2), 0.5)

    document = check_emf(lines[0])
    assert metric_values(document) == {
        "BatchChunks": 1, "BatchRows": 12, "BatchRowsScored": 10, "BatchRowsRejected": 2,
        "BatchRowsPerSecond": 24.0, "BatchChunkSeconds": 0.5,
    }  # fmt: skip
    assert units(document)["BatchRowsPerSecond"] == "Count/Second"
    assert (document["event"], document["job"], document["part"]) == ("batch_chunk_scored",
                                                                      "job-1", 4)  # fmt: skip
    assert (document["Version"], document["Engine"]) == ("3", "litert")


def test_a_parts_summary_adds_up_batch_by_batch() -> None:
    manifest = make_bundle(labels=("A", "B")).manifest
    task = task_named("classification")
    outputs = np.array([[0.75, 0.25], [0.25, 0.75]] * 5, np.float32)
    part = OutputSummary()
    part.add(task.summary(manifest, outputs[:3]))
    part.add(task.summary(manifest, outputs[3:]))
    assert summary_metrics(part) == {"Predicted.A": 5, "Predicted.B": 5,
                                     "MeanTopProbability": 0.75}  # fmt: skip
    assert summary_metrics(OutputSummary()) == {}  # only rejected rows: no prediction metrics


def test_challenger_lines_leave_out_absent_rates() -> None:
    metrics, lines = _metrics()
    metrics.challenger_scored("j", 0, MODEL, "4", {"rows": 7, "agreement_rate": None,
                                                   "mean_abs_probability_diff": 0.125})  # fmt: skip
    metrics.challenger_failed("j", 1, MODEL, "4", "not_found")
    scored, failed = (check_emf(line) for line in lines)
    assert metric_values(scored) == {"BatchChallengerRows": 7,
                                     "BatchChallengerProbabilityDiff": 0.125}  # fmt: skip
    assert metric_values(failed) == {"BatchChallengerFailures": 1}
    assert (failed["ChallengerVersion"], failed["error_code"]) == ("4", "not_found")


def test_a_broken_sink_never_reaches_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_line: str) -> None:
        raise OSError("stdout closed")

    metrics = BatchMetrics(MetricWriter("T", broken), "svc", "dev")
    metrics.job_split("j", MODEL, 10, 1)
    metrics.chunk_dead_lettered("j", 0, MODEL)
    logged = [r for r in caplog.records if r.getMessage() == "telemetry failed"]
    assert [r.fields["exception"] for r in logged] == ["OSError", "OSError"]  # type: ignore[attr-defined]


def test_totals_of_parts_equal_the_comparison_of_the_whole() -> None:
    manifest = make_bundle(labels=("A", "B")).manifest
    task = task_named("classification")
    champion = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    challenger = np.array([[0.8, 0.2], [0.6, 0.4], [0.5, 0.5]])

    def compare(rows: slice) -> Comparison:
        return task.compare(manifest, champion[rows], task, manifest, challenger[rows])

    first, second = ComparisonTotals(), ComparisonTotals()
    first.add(compare(slice(0, 1)))
    second.add(compare(slice(1, 3)))
    first.merge(ComparisonTotals(**vars(second)))  # as a done marker's JSON comes back
    whole = task.compare(manifest, champion, task, manifest, challenger)
    assert (whole.agreements, whole.probability_diff) == (2, pytest.approx(0.5 / 3))
    assert first.summary() == {
        "rows": 3,
        "agreement_rate": pytest.approx(whole.agreement_rate),
        "mean_abs_probability_diff": pytest.approx(whole.probability_diff),
    }
    assert ComparisonTotals().summary() == {
        "rows": 0, "agreement_rate": None, "mean_abs_probability_diff": None,
    }  # fmt: skip


def test_a_regression_parts_summary_is_the_mean_min_and_max_of_all_its_batches() -> None:
    manifest = make_bundle(task="regression", labels=(), outputs=("loss",)).manifest
    task = task_named("regression")
    part = OutputSummary()
    part.add(task.summary(manifest, np.array([[1.0], [3.0]])))
    part.add(task.summary(manifest, np.array([[8.0]])))
    assert summary_metrics(part) == {"PredictedMean": 4.0, "PredictedMin": 1.0,
                                     "PredictedMax": 8.0}  # fmt: skip
