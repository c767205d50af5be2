"""Rollout and rollback to a warm `chalice local`, measured under load; and a champion/
challenger pair over HTTP. Each serves its own model prefix in the dev stage's bucket of
the session's moto S3 (a project copy pointed at it), so no other test's model moves.

The models are tiny binary classifiers with different weights (seed per version), so a
new version is a real download and LiteRT load, not a cache hit."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from chalicelib.bundle_layout import BundleLayout, model_prefix
from deployment.stages import stage_location
from localdev.own_model import local_project
from localdev.servers import ChaliceLocal, MotoServer, s3_env
from modelops.publish import main as publish
from tests.emf_spec import emf_lines, metric_values
from tests.model_kinds import FEATURES, as_records, sample_rows, tiny_model

pytestmark = pytest.mark.slow  # measured rollout under load: seconds of traffic

STAGE = "dev"
CLIENTS = 8
REFRESH_SECONDS = 1.0
#: What HTTP, `chalice local` and 2 shared cores add to interval + load in a request's
#: way (one request's round trip under 8 clients is ~10-50 ms here).
MARGIN_SECONDS = 1.5
BODY = {"instances": as_records(sample_rows(3))}


def publish_version(path: Path, name: str, version: str, *, promote: bool = True) -> None:
    bucket, _ = stage_location(STAGE)
    features = path.parent / "features.json"
    features.write_text(json.dumps(FEATURES))
    code = publish([
        "--model", str(path), "--name", name, "--version", version, "--labels", "good,bad",
        "--features", str(features), "--bucket", bucket, "--overwrite",
        *([] if promote else ["--no-promote"]),
    ])  # fmt: skip
    assert code == 0


def serve(
    name: str, s3_server: MotoServer, tmp: pytest.TempPathFactory, **env: str
) -> ChaliceLocal:
    project = local_project(tmp.mktemp("project") / "p", STAGE, model_prefix(name), None)
    env = s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp.mktemp("cache"))} | env
    return ChaliceLocal(STAGE, env, project_dir=project)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, s3_server: MotoServer) -> dict[str, Path]:
    """Version -> a tiny binary model file; version 2's weights differ from 1's."""
    boto3.client("s3").create_bucket(Bucket=stage_location(STAGE)[0])
    directory = tmp_path_factory.mktemp("rollout-models")
    return {v: tiny_model("binary", directory / f"v{v}.keras", seed=int(v) + 2) for v in "12"}


@dataclass(frozen=True)
class Answer:
    sent: float
    received: float
    status: int
    version: str | None


class Load:
    """`CLIENTS` threads posting BODY to `url` back to back until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def _client(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(f"{self.url}/predict", json=BODY)
                    status = response.status_code
                    version = response.json().get("model", {}).get("version")
                except (httpx.HTTPError, ValueError):  # no answer, or not JSON
                    status, version = 0, None
                self.answers.append(Answer(sent, time.monotonic(), status, version))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for(self, version: str, since: float, timeout: float = 30) -> None:
        """Until a response sent after `since` names `version`, then 1 s more."""
        deadline = time.monotonic() + timeout
        while not any(a.sent > since and a.version == version for a in list(self.answers)):
            assert time.monotonic() < deadline, f"no response named {version} in {timeout} s"
            time.sleep(0.05)
        time.sleep(1.0)


def switch_seconds(answers: list[Answer], since: float, until: float, new: str) -> float:
    """From `since` to the last response not naming `new` among those sent before `until`:
    after this, every response names the new version."""
    stale = [a.received for a in answers if since <= a.sent < until and a.version != new]
    return max(stale, default=since) - since


def test_a_promoted_version_and_a_rollback_reach_a_warm_container_under_load(
    models: dict[str, Path], s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    name = "rollout-demo"
    publish_version(models["1"], name, "1")
    server = serve(name, s3_server, tmp_path_factory, MODEL_REFRESH_SECONDS=str(REFRESH_SECONDS))
    with server:
        assert httpx.post(f"{server.url}/predict", json=BODY).json()["model"]["version"] == "1"
        with Load(server.url) as load:
            time.sleep(1.0)
            publish_version(models["2"], name, "2")  # uploads, then moves LATEST
            promoted = time.monotonic()
            load.wait_for("2", promoted)
            forward_load = httpx.get(f"{server.url}/health").json()["refresh"]["last_change"]
            assert publish(["--promote", "1", "--bucket", stage_location(STAGE)[0],
                            "--name", name]) == 0  # fmt: skip
            rolled_back = time.monotonic()
            load.wait_for("1", rolled_back)
            back_load = httpx.get(f"{server.url}/health").json()["refresh"]["last_change"]
        answers = list(load.answers)

    assert len(answers) > 100
    assert all(a.status == 200 for a in answers), {a.status for a in answers}
    assert all(a.version in {"1", "2"} for a in answers)
    assert (forward_load["outcome"], forward_load["version"]) == ("ok", "2")
    assert (back_load["outcome"], back_load["version"]) == ("ok", "1")
    forward = switch_seconds(answers, promoted, rolled_back, "2")
    back = switch_seconds(answers, rolled_back, float("inf"), "1")
    assert forward <= REFRESH_SECONDS + forward_load["seconds"] + MARGIN_SECONDS
    assert back <= REFRESH_SECONDS + back_load["seconds"] + MARGIN_SECONDS
    latencies = sorted(a.received - a.sent for a in answers)
    print(
        f"\nrollout under {CLIENTS} clients, MODEL_REFRESH_SECONDS={REFRESH_SECONDS:g}: "
        f"{len(answers)} requests, 0 failed; all on v2 {forward:.2f} s after promote "
        f"(load {forward_load['seconds']:.3f} s), all back on v1 {back:.2f} s after "
        f"--promote 1 (load {back_load['seconds']:.3f} s); request p50 "
        f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )


def challenger_lines(server: ChaliceLocal) -> list[dict[str, Any]]:
    """The EMF documents of `challenger_scored` events in the server's output."""
    deadline = time.monotonic() + 10
    scored: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # the output pump runs on its own thread
        lines = [line.strip() for line in server.recent_output()]
        scored = [d for d in emf_lines(lines) if d.get("event") == "challenger_scored"]
        health = httpx.get(f"{server.url}/health").json()["challenger"]
        if len(scored) >= health["requests_scored"]:
            break
        time.sleep(0.1)
    return scored


def test_a_challenger_scores_sampled_requests_and_the_answer_stays_the_champions(
    models: dict[str, Path], s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    name = "challenger-demo"
    publish_version(models["1"], name, "1")
    publish_version(models["2"], name, "2", promote=False)
    body = {"instances": as_records(sample_rows(20))}
    server = serve(name, s3_server, tmp_path_factory, CHALLENGER_VERSION="2",
                   CHALLENGER_SAMPLE="0.5")  # fmt: skip
    with server:
        before = httpx.get(f"{server.url}/health").json()["challenger"]
        texts = [httpx.post(f"{server.url}/predict", json=body, timeout=30).text
                 for _ in range(40)]  # fmt: skip
        health = httpx.get(f"{server.url}/health").json()["challenger"]
        state = httpx.get(f"{server.url}/model").json()["challenger"]  # behind auth when deployed
        scored = challenger_lines(server)

    # The public health check has counts, not the comparison of the models' outputs.
    assert health["requests_scored"] == state["requests_scored"]
    assert not {"agreement", "mean_abs_probability_diff"} & set(health)

    assert before["state"] == "not_loaded" and before["requests_scored"] == 0
    assert len(set(texts)) == 1  # sampled or not, the same champion bytes
    assert json.loads(texts[0])["model"]["version"] == "1"
    assert state["state"] == "loaded" and state["failures"] == 0
    assert 0 < state["requests_scored"] < 40  # ~half; all or none is a 2^-39 event
    assert state["records_compared"] == 20 * state["requests_scored"]
    assert 0.0 <= state["agreement"] <= 1.0 and state["mean_abs_probability_diff"] > 0
    assert len(scored) == state["requests_scored"]  # one EMF line per sampled request
    agreement = [metric_values(line)["ChallengerAgreement"] for line in scored]
    assert sum(agreement) / len(agreement) == pytest.approx(state["agreement"], abs=1e-6)
    assert {(line["Version"], line["ChallengerVersion"]) for line in scored} == {("1", "2")}
    print(
        f"\nchallenger v2 on {state['requests_scored']}/40 sampled requests: agreement "
        f"{state['agreement']:.3f}, mean |dp| {state['mean_abs_probability_diff']:.4f}"
    )


def _v2_bodies(url: str, name: str) -> tuple[dict[str, Any], tuple[bytes, dict[str, str]]]:
    """The same 3 rows as BODY as a V2 JSON body and a V2 binary (tritonclient) body."""
    import tritonclient.http as triton

    from tests.unit.test_v2 import request_body

    [spec] = httpx.get(f"{url}/v2/models/{name}").json()["inputs"][:1]
    matrix = sample_rows(3)
    assert spec["shape"] == [-1, matrix.shape[1]]
    as_json = {"inputs": [{"name": spec["name"], "datatype": "FP32", "shape": list(matrix.shape),
                           "data": matrix.flatten().tolist()}]}  # fmt: skip
    binary = triton.InferInput(spec["name"], list(matrix.shape), "FP32")
    binary.set_data_from_numpy(matrix, binary_data=True)
    body, headers = request_body([binary])
    return as_json, (body, headers | {"Accept": "application/octet-stream"})


def test_no_answer_mixes_versions_while_latest_flips_under_every_surface(
    models: dict[str, Path],
    s3_server: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """LATEST flips every 0.7 s under concurrent /predict, V2 JSON and V2 binary load
    (the attack of issue 16): every answer names one version and carries that version's
    probabilities (one set per version, the two sets different); no 5xx."""
    from tritonclient.http._infer_result import InferResult

    name = "race-demo"
    for version in "21":  # one input name (tiny_model's): the V2 request fits both
        publish_version(models[version], name, version)
    server = serve(name, s3_server, tmp_path_factory, MODEL_REFRESH_SECONDS="0.2")
    bucket, _ = stage_location(STAGE)
    pointer = BundleLayout(model_prefix(name)).pointer_key()
    answers: list[tuple[str, int, str | None, tuple[float, ...]]] = []
    refusals: list[str] = []
    stop = threading.Event()

    def client(surface: str) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                if surface == "predict":
                    response = http.post(f"{server.url}/predict", json=BODY)
                elif surface == "v2_json":
                    response = http.post(f"{server.url}/v2/models/{name}/infer", json=as_json)
                else:
                    response = http.post(f"{server.url}/v2/models/{name}/infer",
                                         content=binary[0], headers=binary[1])  # fmt: skip
                answers.append((surface, response.status_code, *_version_and_rows(response)))
                if response.status_code != 200:
                    refusals.append(f"{surface}: {response.text[:300]}")

    def _version_and_rows(response: httpx.Response) -> tuple[str | None, tuple[float, ...]]:
        if response.status_code != 200:
            return None, ()
        if response.headers.get("content-type") == "application/octet-stream":
            length = int(response.headers["inference-header-content-length"])
            result = InferResult.from_response_body(response.content, header_length=length)
            rows = result.as_numpy("probabilities")
            assert rows is not None
            return result.get_response()["model_version"], tuple(
                round(float(p), 5) for p in rows[:, 1]
            )
        body = response.json()
        if "predictions" in body:
            probabilities = [p["probabilities"]["bad"] for p in body["predictions"]]
            return body["model"]["version"], tuple(round(p, 5) for p in probabilities)
        [tensor] = [o for o in body["outputs"] if o["name"] == "probabilities"]
        return body["model_version"], tuple(round(p, 5) for p in tensor["data"][1::2])

    with server:
        as_json, binary = _v2_bodies(server.url, name)
        surfaces = ("predict", "v2_json", "v2_binary") * 2
        threads = [threading.Thread(target=client, args=(surface,)) for surface in surfaces]
        for thread in threads:
            thread.start()
        s3 = boto3.client("s3")
        for flip in range(12):
            s3.put_object(Bucket=bucket, Key=pointer, Body=b"2" if flip % 2 == 0 else b"1")
            time.sleep(0.7)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert len(answers) > 100
    assert {status for _, status, _, _ in answers} == {200}, refusals[:3]
    by_version: dict[str, set[tuple[float, ...]]] = {}
    for _, _, named, rows in answers:
        assert named is not None
        by_version.setdefault(named, set()).add(rows)
    assert sorted(by_version) == ["1", "2"]
    assert all(len(rows) == 1 for rows in by_version.values()), by_version  # never mixed
    assert by_version["1"] != by_version["2"]
    seen = {surface for surface, *_ in answers}
    print(f"\n{len(answers)} answers over {sorted(seen)} while LATEST flipped 12 times: "
          f"0 mixed, 0 x 5xx")  # fmt: skip
