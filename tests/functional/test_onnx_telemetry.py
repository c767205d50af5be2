"""ONNX Runtime's telemetry is off wherever the service runs it: a fresh process that
loads and runs the ONNX engine, with a home of its own, leaves nothing under
~/.cache/Microsoft (where onnxruntime 1.32 writes a device id and queued usage events).
The control run, importing onnxruntime without the engine module, shows the check
would see the files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.engines.registry import ENGINES
from layer_build.proof import fixtures_for
from project_paths import PROJECT_DIR

SERVE = """
import numpy as np
from chalicelib.engines import load_engine
engine = load_engine("onnx", {path!r})
engine.predict({{"input": np.zeros((2, 113), np.float32)}})
"""
BARE = """
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession({path!r})
session.run(None, {{session.get_inputs()[0].name: np.zeros((2, 113), np.float32)}})
"""


def run_with_home(code: str, home: Path) -> None:
    """`code` in a fresh interpreter whose HOME and TMPDIR are under `home`, with no
    ORT_DISABLE_TELEMETRY inherited from this process."""
    (home / "tmp").mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ORT_")}
    env |= {"HOME": str(home), "TMPDIR": str(home / "tmp"), "XDG_CACHE_HOME": ""}
    env.pop("XDG_CACHE_HOME")
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip


def written_under(home: Path) -> list[Path]:
    return [path for path in (home / ".cache" / "Microsoft").rglob("*") if path.is_file()]


@pytest.fixture(scope="module")
def tiny_onnx() -> str:
    return str(fixtures_for(["onnx"]) / "tiny.onnx")  # converted once into the user cache


def test_the_onnx_engine_writes_no_telemetry_under_home(tmp_path: Path, tiny_onnx: str) -> None:
    run_with_home(SERVE.format(path=tiny_onnx), tmp_path / "home")
    assert written_under(tmp_path / "home") == []
    assert ENGINES["onnx"].environment == {"ORT_DISABLE_TELEMETRY": "1"}


def test_onnxruntime_imported_bare_does_write_there(tmp_path: Path, tiny_onnx: str) -> None:
    """The control: without the variable, onnxruntime writes its telemetry files."""
    run_with_home(BARE.format(path=tiny_onnx), tmp_path / "home")
    if not written_under(tmp_path / "home"):
        pytest.skip("this onnxruntime build wrote no telemetry here; the check proves nothing")
    assert written_under(tmp_path / "home")
