"""The two runtime flavors: what they install, how they ship and what limits apply."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chalicelib.engines.registry import ENGINES, flavor_engines

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024

# AWS Lambda quotas: a zip uploaded directly (what `chalice deploy` does) is at most
# 50 MB; function code plus all layers is at most 250 MB unzipped, however uploaded.
DIRECT_UPLOAD_ZIPPED_LIMIT = 50 * MB
UNZIPPED_LIMIT = 250 * MB


@dataclass(frozen=True)
class Flavor:
    name: str
    #: The lock file; the engines it carries add their registry `wheels` to it.
    requirements: Path
    archived: bool  # ship the tree as vendor/<archive> to unpack into /tmp at cold start
    stage: str  # the Chalice stage `make package` packages
    direct_upload: bool  # must fit `chalice deploy`'s 50 MB direct upload
    why: str
    # /tmp for the function; archived runtimes unpack there (Lambda's default is 512 MB).
    ephemeral_storage_mb: int | None = None

    @property
    def engines(self) -> tuple[str, ...]:
        """The engine kinds it carries (the registry's `flavors`), in preference order."""
        return tuple(flavor_engines(self.name))

    @property
    def engine_wheels(self) -> tuple[str, ...]:
        """Pinned wheels its engines add to the lock file."""
        return tuple(wheel for kind in self.engines for wheel in ENGINES[kind].wheels)


FLAVORS = {
    "lite": Flavor(
        "lite", HERE / "requirements-lite.txt", archived=False, stage="dev",
        direct_upload=True,
        why="LiteRT + ONNX Runtime + numpy: any model either converts; small, fast cold start",
    ),
    "tensorflow": Flavor(
        "tensorflow", HERE / "requirements-tensorflow.txt", archived=True,
        stage="dev-tensorflow", direct_upload=False,
        why="TensorFlow + Keras: models with ops LiteRT cannot run; deploy via S3",
        ephemeral_storage_mb=2048,  # the tree unpacks to 858 MB; room for model and temp files
    ),
}  # fmt: skip
