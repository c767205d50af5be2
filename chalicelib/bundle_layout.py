"""Where a model bundle's files live in S3: the one owner of the key layout.

    <prefix>/<version>/manifest.json     the manifest (chalicelib.manifest)
    <prefix>/<version>/<artifact file>   e.g. model.tflite, model.keras
    <prefix>/LATEST                      the newest version's name, as text

A model's prefix is derived from its name, `<root>/<name>` (`model_prefix`), so two
models never share one; a stage or a publisher may still name a prefix explicitly.
The publisher (modelops.publish) writes this layout and the store reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Where models live unless a prefix is given: `<DEFAULT_PREFIX_ROOT>/<name>`.
DEFAULT_PREFIX_ROOT = "models"
#: The demo model's name; its prefix is the service's default.
DEFAULT_MODEL_NAME = "loan-grade"
MANIFEST_FILE = "manifest.json"
LATEST_POINTER = "LATEST"
#: The version setting that means "follow LATEST"; never a version name itself.
FOLLOW_LATEST = "latest"

_SEGMENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_version_name(version: str) -> bool:
    """Whether `version` can name a bundle: 1-128 of [A-Za-z0-9._-], starting
    alphanumeric (so it is one plain key segment), and not "latest"."""
    return bool(_SEGMENT_PATTERN.match(version)) and version != FOLLOW_LATEST


def is_model_name(name: str) -> bool:
    """Whether `name` can name a model: one plain key segment, as for versions."""
    return bool(_SEGMENT_PATTERN.match(name))


def model_prefix(name: str, root: str = DEFAULT_PREFIX_ROOT) -> str:
    """`<root>/<name>`: the prefix of the model called `name` (ValueError if `name`
    is not one plain key segment, which would let it reach into another model's)."""
    if not is_model_name(name):
        raise ValueError(f"model name {name!r} is not one plain key segment")
    root = root.strip("/")
    return f"{root}/{name}" if root else name


#: The one default key prefix, for the service's settings and the publisher.
DEFAULT_PREFIX = model_prefix(DEFAULT_MODEL_NAME)


@dataclass(frozen=True)
class BundleLayout:
    """The keys of every bundle under one prefix ("" means the bucket's root)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.prefix.strip("/"))

    def version_dir(self, version: str) -> str:
        """`<prefix>/<version>`: the folder holding one version's files."""
        return f"{self.prefix}/{version}" if self.prefix else version

    def file_key(self, version: str, name: str) -> str:
        return f"{self.version_dir(version)}/{name}"

    def manifest_key(self, version: str) -> str:
        return self.file_key(version, MANIFEST_FILE)

    def pointer_key(self) -> str:
        """The key of LATEST, whose body is the newest version's name."""
        return f"{self.prefix}/{LATEST_POINTER}" if self.prefix else LATEST_POINTER
