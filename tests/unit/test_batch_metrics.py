"""The batch metric lines (EMF spec, never a failure that reaches the worker) and the
comparison totals a batch challenger's parts add up."""

from __future__ import annotations

import pytest

from chalicelib.batch_output import PredictionTally
from chalicelib.challenger import ComparisonTotals, compare
from chalicelib.observability import MetricWriter
from chalicelib.observability.batch import BatchMetrics
from tests.emf_spec import check_emf, metric_values, units

MODEL = {"name": "loan-grade", "version": "3", "engine": "litert"}


def _metrics() -> tuple[BatchMetrics, list[str]]:
    lines: list[str] = []
    return BatchMetrics(MetricWriter("T", lines.append), "svc", "dev"), lines


def test_a_chunk_line_carries_counts_rate_and_the_parts_prediction_summary() -> None:
    metrics, lines = _metrics()
    predictions = [{"label": "A", "probabilities": {"A": 0.75, "B": 0.25}},
                   {"label": "B", "probabilities": {"A": 0.25, "B": 0.75}}] * 5  # fmt: skip
    tally = PredictionTally(["A", "B"])
    tally.add(predictions[:3])  # batch by batch: the part's summary adds up
    tally.add(predictions[3:])
    metrics.chunk_scored("job-1", 4, MODEL, (10, 2), 0.5, tally.summary())

    document = check_emf(lines[0])
    assert metric_values(document) == {
        "BatchChunks": 1, "BatchRows": 12, "BatchRowsScored": 10, "BatchRowsRejected": 2,
        "BatchRowsPerSecond": 24.0, "BatchChunkSeconds": 0.5, "Predicted.A": 5,
        "Predicted.B": 5, "MeanTopProbability": 0.75,
    }  # fmt: skip
    assert units(document)["BatchRowsPerSecond"] == "Count/Second"
    assert (document["event"], document["job"], document["part"]) == ("batch_chunk_scored",
                                                                      "job-1", 4)  # fmt: skip
    assert (document["Version"], document["Engine"]) == ("3", "litert")


def test_a_chunk_of_only_rejected_rows_has_no_prediction_metrics() -> None:
    metrics, lines = _metrics()
    metrics.chunk_scored("job-1", 0, MODEL, (0, 3), 0.0, PredictionTally(["A"]).summary())
    values = metric_values(check_emf(lines[0]))
    assert (values["BatchRowsRejected"], values["BatchRowsPerSecond"]) == (3, 0.0)
    assert not [name for name in values if name.startswith("Predicted")]


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
    champion = [{"label": "A", "probabilities": {"A": 0.9, "B": 0.1}},
                {"label": "B", "probabilities": {"A": 0.4, "B": 0.6}},
                {"label": "A", "probabilities": {"A": 0.7, "B": 0.3}}]  # fmt: skip
    challenger = [{"label": "A", "probabilities": {"A": 0.8, "B": 0.2}},
                  {"label": "A", "probabilities": {"A": 0.6, "B": 0.4}},
                  {"label": "A", "probabilities": {"A": 0.5, "B": 0.5}}]  # fmt: skip
    first, second = ComparisonTotals(), ComparisonTotals()
    first.add(compare(champion[:1], challenger[:1]))
    second.add(compare(champion[1:], challenger[1:]))
    first.merge(ComparisonTotals(**vars(second)))  # as a done marker's JSON comes back
    whole = compare(champion, challenger)
    assert first.summary() == {
        "rows": 3,
        "agreement_rate": pytest.approx(whole.agreement_rate),
        "mean_abs_probability_diff": pytest.approx(whole.probability_diff),
    }
    assert ComparisonTotals().summary() == {
        "rows": 0, "agreement_rate": None, "mean_abs_probability_diff": None,
    }  # fmt: skip


def test_a_regression_parts_summary_is_the_mean_min_and_max_of_all_its_batches() -> None:
    tally = PredictionTally([])
    tally.add([{"values": {"loss": 1.0}}, {"values": {"loss": 3.0}}])
    tally.add([{"values": {"loss": 8.0}}])
    assert tally.summary() == {"PredictedMean": 4.0, "PredictedMin": 1.0, "PredictedMax": 8.0}
