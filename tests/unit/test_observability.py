"""Metrics (EMF lines, checked against the spec) and JSON log lines, over the fakes:
per request for every status, per load, per prediction batch; the sampled log."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chalicelib.config import ConfigurationError, Settings
from chalicelib.observability import MetricWriter, Telemetry
from chalicelib.observability.emf import Directive
from chalicelib.observability.logs import SDK_LOGGERS, JsonLineHandler, configure_json_logging
from chalicelib.observability.sampling import PredictionSampler
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore
from chalicelib.surfaces import rest
from chalicelib.wiring import build_telemetry
from tests.emf_spec import check_emf, emf_lines, metric_values, units
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    FakeS3,
    make_bundle,
    s3_holding,
)

JSON = "application/json"
RECORDS = [{"x0": 1, "x1": 2, "x2": 3, "x3": 4}, {"x0": 0, "x1": 0, "x2": 0, "x3": 0}]
KEY = "a-test-key-of-32-characters-long"


class NaNEngine(FakeEngine):
    """Passes the load probe, then answers NaN: an unscorable output (422)."""

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        valid = super().predict(inputs)
        return valid if len(self.calls) == 1 else np.full_like(valid, np.nan)


@pytest.fixture
def s3() -> FakeS3:
    return s3_holding(make_bundle(version="2", name="tiny"))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """The JSON lines chalicelib logs, at INFO."""
    lines: list[str] = []
    handler = JsonLineHandler(lines.append)
    chalicelib = logging.getLogger("chalicelib")
    level = chalicelib.level
    chalicelib.addHandler(handler)
    chalicelib.setLevel(logging.INFO)
    yield lines
    chalicelib.removeHandler(handler)
    chalicelib.setLevel(level)


def observed_service(
    s3: FakeS3, tmp_path: Path, metrics: list[str], engine: Any = None, **settings: Any
) -> PredictionService:
    telemetry = build_telemetry(Settings("b", stage="test", **settings), metrics.append)
    store = ModelStore(s3, BundleLocation(BUCKET, PREFIX), "litert", str(tmp_path),
                       FakeEngineLoader(engine), observer=telemetry)  # fmt: skip
    return PredictionService(store, max_records=2, telemetry=telemetry)


def events(lines: list[str], name: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, lines) if line.get("event") == name]


def request_metrics(metrics: list[str]) -> dict[str, Any]:
    (document,) = [d for d in emf_lines(metrics) if "Requests" in metric_values(d)]
    return document


def test_a_line_has_the_spec_shape_and_large_sets_split_into_directives() -> None:
    lines: list[str] = []
    writer = MetricWriter("Test", lines.append, clock=lambda: 1_800_000_000.5)
    many = {f"M{i}": "Count" for i in range(150)}
    writer.write([Directive(many, [("Service",)])], dict.fromkeys(many, 1), {"Service": "s"})
    document = check_emf(lines[0])
    assert document["_aws"]["Timestamp"] == 1_800_000_000_500
    assert [len(d["Metrics"]) for d in document["_aws"]["CloudWatchMetrics"]] == [100, 50]


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("ok", 200, None),
        ("bad_json", 400, "invalid_json"),
        ("too_many", 413, "too_many_records"),
        ("media_type", 415, "unsupported_media_type"),
        ("nan", 422, "unscorable_records"),
        ("no_model", 503, "model_unavailable"),
    ],
)
def test_request_metrics_and_log_line_for_each_status(
    s3: FakeS3, tmp_path: Path, log_lines: list[str], case: str, status: int, code: str | None
) -> None:
    metrics: list[str] = []
    if case == "no_model":
        s3.objects.clear()
    service = observed_service(s3, tmp_path, metrics, NaNEngine() if case == "nan" else None)
    body = {"bad_json": b"nope", "too_many": json.dumps(RECORDS * 2).encode()}.get(
        case, json.dumps({"instances": RECORDS}).encode()
    )
    media = "text/plain" if case == "media_type" else JSON
    answer = rest.predict(lambda: service, lambda: body, media, ["req-1"])
    assert answer.status == status

    document = request_metrics(metrics)  # the request's one line: log fields and metrics
    values = metric_values(document)
    assert values["Requests"] == 1
    assert values["Status4xx"] == int(400 <= status < 500)
    assert values["Status5xx"] == int(status >= 500)
    assert units(document)["Latency"] == "Milliseconds" and values["Latency"] > 0
    assert document["Service"] == "keras-model-serving" and document["Stage"] == "test"
    assert document.get("ErrorCode") == code and ("Errors" in values) == (code is not None)
    assert document["event"] == "request" and document["request_id"] == "req-1"
    assert document["status"] == status and document["error_code"] == code
    assert document["cold_start"] is True and document["level"] == "INFO"
    if status in (200, 422):  # the model loaded: its dimensions, and the phases that ran
        assert [document[k] for k in ("Model", "Version", "Engine")] == ["tiny", "2", "fake"]
        assert {"ParseLatency", "ValidateLatency", "PredictLatency"} <= set(values)
        assert values["Records"] == 2
    if status == 200:  # and the prediction batch's metrics
        assert "SerialiseLatency" in values
        batch = {k: v for k, v in values.items() if k.startswith("Predicted.") or "Top" in k}
        assert batch == {"Predicted.A": 1, "Predicted.B": 1, "Predicted.C": 0,
                         "MeanTopProbability": 0.5}  # fmt: skip
        assert units(document)["Predicted.A"] == "Count"
    else:
        assert "SerialiseLatency" not in values and "Predicted.A" not in values
    assert len(events(metrics, "request")) == 1
    assert not [line for line in log_lines if '"request"' in line]  # not a second time


def test_the_second_request_is_warm(s3: FakeS3, tmp_path: Path) -> None:
    lines: list[str] = []
    service = observed_service(s3, tmp_path, lines)
    body = json.dumps(RECORDS).encode()
    for _ in range(2):
        assert rest.predict(lambda: service, lambda: body, JSON).status == 200
    assert [line["cold_start"] for line in events(lines, "request")] == [True, False]
    assert all(len(line["request_id"]) == 36 for line in events(lines, "request"))  # UUIDs


def test_load_metrics_failure_by_kind_then_cold_start_only_on_the_first_load(
    s3: FakeS3, tmp_path: Path
) -> None:
    from tests.fakes import internal_error

    metrics: list[str] = []
    s3.fail(internal_error(), times=1)
    service = observed_service(s3, tmp_path, metrics)
    with pytest.raises(Exception, match="retry later"):
        service.store.get()
    service.store.get()
    service.telemetry.load_done("tiny", "3", "fake", ["A", "B", "C"], 0.25)  # a later load
    failure, first, later = emf_lines(metrics)
    assert metric_values(failure) == {"ModelLoadFailures": 1}
    assert failure["ErrorKind"] == "StorageUnreachable"
    assert metric_values(first).keys() == {"ModelLoadSeconds", "ColdStart"}
    assert units(first) == {"ModelLoadSeconds": "Seconds", "ColdStart": "Count"}
    assert metric_values(later) == {"ModelLoadSeconds": 0.25} and later["Version"] == "3"
    names = [json.loads(line)["event"] for line in metrics]
    assert names == ["model_load_started", "model_load_failed", "model_load_started",
                     "model_load_done", "model_load_done"]  # fmt: skip
    (failed,) = events(metrics, "model_load_failed")
    assert failed["error_code"] == "model_unavailable" and failed["level"] == "WARNING"


def test_numeric_outputs_are_summarised_by_their_task() -> None:
    from chalicelib.observability.telemetry import summary_metrics
    from chalicelib.tasks import task_named
    from tests.fakes import make_bundle

    def metrics(task: str, names: tuple[str, ...], outputs: list[list[float]]) -> dict[str, float]:
        bundle = (make_bundle(task=task, labels=(), outputs=names) if task == "regression"
                  else make_bundle(task=task, labels=names))  # fmt: skip
        return summary_metrics(task_named(task).summary(bundle.manifest, np.array(outputs)))

    assert metrics("regression", ("loss",), [[1.0], [3.0]]) == {
        "PredictedMean": 2.0, "PredictedMin": 1.0, "PredictedMax": 3.0
    }  # fmt: skip
    assert metrics("regression", ("loss", "recovery"), [[1.0, -2.0], [3.0, 4.0]]) == {
        "PredictedMean.loss": 2.0, "PredictedMin.loss": 1.0, "PredictedMax.loss": 3.0,
        "PredictedMean.recovery": 1.0, "PredictedMin.recovery": -2.0,
        "PredictedMax.recovery": 4.0,
    }  # fmt: skip
    assert metrics("multilabel", ("fraud", "late"), [[0.9, 0.6], [0.1, 0.2]]) == {
        "Predicted.fraud": 1, "Predicted.late": 1, "MeanTopProbability": 0.55
    }  # fmt: skip
    assert metrics("binary", ("good", "bad"), [[0.8], [0.1]]) == {
        "Predicted.good": 1, "Predicted.bad": 1, "MeanTopProbability": 0.85
    }  # fmt: skip


def test_sampled_requests_log_keyed_hashes_and_outputs(s3: FakeS3, tmp_path: Path) -> None:
    lines: list[str] = []
    service = observed_service(s3, tmp_path, lines, prediction_log_sample=1.0,
                               prediction_log_key=KEY)  # fmt: skip
    reordered = [dict(reversed(list(RECORDS[0].items()))), RECORDS[1]]
    assert rest.predict(lambda: service, lambda: json.dumps(reordered).encode(), JSON).status == 200
    (sample,) = events(lines, "prediction_sample")
    canonical = json.dumps(RECORDS[0], sort_keys=True, separators=(",", ":"))
    expected = hmac.new(KEY.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    assert sample["predictions"][0]["record_hmac"] == expected  # key order does not matter
    assert sample["predictions"][1]["output"]["label"] == "B"
    assert sample["model_version"] == "2"


def test_sampling_draws_per_request() -> None:
    draws = iter([0.5, 0.005])
    sampler = PredictionSampler(0.01, b"k" * 16, draw=lambda: next(draws))
    assert [sampler.sampled(), sampler.sampled()] == [False, True]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PREDICTION_LOG_SAMPLE": "0.01"}, "needs PREDICTION_LOG_KEY"),
        ({"PREDICTION_LOG_SAMPLE": "0.01", "PREDICTION_LOG_KEY": "short"}, "needs"),
        ({"PREDICTION_LOG_SAMPLE": "2"}, "between 0 and 1"),
        ({"PREDICTION_LOG_SAMPLE": "nan"}, "between 0 and 1"),
        ({"PREDICTION_LOG_SAMPLE": "often"}, "must be a number"),
    ],
)
def test_sampling_is_refused_without_a_key_or_with_a_bad_rate(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({"MODEL_BUCKET": "b"} | env)


def test_observability_settings_from_env() -> None:
    env = {"STAGE": "prod", "PREDICTION_LOG_SAMPLE": "0.01", "PREDICTION_LOG_KEY": KEY}
    settings = Settings.from_env({"MODEL_BUCKET": "b"} | env)
    assert (settings.stage, settings.prediction_log_sample) == ("prod", 0.01)
    assert KEY not in repr(settings)
    default = Settings.from_env({"MODEL_BUCKET": "b"})
    assert (default.stage, default.metrics_namespace, default.prediction_log_sample) == (
        "local", "KerasModelServing", 0.0)  # fmt: skip


def test_an_exception_is_logged_as_its_type_and_frames_only() -> None:
    lines: list[str] = []
    log = logging.getLogger("chalicelib.test_observability")
    handler = JsonLineHandler(lines.append)
    log.addHandler(handler)
    try:
        try:
            raise ValueError("the value ZZMARKER123 was bad")
        except ValueError:
            log.exception("unhandled error")
    finally:
        log.removeHandler(handler)
    (line,) = map(json.loads, lines)
    assert line["exception"] == "ValueError" and line["message"] == "unhandled error"
    assert "ZZMARKER123" not in lines[0] and "test_observability.py" in line["traceback"][0]


def test_telemetry_never_breaks_an_answer(s3: FakeS3, tmp_path: Path) -> None:
    def broken_sink(_line: str) -> None:
        raise OSError("stdout closed")

    telemetry = Telemetry(MetricWriter("T", broken_sink), "s", "t")
    store = ModelStore(s3, BundleLocation(BUCKET, PREFIX), "litert", str(tmp_path),
                       FakeEngineLoader(), observer=telemetry)  # fmt: skip
    service = PredictionService(store, 2, telemetry)
    assert rest.predict(lambda: service, lambda: json.dumps(RECORDS).encode(), JSON).status == 200


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Root handlers and the levels the test changes, as they were."""
    root = logging.getLogger()
    handlers, root_level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("chalicelib", *SDK_LOGGERS)}
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_the_sdks_set_up_lines_stay_out_of_the_log_under_chalice_locals_info_root(
    restored_logging: None,
) -> None:
    lines: list[str] = []
    logging.getLogger().setLevel(logging.INFO)  # what `chalice local` does
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    configure_json_logging(["chalicelib"], logging.INFO, sink=lines.append)
    logging.getLogger("botocore.credentials").info("Found credentials in environment variables.")
    logging.getLogger("botocore.endpoint").warning("endpoint unreachable")
    logging.getLogger("chalicelib.store").info("loaded model")
    messages = [json.loads(line)["message"] for line in lines]
    assert messages == ["endpoint unreachable", "loaded model"]
