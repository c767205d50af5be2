"""Rewrite a zip with sorted entries, fixed timestamps and permissions: same inputs,
same bytes, so a rebuild does not change the package hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
import zlib
from pathlib import Path

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
# Already-compressed payloads are stored: deflating them again only costs time.
STORED_SUFFIXES = (".zst", ".zip", ".gz")
#: Normalised zips kept in a cache folder (the newest; each is a layer of tens of MB).
CACHE_ENTRIES = 8
_CACHE_FORMAT = f"normalise-1 zlib-{zlib.ZLIB_RUNTIME_VERSION}"


def normalise(path: Path, cache_dir: Path | None = None) -> None:
    """Rewrite `path` in place, deterministically. With `cache_dir`, a zip whose entries
    (names, modes, contents) were normalised before is copied from there: deflating a
    100 MB layer again costs ~5 s of CPU per package, reading it ~0.5 s."""
    if cache_dir is None:
        _rewrite(path)
        return
    cached = cache_dir / f"{content_key(path)}.zip"
    if cached.is_file():
        shutil.copyfile(cached, path)
        os.utime(cached)  # recently used: pruned last
        return
    _rewrite(path)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
    shutil.copyfile(path, partial)
    os.replace(partial, cached)
    _prune(cache_dir)


def content_key(path: Path) -> str:
    """A digest of what the normalised bytes depend on: each file's name, executable bit
    and contents (not order, dates or compression), and the normaliser and zlib versions."""
    digest = hashlib.sha256(_CACHE_FORMAT.encode())
    with zipfile.ZipFile(path) as source:
        for entry in sorted(source.infolist(), key=lambda info: info.filename):
            if entry.is_dir():
                continue
            executable = bool((entry.external_attr >> 16) & 0o111)
            digest.update(f"\0{entry.filename}\0{executable}\0{entry.file_size}\0".encode())
            with source.open(entry) as data:
                while chunk := data.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


def _rewrite(path: Path) -> None:
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


def _prune(cache_dir: Path) -> None:
    entries = sorted(cache_dir.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[CACHE_ENTRIES:]:
        stale.unlink(missing_ok=True)
