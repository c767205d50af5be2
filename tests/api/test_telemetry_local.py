"""Smoke: a real `chalice local` prints JSON log lines and valid EMF for a good and a
bad request, and no planted marker from either."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from localdev.servers import ChaliceLocal, MotoServer, s3_env
from modelops.examples import holdout_records
from tests.conftest import STAGE, PublishedModel
from tests.emf_spec import emf_lines, metric_values

MARKER = "ZZMARKER123"


def post(url: str, body: Any, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url + "/predict", json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_chalice_local_prints_emf_and_json_logs_without_markers(
    published: PublishedModel, s3_server: MotoServer, tmp_path: Path
) -> None:
    records, _ = holdout_records(published.model_dir, 3)
    bad = [dict.fromkeys(records[0], MARKER) | {"ZZMARKERKEY": 987654.321}]
    headers = {"Content-Type": "application/json", "X-Note": MARKER}
    env = s3_env(s3_server.url) | {"MODEL_CACHE_DIR": str(tmp_path / "cache")}
    with ChaliceLocal(STAGE, env) as server:
        assert post(server.url, {"instances": records}, headers) == 200
        assert post(server.url, {"instances": bad}, headers) == 400
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the output pump runs on its own thread
            ours = [line.strip() for line in server.recent_output() if line.startswith("{")]
            if sum('"event":"request"' in line for line in ours) == 2:
                break
            time.sleep(0.1)
        output = "".join(server.recent_output())
    requests = [m for m in emf_lines(ours) if "Requests" in metric_values(m)]
    assert [m["status"] for m in requests] == [200, 400]
    assert requests[0]["Version"] == published.version and requests[0]["Stage"] == STAGE
    assert any("ColdStart" in metric_values(m) for m in emf_lines(ours))
    assert MARKER not in output and "987654" not in output and "ZZMARKERKEY" not in output
