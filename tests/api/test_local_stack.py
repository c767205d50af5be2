"""`make serve`'s stack end to end: it serves, its printed curl commands work, and
Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from localdev.servers import port_in_use
from project_paths import PROJECT_DIR
from tests.conftest import PublishedModel

STARTUP_TIMEOUT = 120.0


def test_stack_serves_prints_working_curls_and_stops_on_ctrl_c(
    published: PublishedModel, tmp_path: Path
) -> None:
    model_dir = tmp_path / "demo"
    shutil.copytree(published.model_dir, model_dir)
    stack = subprocess.Popen(
        [sys.executable, "-m", "localdev.stack", "--s3-port", "0", "--api-port", "0",
         "--demo-dir", str(model_dir)],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()  # read in a thread: every wait has a timeout
    threading.Thread(target=_read_lines, args=(stack, lines), daemon=True).start()
    ports: set[int] = set()
    curls: list[str] = []
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        while len(curls) < 7 and time.monotonic() < deadline and stack.poll() is None:
            try:
                line = lines.get(timeout=1).strip()
            except queue.Empty:
                continue
            ports.update(int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", line))
            if line.startswith("curl "):
                curls.append(line)
        assert len(curls) == 7, "the stack never printed its curl examples"
        answers = [
            subprocess.run(shlex.split(c), cwd=PROJECT_DIR, capture_output=True, text=True,
                           check=True, timeout=30).stdout
            for c in curls
        ]  # fmt: skip
        assert json.loads(answers[0])["status"] == "ok"
        assert json.loads(answers[1])["name"] == "loan-grade"
        raw, encoded = ([p["label"] for p in json.loads(a)["predictions"]] for a in answers[2:4])
        assert len(raw) == 2 and set(raw) <= set("ABCDEFG")
        assert raw == encoded  # the same held-out records, raw and encoded
        assert json.loads(answers[4])["name"] == "loan-grade"  # V2 model metadata
        for v2_answer in answers[5:]:  # the same rows as V2 tensor and as raw columns
            outputs = {o["name"]: o["data"] for o in json.loads(v2_answer)["outputs"]}
            assert outputs["label"] == raw
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait(timeout=10)
    assert len(ports) == 2  # moto S3 and chalice local
    assert not any(port_in_use(port) for port in ports)


def _read_lines(process: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    for line in process.stdout or []:
        into.put(line)
