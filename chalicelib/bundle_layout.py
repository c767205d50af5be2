"""Where a model bundle's files live in S3: the one owner of the key layout.

    <prefix>/<version>/manifest.json     the manifest (chalicelib.manifest)
    <prefix>/<version>/<artifact file>   e.g. model.tflite, model.keras
    <prefix>/LATEST                      the newest version's name, as text

The publisher (modelops.publish) writes this layout and the store reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The one default key prefix, for the service's settings and the publisher.
DEFAULT_PREFIX = "models/loan-grade"
MANIFEST_FILE = "manifest.json"
LATEST_POINTER = "LATEST"
#: The version setting that means "follow LATEST"; never a version name itself.
FOLLOW_LATEST = "latest"

_VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_version_name(version: str) -> bool:
    """Whether `version` can name a bundle: 1-128 of [A-Za-z0-9._-], starting
    alphanumeric (so it is one plain key segment), and not "latest"."""
    return bool(_VERSION_PATTERN.match(version)) and version != FOLLOW_LATEST


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
