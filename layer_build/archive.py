"""Pack a runtime tree into one reproducible .tar.zst (sorted, zeroed metadata)."""

from __future__ import annotations

import tarfile
from pathlib import Path

ZSTD_LEVEL = 10


def pack(tree: Path, archive: Path) -> None:
    """tar (sorted entries, mtime 0, root-owned) then zstd level 10, single-threaded
    so the bytes are the same on every machine."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=0)
    with (
        open(archive, "wb") as raw,
        compressor.stream_writer(raw) as zstd_out,
        tarfile.open(fileobj=zstd_out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(tree.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(tree)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() or info.mode & 0o111 else 0o644
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
