"""`make serve`'s stack end to end: it serves, its printed curl commands work, and
Ctrl-C stops every process it started."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from chalicelib.config import Settings
from localdev.servers import port_in_use
from tests.api.stack_process import curl, running_stack
from tests.conftest import PublishedModel

pytestmark = pytest.mark.slow  # in make test, not make test-fast

STARTUP_TIMEOUT = 120.0


def test_stack_serves_prints_working_curls_and_stops_on_ctrl_c(
    published: PublishedModel, tmp_path: Path
) -> None:
    model_dir = tmp_path / "demo"
    shutil.copytree(published.model_dir, model_dir)
    lambda_cache = Path(Settings.cache_dir)  # the app's default, for Lambda's /tmp
    cached_before = sorted(lambda_cache.iterdir()) if lambda_cache.is_dir() else None
    with running_stack(["--demo-dir", str(model_dir)], 7, STARTUP_TIMEOUT, tmp_path) as stack:
        answers = [curl(c) for c in stack.curls]
        assert answers[0]["status"] == "ok"
        assert answers[1]["name"] == "loan-grade"
        raw, encoded = ([p["label"] for p in a["predictions"]] for a in answers[2:4])
        assert len(raw) == 2 and set(raw) <= set("ABCDEFG")
        assert raw == encoded  # the same held-out records, raw and encoded
        assert answers[4]["name"] == "loan-grade"  # V2 model metadata
        for v2_answer in answers[5:]:  # the same rows as V2 tensor and as raw columns
            outputs = {o["name"]: o["data"] for o in v2_answer["outputs"]}
            assert outputs["label"] == raw
    assert len(stack.ports) == 2  # moto S3 and chalice local
    assert not any(port_in_use(port) for port in stack.ports)
    # Nothing outlives the stack: its scratch folder (model cache included) is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert (sorted(lambda_cache.iterdir()) if lambda_cache.is_dir() else None) == cached_before


def test_a_second_ctrl_c_while_stopping_exits_quietly(
    published: PublishedModel, tmp_path: Path
) -> None:
    """Two Ctrl-Cs a moment apart, as an impatient user sends them: no traceback, no
    KeyboardInterrupt, exit 0, both servers gone (chalice local killed, not orphaned)."""
    model_dir = tmp_path / "demo"
    shutil.copytree(published.model_dir, model_dir)
    with running_stack(["--demo-dir", str(model_dir)], 7, STARTUP_TIMEOUT, tmp_path) as stack:
        stack.process.send_signal(signal.SIGINT)
        time.sleep(0.05)  # the first is being handled: stopping has begun
        stack.process.send_signal(signal.SIGINT)
        stack.process.wait(timeout=30)
    output = "\n".join(stack.lines)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert stack.process.returncode == 0
    assert not any(port_in_use(port) for port in stack.ports)
