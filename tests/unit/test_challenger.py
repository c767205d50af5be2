"""Champion/challenger over fakes: the sampled requests are scored by the pinned
challenger after the champion, the agreement and difference math, and that no
challenger failure ever changes the champion's answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from chalicelib.challenger import Challenger
from chalicelib.manifest import BundleManifest
from chalicelib.service import PredictionService
from chalicelib.tasks import task_named
from chalicelib.tasks.answers import Comparison
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeClock,
    FakeEngine,
    FakeS3,
    RecordingObserver,
    make_bundle,
    make_store,
    put_bundle,
    s3_holding,
)
from tests.unit.test_tasks import schema_validator

RECORDS = [{"x0": i, "x1": 0.5, "x2": -1, "x3": 2.0} for i in range(4)]
#: The champion (version 1) answers A for every record; the challenger (version 2)
#: answers A, B, A, B: it agrees on half the records.
CHAMPION_ROWS = [[0.7, 0.2, 0.1]]
CHALLENGER_ROWS = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1]]


class ByContent:
    """Engine loader: the artifact's bytes name the engine."""

    def __init__(self, engines: dict[bytes, Any]) -> None:
        self.engines = engines

    def __call__(self, kind: str, path: str) -> Any:
        return self.engines[Path(path).read_bytes()]


def draws(*values: float) -> Any:
    """A `draw` returning `values` in turn, then repeating the last."""
    it: Iterator[float] = iter(values)
    last = [values[-1]]

    def draw() -> float:
        last[0] = next(it, last[0])
        return last[0]

    return draw


@pytest.fixture
def s3() -> FakeS3:
    return s3_holding(
        make_bundle(version="2", artifacts={"litert": b"v2"}),
        make_bundle(version="1", artifacts={"litert": b"v1"}),
    )


def services(
    s3: FakeS3, tmp_path: Path, *, sample: float = 1.0, draw: Any = None,
    challenger_engine: Any = None, challenger_version: str = "2", observer: Any = None,
) -> tuple[PredictionService, PredictionService, Challenger]:  # fmt: skip
    """(champion alone, champion with a challenger, the challenger)."""
    loader = ByContent({
        b"v1": FakeEngine(rows=CHAMPION_ROWS),
        b"v2": challenger_engine or FakeEngine(rows=CHALLENGER_ROWS),
    })  # fmt: skip
    challenger = Challenger(
        make_store(s3, tmp_path, loader, version=challenger_version),
        sample,
        draw=draw or draws(0.0),
        observer=observer or RecordingObserver(),
    )
    alone = PredictionService(make_store(s3, tmp_path, loader), 1000)
    shadowed = PredictionService(make_store(s3, tmp_path, loader), 1000, challenger=challenger)
    return alone, shadowed, challenger


def test_the_response_is_the_champions_byte_for_byte(s3: FakeS3, tmp_path: Path) -> None:
    alone, shadowed, challenger = services(s3, tmp_path)
    assert orjson.dumps(shadowed.predict(RECORDS)) == orjson.dumps(alone.predict(RECORDS))
    assert challenger.requests_scored == 1


def test_a_sampled_request_reports_agreement_differences_and_latency(
    s3: FakeS3, tmp_path: Path
) -> None:
    observer = RecordingObserver()
    _, shadowed, _ = services(s3, tmp_path, observer=observer)
    shadowed.predict(RECORDS)
    [event] = observer.named("challenger_scored")
    assert event["model"] == "tiny"
    assert (event["champion_version"], event["challenger_version"]) == ("1", "2")
    assert event["records"] == 4 and event["agreement_rate"] == 0.5
    # |0.7-0.6|,|0.2-0.3|,0 -> 0.0667 and |0.7-0.2|,|0.2-0.7|,0 -> 0.3333: mean 0.2
    assert event["mean_abs_probability_diff"] == pytest.approx(0.2, abs=1e-6)
    assert event["mean_abs_value_diff"] is None and event["latency_seconds"] >= 0


def test_only_the_sampled_fraction_is_scored(s3: FakeS3, tmp_path: Path) -> None:
    _, shadowed, challenger = services(s3, tmp_path, sample=0.25,
                                       draw=draws(0.1, 0.9, 0.25, 0.3, 0.0))  # fmt: skip
    for _ in range(5):
        shadowed.predict(RECORDS)
    assert challenger.requests_scored == 2  # the draws below 0.25


def test_health_shows_the_challengers_state_and_the_model_route_its_scores(
    s3: FakeS3, tmp_path: Path
) -> None:
    _, shadowed, _ = services(s3, tmp_path)
    assert shadowed.health()["challenger"] == {
        "version": "2", "sample": 1.0, "state": "not_loaded", "requests_scored": 0,
        "records_compared": 0, "failures": 0,
    }  # fmt: skip
    shadowed.predict(RECORDS)
    shadowed.predict(RECORDS[:1])  # agrees: record 0 is A for both
    state = shadowed.health()["challenger"]
    assert state["state"] == "loaded" and state["requests_scored"] == 2
    # Model outputs' aggregates are not for the public health check: GET /model has them.
    assert "agreement" not in state and "mean_abs_probability_diff" not in state
    scores = shadowed.model_info()["challenger"]
    assert scores["records_compared"] == 5 and scores["agreement"] == pytest.approx(3 / 5)
    schema_validator("Health").validate(shadowed.health())
    schema_validator("ModelInfo").validate(shadowed.model_info())


