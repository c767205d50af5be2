"""Unpack a runtime shipped as a compressed archive (the tensorflow flavor) into /tmp.

TensorFlow does not fit Lambda's 250 MB unzipped limit as files, so layer_build
packs it into `tf_runtime.tar.zst`; this module unpacks it once per container,
before anything imports numpy or TensorFlow, and puts it first on sys.path. With
no archive on sys.path (the lite flavor, a dev venv) it does nothing. Imports
only the standard library and, when there is an archive, `zstandard`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

ARCHIVE_NAME = "tf_runtime.tar.zst"
UNPACK_ROOT = "/tmp"
_COMPLETE = ".complete"
_lock = threading.Lock()


@dataclass(frozen=True)
class Activation:
    """Where the runtime was unpacked and what it cost this cold start."""

    archive: str
    directory: str
    unpacked: bool
    seconds: float


def find_archive(paths: list[str] | None = None) -> str | None:
    """The first runtime archive on `paths` (default: sys.path), if any."""
    for entry in sys.path if paths is None else paths:
        candidate = os.path.join(entry or ".", ARCHIVE_NAME)
        if os.path.isfile(candidate):
            return candidate
    return None


def activate_bundled_runtime(unpack_root: str | None = None) -> Activation | None:
    """Unpack the archive once (atomically, thread-safe) and prepend it to sys.path."""
    if os.environ.get("AWS_CHALICE_CLI_MODE") == "true":
        return None  # `chalice package/local` load app.py with vendor/ on sys.path
    archive = find_archive()
    if archive is None:
        return None
    started = time.perf_counter()
    root = unpack_root or os.environ.get("RUNTIME_UNPACK_DIR", UNPACK_ROOT)
    target = os.path.join(root, f"tf-runtime-{os.path.getsize(archive)}")
    with _lock:
        unpacked = not os.path.exists(os.path.join(target, _COMPLETE))
        if unpacked:
            _unpack(archive, target)
        if target not in sys.path:
            sys.path.insert(0, target)
    return Activation(archive, target, unpacked, time.perf_counter() - started)


def _unpack(archive: str, target: str) -> None:
    # Imported here: the lite flavor (no archive) never pays for tarfile at cold start.
    import shutil
    import tarfile
    import tempfile

    import zstandard  # shipped beside the archive

    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tf-runtime-", dir=os.path.dirname(target))
    try:
        with (
            open(archive, "rb") as raw,
            zstandard.ZstdDecompressor().stream_reader(raw) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            tar.extractall(staging, filter="data")
        open(os.path.join(staging, _COMPLETE), "w").close()
        shutil.rmtree(target, ignore_errors=True)  # a partial unpack from a killed process
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
