"""Real local servers for the stack and the tests, on 127.0.0.1, speaking real HTTP.

- `MotoServer`: moto (S3 and the rest of AWS) in a thread of this process. It binds
  before it returns, port 0 by default (the kernel picks a free port: no race), or on a
  socket the caller already bound. Every moto server in one process serves the same
  state: moto's backends are process-global.
- `ChaliceLocal`: `chalice local` in a child process. It can't be handed a socket, so
  with no port given it picks a free one and, should another process take it first,
  tries another; it is ready once it printed "Serving on" (it bound the port) and answers.

Every wait has a timeout; `stop()` ends a server and its threads or processes.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from werkzeug.serving import BaseWSGIServer, make_server

from chalicelib.engines.registry import engine_environment
from project_paths import PROJECT_DIR

BIN_DIR = Path(sys.executable).parent
HOST = "127.0.0.1"

#: Credentials and region for the local AWS stand-ins (moto accepts any).
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class ServerError(RuntimeError):
    """A local server could not start."""


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def bound_socket(port: int = 0) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:`port` (0: any free port), not yet listening:
    until it listens, connections to it are refused."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise ServerError(f"port {port} on {HOST} is already in use ({exc.strerror})") from exc
    return sock


class MotoServer:
    """moto's server in a daemon thread of this process.

    moto's own `ThreadedMotoServer` binds inside its thread and waits forever when that
    fails (its ready event is never set); this binds first, in the caller's thread.
    """

    name = "moto server"

    def __init__(self, port: int = 0, listener: socket.socket | None = None) -> None:
        self._listener = listener
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port
        self.url = f"http://{HOST}:{port}"

    def start(self) -> Self:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        if self._listener is None:
            try:
                self._listener = bound_socket(self._requested_port)
            except ServerError as exc:
                raise ServerError(f"{self.name}: {exc}") from exc
        self._listener.listen(128)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        app = DomainDispatcherApplication(create_backend_app)
        server = make_server(HOST, 0, app, threaded=True, request_handler=MotoRequestHandler,
                             fd=self._listener.fileno())  # fmt: skip
        self._server = server
        self.port = int(server.server_address[1])
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()  # waits for serve_forever to return
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._listener is not None:
            self._listener.close()
        self._server = self._thread = self._listener = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ChaliceLocal:
    """`chalice local` for `stage` of `project_dir` in a child process: single process,
    no autoreload (Lambda-like). `port=None` picks a free port; a fixed port is used as
    given."""

    name = "chalice local"
    ATTEMPTS = 5  # when a picked port is taken before chalice binds it

    def __init__(
        self,
        stage: str,
        env: Mapping[str, str],
        port: int | None = None,
        quiet: bool = True,
        project_dir: Path = PROJECT_DIR,
    ) -> None:
        self.stage = stage
        self.project_dir = project_dir
        self.fixed_port = port
        self.port = port or 0
        self.url = f"http://{HOST}:{self.port}"
        self.quiet = quiet
        # The engines' environment (ONNX Runtime's telemetry off) before anything imports.
        self._env = {**engine_environment(), **os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.process: subprocess.Popen[str] | None = None
        self._output: deque[str] = deque(maxlen=500)
        self._serving = threading.Event()

    def start(self, timeout: float = 60.0) -> Self:
        """Start the process and wait until it serves, trying another free port when the
        one picked was taken meanwhile."""
        if self.fixed_port is not None:
            if port_in_use(self.fixed_port):
                raise ServerError(f"{self.name}: port {self.fixed_port} on {HOST} is already "
                                  "in use")  # fmt: skip
            self._start_on(self.fixed_port, timeout)
            return self
        for _ in range(self.ATTEMPTS):
            try:
                self._start_on(_free_port(), timeout)
                return self
            except _PortTaken:
                continue
        raise ServerError(f"{self.name}: every port tried was taken")

    def _start_on(self, port: int, timeout: float) -> None:
        self.port, self.url = port, f"http://{HOST}:{port}"
        self._output.clear()
        self._serving.clear()
        command = [str(BIN_DIR / "chalice"), "local", "--stage", self.stage, "--host", HOST,
                   "--port", str(port), "--no-autoreload"]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=self.project_dir, env=self._env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = "".join(self._output)
                if "Address already in use" in output and self.fixed_port is None:
                    raise _PortTaken
                raise ServerError(f"{self.name} exited with code {self.process.returncode}:\n"
                                  f"{output}")  # fmt: skip
            if self._serving.is_set() and _answers(self.url + "/health"):
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} did not answer on {self.url} within {timeout:.0f} s")

    def _pump(self, process: subprocess.Popen[str]) -> None:
        """Forward the child's output (unless quiet), noting when it has bound its port."""
        assert process.stdout is not None
        for line in process.stdout:
            self._output.append(line)
            if line.startswith("Serving on"):
                self._serving.set()
            if not self.quiet:
                sys.stdout.write(line)
                sys.stdout.flush()

    def recent_output(self) -> list[str]:
        """The child's last 500 output lines (stdout and stderr), oldest first."""
        return list(self._output)

    def stop(self) -> None:
        """Terminate the process (and its group), waiting briefly before killing it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """End the process now (a second Ctrl-C: no waiting)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PortTaken(Exception):
    pass


def _free_port() -> int:
    """A port free a moment ago (for `chalice local`, which must bind it itself)."""
    with bound_socket() as sock:
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False
    return True


def s3_env(s3_url: str) -> dict[str, str]:
    """Environment that points boto3 (and so the service) at a local S3 endpoint."""
    return {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL_S3": s3_url}


def model_cache_env(scratch: Path) -> dict[str, str]:
    """Where a local run caches model files: the user's MODEL_CACHE_DIR, else a folder of
    `scratch`, removed with it (the app's Lambda default, /tmp/model-cache, would outlive it)."""
    return {"MODEL_CACHE_DIR": os.environ.get("MODEL_CACHE_DIR") or str(scratch / "model-cache")}