def test_a_challenger_that_cannot_load_changes_nothing(s3: FakeS3, tmp_path: Path) -> None:
    observer = RecordingObserver()
    alone, shadowed, challenger = services(s3, tmp_path, challenger_version="9",
                                           observer=observer)  # fmt: skip
    assert orjson.dumps(shadowed.predict(RECORDS)) == orjson.dumps(alone.predict(RECORDS))
    state = shadowed.health()["challenger"]
    assert (state["state"], state["last_failure"], state["failures"]) == ("failed", "not_found", 1)
    assert observer.named("challenger_failed") == [{
        "model": "tiny", "champion_version": "1", "challenger_version": "9",
        "stage": "load", "code": "not_found",
    }]  # fmt: skip
    assert challenger.requests_scored == 0


class _NanAfterProbe(FakeEngine):
    """Passes the store's load probe, then answers NaN."""

    def predict(self, inputs: Any) -> Any:
        rows = super().predict(inputs)
        if len(self.calls) > 1:
            rows[:] = float("nan")
        return rows


@pytest.mark.parametrize(
    ("engine", "code"),
    [
        (FakeEngine(error=RuntimeError("boom"), fail_after=1), "internal_error"),
        (_NanAfterProbe(), "invalid_outputs"),
    ],
)
def test_a_challenger_that_fails_to_predict_changes_nothing(
    s3: FakeS3, tmp_path: Path, engine: FakeEngine, code: str
) -> None:
    alone, shadowed, challenger = services(s3, tmp_path, challenger_engine=engine)
    assert orjson.dumps(shadowed.predict(RECORDS)) == orjson.dumps(alone.predict(RECORDS))
    assert challenger.failures == 1 and challenger.last_failure == code


def test_records_the_challenger_refuses_change_nothing(s3: FakeS3, tmp_path: Path) -> None:
    other = make_bundle(version="3", features=("y0", "y1"), artifacts={"litert": b"v2"})
    put_bundle(s3, BUCKET, PREFIX, other, promote=False)
    alone, shadowed, challenger = services(s3, tmp_path, challenger_version="3")
    assert orjson.dumps(shadowed.predict(RECORDS)) == orjson.dumps(alone.predict(RECORDS))
    assert challenger.last_failure == "invalid_records"


def test_an_observer_that_raises_changes_nothing(s3: FakeS3, tmp_path: Path) -> None:
    def broken(event: str, fields: Any) -> None:
        raise RuntimeError("metrics sink down")

    alone, shadowed, challenger = services(s3, tmp_path, observer=broken)
    assert orjson.dumps(shadowed.predict(RECORDS)) == orjson.dumps(alone.predict(RECORDS))
    assert challenger.requests_scored == 1


def _manifest(task: str, names: tuple[str, ...]) -> BundleManifest:
    if task == "regression":
        return make_bundle(task=task, labels=(), outputs=names).manifest
    return make_bundle(task=task, labels=names).manifest


def compare(
    task: str, ours: tuple[tuple[str, ...], list[list[float]]],
    theirs: tuple[tuple[str, ...], list[list[float]]],
) -> Comparison:  # fmt: skip
    """The task's comparison of two versions' output matrices (names, rows)."""
    kind = task_named(task)
    mine, other = _manifest(task, ours[0]), _manifest(task, theirs[0])
    return kind.compare(mine, np.array(ours[1]), kind, other, np.array(theirs[1]))


def test_compare_multilabel_sets_and_regression_values() -> None:
    multilabel = compare("multilabel", (("a", "b"), [[0.9, 0.8]]), (("b", "a"), [[0.6, 0.7]]))
    assert multilabel.agreement_rate == 1.0  # the same set, named in another order
    assert multilabel.probability_diff == pytest.approx(0.2)
    regression = compare("regression", (("y",), [[10.0], [2.0]]), (("y",), [[13.0], [1.0]]))
    assert regression.agreement_rate is None and regression.probability_diff is None
    assert regression.value_diff == pytest.approx(2.0)


def test_compare_uses_only_the_probabilities_both_versions_name() -> None:
    result = compare("classification", (("a", "b"), [[0.6, 0.4]]), (("a", "c"), [[0.5, 0.5]]))
    assert result.agreement_rate == 1.0 and result.probability_diff == pytest.approx(0.1)


def test_a_failed_challenger_load_is_retried_only_after_a_pause(s3: FakeS3, tmp_path: Path) -> None:
    clock = FakeClock()
    challenger = Challenger(make_store(s3, tmp_path, version="9"), 1.0, draw=draws(0.0),
                            load_retry_seconds=60, clock=clock)  # fmt: skip
    service = PredictionService(make_store(s3, tmp_path, ByContent({
        b"v1": FakeEngine(rows=CHAMPION_ROWS), b"v2": FakeEngine(rows=CHALLENGER_ROWS),
    })), 1000, challenger=challenger)  # fmt: skip
    manifests = lambda: sum(key.endswith("9/manifest.json") for _, _, key in s3.calls)  # noqa: E731
    for _ in range(5):
        service.predict(RECORDS)
    assert challenger.failures == 1 and manifests() == 1  # one try, then a pause
    put_bundle(s3, BUCKET, PREFIX, make_bundle(version="9", artifacts={"litert": b"v2"}),
               promote=False)  # fmt: skip
    clock.advance(60)
    service.predict(RECORDS)
    assert challenger.requests_scored == 1 and service.health()["challenger"]["state"] == "loaded"
