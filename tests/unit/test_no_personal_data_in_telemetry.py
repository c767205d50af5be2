"""The marker test: a marker planted in every field (values, a key name, headers, the
query) of good and bad requests appears in no log line and no metric line. In-process
through the Lambda handler `app.app(event, context)`, its stdout captured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import wiring
from chalicelib.config import Settings
from chalicelib.service import PredictionService
from chalicelib.store import BundleLocation, ModelStore
from localdev.apigw_events import LambdaContext, proxy_event
from tests.emf_spec import emf_lines
from tests.fakes import (
    BUCKET,
    PREFIX,
    FakeEngine,
    FakeEngineLoader,
    make_bundle,
    s3_holding,
)

MARKER = "ZZMARKER123"
MARKER_NUMBER = 987654.321
MARKERS = (MARKER, "987654", "ZZMARKERKEY")
FIELDS = ("x0", "x1", "x2", "x3")


def marked(event: dict[str, Any]) -> dict[str, Any]:
    """The event with marker header values, a marker header name and a marker query."""
    headers = event["headers"] | {"X-Note": MARKER, "ZZMARKERKEY": MARKER, "User-Agent": MARKER}
    return event | {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {"note": MARKER},
        "multiValueQueryStringParameters": {"note": [MARKER]},
    }


GOOD = [dict.fromkeys(FIELDS, MARKER_NUMBER), dict.fromkeys(FIELDS, -MARKER_NUMBER)]
BAD_RECORDS = [
    dict.fromkeys(FIELDS, MARKER) | {"ZZMARKERKEY": MARKER},
    {"ZZMARKERKEY": MARKER_NUMBER, MARKER: [MARKER]},
    MARKER,
]
EVENTS = {
    "good": proxy_event("POST", "/predict", {"instances": GOOD}),
    "bad records": proxy_event("POST", "/predict", {"instances": BAD_RECORDS}),
    "bad shape": proxy_event("POST", "/predict", {"ZZMARKERKEY": MARKER}),
    "bad json": proxy_event("POST", "/predict", f'{{"instances": [{{"{MARKER}": '),
    "too many": proxy_event("POST", "/predict", [GOOD[0]] * 4),
    "media type": proxy_event("POST", "/predict", MARKER, content_type=f"text/{MARKER}"),
    "charset": proxy_event(
        "POST", "/predict", GOOD, content_type=f"application/json; charset={MARKER}"
    ),
    "wrong method": proxy_event("GET", "/predict"),
    "unknown path": proxy_event("POST", f"/{MARKER}", GOOD),
}


class ExplodingEngine(FakeEngine):
    """Loads, then fails with a message holding a submitted value (a 500)."""

    def predict(self, inputs: Any) -> Any:
        if self.calls:
            raise RuntimeError(f"cannot score {MARKER} {MARKER_NUMBER}")
        return super().predict(inputs)


@pytest.fixture
def handler() -> Iterator[Any]:
    from app import app

    yield app
    wiring.install_service(None)


def install(tmp_path: Path, engine: Any = None) -> None:
    """A service over the fakes with real telemetry (stdout) and sampling on."""
    s3 = s3_holding(make_bundle(version="2", name="tiny"))
    settings = Settings("b", stage="test", prediction_log_sample=1.0,
                        prediction_log_key="k" * 32)  # fmt: skip
    telemetry = wiring.build_telemetry(settings)
    store = ModelStore(s3, BundleLocation(BUCKET, PREFIX), "litert", str(tmp_path),
                       FakeEngineLoader(engine), observer=telemetry)  # fmt: skip
    wiring.install_service(PredictionService(store, 3, telemetry))


def assert_no_marker(output: str) -> None:
    for marker in MARKERS:
        assert marker not in output, f"{marker} leaked into: {output[:2000]}"


def test_no_marker_in_any_log_or_metric_line(
    handler: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tmp_path)
    statuses = {name: handler(marked(event), LambdaContext())["statusCode"]
                for name, event in EVENTS.items()}  # fmt: skip
    assert statuses == {"good": 200, "bad records": 400, "bad shape": 400, "bad json": 400,
                        "too many": 413, "media type": 415, "charset": 415,
                        "wrong method": 405, "unknown path": 404}  # fmt: skip
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line]
    assert all(line.startswith("{") for line in lines)  # every line is JSON
    requests = [json.loads(line) for line in lines if '"event":"request"' in line]
    assert len(requests) == 7 and requests[0]["status"] == 200  # one per /predict
    assert any('"event":"prediction_sample"' in line for line in lines)
    assert len(emf_lines(lines)) >= 8  # load, 7 requests, a prediction batch: all valid EMF
    assert_no_marker(captured.out + captured.err)


def test_no_marker_when_the_engine_fails_with_it_in_its_message(
    handler: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tmp_path, ExplodingEngine())
    assert handler(marked(EVENTS["good"]), LambdaContext())["statusCode"] == 500
    captured = capsys.readouterr()
    errors = [json.loads(line) for line in captured.out.splitlines() if '"exception"' in line]
    assert [e["exception"] for e in errors] == ["RuntimeError"] and errors[0]["traceback"]
    assert_no_marker(captured.out + captured.err)
