"""Sizes of the packaged zips, their largest parts, and the Lambda size gate."""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from layer_build.flavors import DIRECT_UPLOAD_ZIPPED_LIMIT, MB, UNZIPPED_LIMIT, Flavor


class SizeLimitExceeded(RuntimeError):
    """A package breaks a Lambda limit; the message names its largest parts."""


@dataclass(frozen=True)
class ZipSize:
    name: str
    zipped: int
    unzipped: int
    components: Counter[str]


def measure(path: Path) -> ZipSize:
    """Zipped/unzipped bytes and unzipped bytes per component (package or big file)."""
    components: Counter[str] = Counter()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            components[_component(info.filename)] += info.file_size
    return ZipSize(path.name, path.stat().st_size, sum(components.values()), components)


def _component(name: str) -> str:
    """Top-level package (or file) of a zip entry; layers nest under site-packages."""
    parts = name.split("/")
    if parts[:3] == ["python", "lib", "python3.12"] and len(parts) >= 5:
        parts = parts[4:]
    return parts[0]


def report(flavor: Flavor, sizes: list[ZipSize]) -> str:
    """A table of sizes, the 10 largest components and the limits."""
    lines = [f"Package sizes, flavor {flavor.name}",
             f"{'zip':<28}{'zipped MB':>11}{'unzipped MB':>13}"]  # fmt: skip
    for size in sizes:
        lines.append(f"{size.name:<28}{size.zipped / MB:>11.1f}{size.unzipped / MB:>13.1f}")
    total = sum(s.unzipped for s in sizes)
    lines.append(f"{'function + layers':<28}{'':>11}{total / MB:>13.1f}")
    lines.append("10 largest components (unzipped MB):")
    for name, part_bytes in largest(sizes):
        lines.append(f"  {name:<40}{part_bytes / MB:>8.1f}")
    upload = "applies" if flavor.direct_upload else "n/a: deploy through S3 (chalice package)"
    lines.append(f"limits: {DIRECT_UPLOAD_ZIPPED_LIMIT / MB:.0f} MB zipped per direct upload "
                 f"(chalice deploy; {upload}); {UNZIPPED_LIMIT / MB:.0f} MB unzipped function "
                 "+ layers")  # fmt: skip
    return "\n".join(lines)


def largest(sizes: list[ZipSize], count: int = 10) -> list[tuple[str, int]]:
    combined: Counter[str] = Counter()
    for size in sizes:
        combined.update({f"{size.name}:{k}": v for k, v in size.components.items()})
    return combined.most_common(count)


def check_limits(flavor: Flavor, sizes: list[ZipSize]) -> None:
    """Raise SizeLimitExceeded naming the largest parts when a limit is broken."""
    problems = []
    total = sum(s.unzipped for s in sizes)
    if total > UNZIPPED_LIMIT:
        problems.append(f"function + layers unzip to {total / MB:.1f} MB > "
                        f"{UNZIPPED_LIMIT / MB:.0f} MB")  # fmt: skip
    if flavor.direct_upload:
        problems += [f"{s.name} is {s.zipped / MB:.1f} MB zipped > "
                     f"{DIRECT_UPLOAD_ZIPPED_LIMIT / MB:.0f} MB (direct upload)"
                     for s in sizes if s.zipped > DIRECT_UPLOAD_ZIPPED_LIMIT]  # fmt: skip
    if problems:
        parts = ", ".join(f"{name} ({size / MB:.1f} MB)" for name, size in largest(sizes, 5))
        raise SizeLimitExceeded(f"{'; '.join(problems)}. Largest parts: {parts}")
