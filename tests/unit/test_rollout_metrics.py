"""Refresh and challenger events as EMF lines, checked against the specification; and
a refreshed version reaches the load observer (it names the metrics' Version)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.observability.emf import MetricWriter
from chalicelib.observability.rollout import RolloutMetrics
from chalicelib.refresh import RefreshSchedule
from tests.emf_spec import check_emf, metric_values, units
from tests.fakes import BUCKET, PREFIX, FakeClock, FakeS3, make_bundle, make_store, put_bundle


def metrics() -> tuple[RolloutMetrics, list[str]]:
    lines: list[str] = []
    return RolloutMetrics(MetricWriter("Test", lines.append), "svc", "dev"), lines


def test_a_refresh_is_one_emf_line_by_outcome() -> None:
    observer, lines = metrics()
    observer("model_refresh", {"model": "tiny", "outcome": "failed", "code": "corrupt",
                               "serving_version": "1", "previous_version": "1",
                               "seconds": 0.25})  # fmt: skip
    document = check_emf(lines[0])
    assert metric_values(document) == {
        "ModelRefreshes": 1, "ModelRefreshFailures": 1, "ModelRefreshSeconds": 0.25,
    }  # fmt: skip
    assert units(document)["ModelRefreshSeconds"] == "Seconds"
    assert (document["RefreshOutcome"], document["Model"], document["Stage"]) == (
        "failed", "tiny", "dev",
    )  # fmt: skip
    assert document["error_code"] == "corrupt" and document["level"] == "WARNING"


def test_a_challenger_score_carries_both_versions_as_dimensions() -> None:
    observer, lines = metrics()
    observer("challenger_scored", {
        "model": "tiny", "champion_version": "1", "challenger_version": "2", "records": 4,
        "agreement_rate": 0.5, "mean_abs_probability_diff": 0.2, "mean_abs_value_diff": None,
        "latency_seconds": 0.0031,
    })  # fmt: skip
    document = check_emf(lines[0])
    assert metric_values(document) == {
        "ChallengerAgreement": 0.5, "ChallengerProbabilityDiff": 0.2, "ChallengerLatency": 3.1,
        "ChallengerRecords": 4,
    }  # fmt: skip
    assert units(document)["ChallengerLatency"] == "Milliseconds"
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Service", "Stage", "Model", "Version", "ChallengerVersion"]
    ]
    assert (document["Version"], document["ChallengerVersion"]) == ("1", "2")


def test_a_challenger_failure_is_counted() -> None:
    observer, lines = metrics()
    observer("challenger_failed", {"model": "tiny", "champion_version": "1",
                                   "challenger_version": "9", "stage": "load",
                                   "code": "not_found"})  # fmt: skip
    document = check_emf(lines[0])
    assert metric_values(document) == {"ChallengerFailures": 1}
    assert (document["stage"], document["error_code"]) == ("load", "not_found")


class LoadRecorder:
    def __init__(self) -> None:
        self.done: list[str] = []

    def load_started(self, location: str) -> None:
        pass

    def load_done(self, name: str, version: str, engine: str, labels: Any, seconds: float) -> None:
        self.done.append(version)

    def load_failed(self, error: BaseException, seconds: float) -> None:
        pass


def test_a_refreshed_version_is_told_to_the_load_observer(tmp_path: Path) -> None:
    s3, clock, loads = FakeS3(buckets={BUCKET}), FakeClock(), LoadRecorder()
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="1"))
    store = make_store(s3, tmp_path, refresh=RefreshSchedule(10, clock=clock), loads=loads)
    store.get()
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="2", artifacts={"litert": b"two"}))
    clock.advance(10)
    store.get()
    assert loads.done == ["1", "2"]
