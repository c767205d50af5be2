"""`make serve`'s stack end to end: it serves, its printed curl commands work, and
Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from localdev.servers import free_port, port_in_use
from project_paths import PROJECT_DIR
from tests.conftest import PublishedModel


def test_stack_serves_prints_working_curls_and_stops_on_ctrl_c(
    published: PublishedModel, tmp_path: Path
) -> None:
    model_dir = tmp_path / "demo"
    shutil.copytree(published.model_dir, model_dir)
    s3_port, api_port = free_port(), free_port()
    stack = subprocess.Popen(
        [sys.executable, "-m", "modelops.local_stack", "--s3-port", str(s3_port),
         "--api-port", str(api_port), "--model-dir", str(model_dir)],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert stack.stdout is not None
    curls: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in stack.stdout:
            if line.strip().startswith("curl "):
                curls.append(line.strip())
            if len(curls) == 4 or time.monotonic() > deadline:
                break
        assert len(curls) == 4, "the stack never printed its curl examples"
        answers = [
            subprocess.run(
                shlex.split(c), cwd=PROJECT_DIR, capture_output=True, text=True, check=True
            ).stdout
            for c in curls
        ]
        assert json.loads(answers[0])["status"] == "ok"
        assert json.loads(answers[1])["name"] == "loan-grade"
        raw, encoded = ([p["label"] for p in json.loads(a)["predictions"]] for a in answers[2:])
        assert len(raw) == 2 and set(raw) <= set("ABCDEFG")
        assert raw == encoded  # the same held-out records, raw and encoded
    finally:
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=30)
    assert not port_in_use(api_port) and not port_in_use(s3_port)
