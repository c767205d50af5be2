"""Rewrite a zip with sorted entries, fixed timestamps and permissions: same inputs,
same bytes, so a rebuild does not change the package hash."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
# Already-compressed payloads are stored: deflating them again only costs time.
STORED_SUFFIXES = (".zst", ".zip", ".gz")


def normalise(path: Path) -> None:
    """Rewrite `path` in place, deterministically."""
    with zipfile.ZipFile(path) as source:
        entries = sorted(source.infolist(), key=lambda info: info.filename)
        partial = path.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w") as target:
            for entry in entries:
                if entry.is_dir():
                    continue
                info = zipfile.ZipInfo(entry.filename, date_time=FIXED_DATE)
                executable = (entry.external_attr >> 16) & 0o111
                info.external_attr = (0o100755 if executable else 0o100644) << 16
                info.create_system = 3  # Unix, so the permissions above are honoured
                stored = entry.filename.endswith(STORED_SUFFIXES)
                info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                with source.open(entry) as data, target.open(info, "w", force_zip64=True) as out:
                    while chunk := data.read(1 << 20):
                        out.write(chunk)
    os.replace(partial, path)
