"""Real local servers for the stack and the tests: moto's S3 server and `chalice local`.

Both run as child processes on 127.0.0.1 and speak real HTTP; `stop()` ends them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from project_paths import PROJECT_DIR

BIN_DIR = Path(sys.executable).parent

#: Credentials and region for the local S3 server (moto accepts any).
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class ServerError(RuntimeError):
    """A local server could not start."""


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class LocalServer:
    """A child process serving HTTP on 127.0.0.1:`port`."""

    def __init__(
        self,
        name: str,
        command: list[str],
        port: int,
        ready_path: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._command = command
        self._ready_path = ready_path
        self._env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0, quiet: bool = True) -> LocalServer:
        """Start the process and wait until it answers HTTP."""
        if port_in_use(self.port):
            raise ServerError(f"{self.name}: port {self.port} on 127.0.0.1 is already in use")
        output = subprocess.DEVNULL if quiet else None
        self.process = subprocess.Popen(
            self._command,
            cwd=PROJECT_DIR,
            env=self._env,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited with code {self.process.returncode}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"{self.name} did not answer on {self.url} within {timeout:.0f} s")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + self._ready_path, timeout=1).close()
        except urllib.error.HTTPError:
            return True  # any HTTP answer means the server is up
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Terminate the process (and its group), waiting briefly before killing it."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def moto_s3_server(port: int) -> LocalServer:
    """moto's standalone server (S3 and friends) on 127.0.0.1:`port`."""
    return LocalServer(
        "moto S3 server",
        [str(BIN_DIR / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        port,
        "/moto-api/",
    )


def chalice_local(port: int, stage: str, env: Mapping[str, str]) -> LocalServer:
    """`chalice local` for `stage`, single process, no autoreload (Lambda-like)."""
    command = [
        str(BIN_DIR / "chalice"),
        "local",
        "--stage",
        stage,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-autoreload",
    ]
    return LocalServer("chalice local", command, port, "/health", env)


def s3_env(s3_url: str) -> dict[str, str]:
    """Environment that points boto3 (and so the service) at a local S3 endpoint."""
    return {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL_S3": s3_url}
