"""`make serve`'s stack as a child process: started, read until it prints its curl
examples, then Ctrl-C'd."""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from project_paths import PROJECT_DIR

STACK = [sys.executable, "-m", "localdev.stack"]


@dataclass
class Stack:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    curls: list[str] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)


@contextmanager
def running_stack(
    args: list[str], curls: int, startup_timeout: float, tmp: Path
) -> Iterator[Stack]:
    """The stack until it printed `curls` curl lines (within `startup_timeout` seconds);
    Ctrl-C'd afterwards. Its temporary files (TensorFlow's autograph modules among them)
    go under `tmp`, never /tmp; its model cache is its own, as for a user who set none."""
    env = {k: v for k, v in os.environ.items() if k != "MODEL_CACHE_DIR"}
    process = subprocess.Popen(
        [*STACK, "--s3-port", "0", "--api-port", "0", *args],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**env, "TMPDIR": str(tmp)},
    )  # fmt: skip
    stack = Stack(process)
    lines: queue.Queue[str] = queue.Queue()  # read in a thread: every wait has a timeout
    reader = threading.Thread(target=_read_lines, args=(process, lines), daemon=True)
    reader.start()
    deadline = time.monotonic() + startup_timeout
    try:
        while len(stack.curls) < curls and time.monotonic() < deadline and process.poll() is None:
            try:
                line = lines.get(timeout=1).rstrip()
            except queue.Empty:
                continue
            stack.lines.append(line)
            stack.ports.update(int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", line))
            if line.strip().startswith("curl "):
                stack.curls.append(line.strip())
        assert len(stack.curls) == curls, "no curl examples:\n" + "\n".join(stack.lines)
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        reader.join(timeout=10)
        while not lines.empty():
            stack.lines.append(lines.get().rstrip())


def curl(command: str) -> dict[str, Any]:
    """Run a printed curl command; its JSON answer."""
    answer = subprocess.run(shlex.split(command), cwd=PROJECT_DIR, capture_output=True,
                            text=True, check=True, timeout=30).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(answer)
    return result


def _read_lines(process: subprocess.Popen[str], into: queue.Queue[str]) -> None:
    for line in process.stdout or []:
        into.put(line)
