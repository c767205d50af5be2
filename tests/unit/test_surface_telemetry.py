"""Every surface is counted the same way, by the core: one request line with EMF per
/predict, V2 infer and /batch call (the `Surface` dimension says which), for answers
and refusals alike; the challenger shadow-scores V2 traffic as it does /predict,
leaving the answer's bytes unchanged; GET /health shows no model-output aggregates."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chalicelib.config import BatchQueues, BatchSettings
from chalicelib.errors import NotFound
from chalicelib.observability import MetricWriter, Telemetry
from chalicelib.observability.telemetry import RequestObservation, declared_surfaces
from chalicelib.service import PredictionService
from chalicelib.surfaces import batch_rest, rest, v2
from chalicelib.surfaces.rest import HttpAnswer
from tests.emf_spec import check_emf, metric_values
from tests.fakes import FakeEngineLoader, RecordingObserver, make_bundle, make_store, s3_holding
from tests.unit.test_challenger import RECORDS, services
from tests.unit.test_v2 import request_body, tensor

MATRIX = np.array([[r[f] for f in ("x0", "x1", "x2", "x3")] for r in RECORDS], np.float32)


class Jobs:
    """The batch path as POST /batch and GET /batch/{job} see it."""

    settings = BatchSettings("loans", "batch/in/", queues=BatchQueues("chunks", "dlq", "events"))

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry

    def request(self, bucket: str, key: str, options: Any = None) -> str:
        return "job-1"

    def progress(self, job: str) -> dict[str, Any]:
        if job != "job-1":
            raise NotFound("No batch job has this id.")
        return {"job": job, "status": "queued", "requested": "now"}


def _as_batch_jobs(jobs: Jobs) -> Callable[[], Any]:
    return lambda: jobs


def _v2(service: PredictionService, binary: bool, name: str = "tiny") -> HttpAnswer:
    body, headers = request_body([tensor(MATRIX, binary)])
    headers |= {"accept": "application/octet-stream"} if binary else {}
    return v2.infer(lambda: service, name, None, lambda: body, headers, ["req-1"])


def _predict(service: PredictionService, body: bytes) -> HttpAnswer:
    return rest.predict(lambda: service, lambda: body, "application/json", ["req-1"])


#: case -> (surface, call, expected status)
CASES: dict[str, tuple[str, Callable[[PredictionService, Jobs], HttpAnswer], int]] = {
    "predict": ("predict", lambda s, _: _predict(s, json.dumps(RECORDS).encode()), 200),
    "predict_refused": ("predict", lambda s, _: _predict(s, b"[1]"), 400),
    "v2_json": ("v2_infer", lambda s, _: _v2(s, False), 200),
    "v2_binary": ("v2_infer", lambda s, _: _v2(s, True), 200),
    "v2_not_served": ("v2_infer", lambda s, _: _v2(s, False, "other"), 404),
    "batch_start": (
        "batch_api",
        lambda _, jobs: batch_rest.start(
            _as_batch_jobs(jobs), b'{"input": "s3://loans/batch/in/a.csv"}', ["req-1"]
        ),
        202,
    ),
    "batch_progress": (
        "batch_api",
        lambda _, j: batch_rest.progress(_as_batch_jobs(j), "job-1", ["req-1"]),
        200,
    ),
    "batch_unknown": (
        "batch_api",
        lambda _, j: batch_rest.progress(_as_batch_jobs(j), "job-2", ["req-1"]),
        404,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_surface_writes_one_request_line_with_emf(tmp_path: Path, case: str) -> None:
    surface, call, status = CASES[case]
    lines: list[str] = []
    telemetry = Telemetry(MetricWriter("T", lines.append), "svc", "dev")
    s3 = s3_holding(make_bundle(version="2", name="tiny"))
    service = PredictionService(make_store(s3, tmp_path, FakeEngineLoader()), 1000, telemetry)
    assert call(service, Jobs(telemetry)).status == status

    [line] = [json.loads(line) for line in lines if '"event":"request"' in line]
    document = check_emf(json.dumps(line))
    values = metric_values(document)
    assert (document["Surface"], document["request_id"], document["status"]) == (
        surface, "req-1", status)  # fmt: skip
    assert surface in declared_surfaces()
    assert (values["Requests"], values["Status4xx"], values["Status5xx"]) == (
        1, int(400 <= status < 500), 0)  # fmt: skip
    sets = [d["Dimensions"] for d in document["_aws"]["CloudWatchMetrics"]]
    assert ["Service", "Stage", "Surface"] in sets[0] and ["Service", "Stage"] in sets[0]
    if status == 200 and surface != "batch_api":  # scored: the snapshot's model, the summary
        assert (document["Model"], document["Version"]) == ("tiny", "2")
        assert values["Records"] == len(RECORDS)
        assert sum(v for k, v in values.items() if k.startswith("Predicted.")) == len(RECORDS)
    if status >= 400:
        assert document["error_code"] and values["Errors"] == 1


def test_the_challenger_shadow_scores_v2_traffic_without_changing_a_byte(
    tmp_path: Path,
) -> None:
    observer = RecordingObserver()
    s3 = s3_holding(
        make_bundle(version="2", artifacts={"litert": b"v2"}),
        make_bundle(version="1", artifacts={"litert": b"v1"}),
    )
    alone, shadowed, challenger = services(s3, tmp_path, observer=observer)
    for binary in (False, True, False):
        assert _v2(shadowed, binary).body == _v2(alone, binary).body
    assert challenger.requests_scored == 3 and challenger.failures == 0
    scored = observer.named("challenger_scored")
    assert [e["records"] for e in scored] == [len(RECORDS)] * 3
    assert all(e["agreement_rate"] == 0.5 for e in scored)  # A, B, A, B against A, A, A, A
    assert shadowed.model_info()["challenger"]["records_compared"] == 3 * len(RECORDS)
    health = shadowed.health()["challenger"]
    assert health["requests_scored"] == 3
    assert not {"agreement", "mean_abs_probability_diff"} & set(health)


def test_public_health_has_no_model_output_aggregates(tmp_path: Path) -> None:
    s3 = s3_holding(
        make_bundle(version="2", artifacts={"litert": b"v2"}),
        make_bundle(version="1", artifacts={"litert": b"v1"}),
    )
    _, shadowed, _ = services(s3, tmp_path)
    _predict(shadowed, json.dumps(RECORDS).encode())
    text = rest.health(lambda: shadowed).body
    assert isinstance(text, str)
    assert "agreement" not in text and "probability" not in text
    assert "agreement" in str(rest.model(lambda: shadowed).body)


# --- the `Surface` dimension's fixed set: declared by the surfaces, documented ----------

PROJECT = Path(__file__).resolve().parents[2]


def _declarations() -> list[ast.Call]:
    calls = []
    for path in [*(PROJECT / "chalicelib").rglob("*.py"), PROJECT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "declare_surface"):  # fmt: skip
                calls.append(node)
    return calls


def test_every_surface_declares_its_name_with_a_literal() -> None:
    """So the set is fixed by the code: no name computed from a request or settings."""
    calls = _declarations()
    assert calls
    for call in calls:
        [argument] = call.args
        assert isinstance(argument, ast.Constant) and isinstance(argument.value, str)


def test_the_declared_surfaces_are_the_ones_operations_documents() -> None:
    import chalicelib

    for info in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        if info.name != "chalicelib.custom_objects":
            importlib.import_module(info.name)
    literals = {call.args[0].value for call in _declarations()}  # type: ignore[attr-defined]
    text = (PROJECT / "docs" / "operations.md").read_text()
    documented = re.search(r"`Surface` one of \w+ fixed names \(([^:]+):", text)
    assert documented is not None
    assert set(re.findall(r"`(\w+)`", documented[1])) == literals == declared_surfaces()


def test_an_undeclared_surface_is_refused() -> None:
    with pytest.raises(ValueError, match="undeclared surface"):
        RequestObservation("req-1", "predict_v9")
