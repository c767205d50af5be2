"""Reading batch input files as streams: chunk boundaries for the splitter, lines for
workers. Nothing here holds more than a buffer, one line up to the cap, or one batch of
lines: a file of any size, with lines of any length, streams through.

A row is one physical line, ended by LF (a CR before it belongs to the line ending).
The last line needs no line break. A line longer than MAX_LINE_BYTES is never held:
workers get a `TooLong` marker in its place, so it is rejected as one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

MAX_HEADER_BYTES = 1 << 16
#: The line cap: a longer row is rejected without being read into memory.
MAX_LINE_BYTES = 1 << 20
#: A chunk is cut after `rows_per_chunk` rows or this many bytes, whichever comes first,
#: so long lines never make a chunk a worker cannot finish in its timeout.
MAX_CHUNK_BYTES = 32 << 20
#: A worker parses, validates and predicts at most this many bytes of lines at once.
MAX_BATCH_BYTES = 4 << 20
BOM = b"\xef\xbb\xbf"
_NEWLINE = 10


class HeaderUnreadable(ValueError):
    """The file's first line is missing, too long or not a readable CSV header."""


@dataclass(frozen=True)
class TooLong:
    """A line over MAX_LINE_BYTES, in place of its bytes (it was never held)."""

    size: int


Line = bytes | TooLong


def split_header(buffers: Iterable[bytes]) -> tuple[bytes, int, Iterator[bytes]]:
    """(first line without a BOM and its line ending, bytes it takes, the remaining
    buffers)."""
    stream = iter(buffers)
    head = b""
    for buffer in stream:
        head += buffer
        newline = head.find(b"\n", 0, MAX_HEADER_BYTES + 1)
        if newline >= 0:
            line = head[:newline].removeprefix(BOM).removesuffix(b"\r")
            return line, newline + 1, _chain(head[newline + 1 :], stream)
        if len(head) > MAX_HEADER_BYTES:
            break
    if len(head) > MAX_HEADER_BYTES:
        raise HeaderUnreadable("the header line is longer than 64 KiB")
    return head.removeprefix(BOM).removesuffix(b"\r"), len(head), iter(())


def peek(buffers: Iterable[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """(the first `size` bytes or fewer, all the buffers again)."""
    stream = iter(buffers)
    head = b""
    for buffer in stream:
        head += buffer
        if len(head) >= size:
            break
    return head[:size], _chain(head, stream)


def skip_bom(buffers: Iterable[bytes]) -> tuple[int, Iterator[bytes]]:
    """(bytes of a UTF-8 byte order mark at the start, the buffers after it)."""
    head, stream = peek(buffers, len(BOM))
    skipped = len(BOM) if head.startswith(BOM) else 0
    first = next(stream, b"")
    return skipped, _chain(first[skipped:], stream)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


@dataclass
class ChunkCutter:
    """Rows counted in one pass, cut into chunks of at most `every` rows and, at the
    first line break past `max_bytes`, at most that many bytes; nothing is held."""

    every: int
    position: int  # absolute offset of the next byte
    max_bytes: int = MAX_CHUNK_BYTES
    rows: int = 0
    chunks: list[tuple[int, int, int, int]] = field(default_factory=list)
    _open: tuple[int, int] | None = None  # (start offset, first row) of the open chunk
    _tail: bool = False  # bytes after the last line break

    def feed(self, buffer: bytes) -> None:
        at, size = 0, len(buffer)
        while at < size:
            if self._open is None:
                self._open = (self.position + at, self.rows)
            start, first = self._open
            rows_left = self.every - (self.rows - first)
            bytes_left = self.max_bytes - (self.position + at - start)
            breaks = buffer.count(b"\n", at)
            if breaks < rows_left and size - at < bytes_left:
                self.rows += breaks
                break
            cut = self._cut(buffer, at, rows_left, bytes_left)
            if cut is None:  # the chunk's end is in a later buffer
                self.rows += breaks
                break
            self.rows += buffer.count(b"\n", at, cut + 1)
            self.chunks.append((start, self.position + cut + 1, first, self.rows - first))
            self._open = None
            at = cut + 1
        if buffer:
            self._tail = not buffer.endswith(b"\n")
        self.position += size

    @staticmethod
    def _cut(buffer: bytes, at: int, rows_left: int, bytes_left: int) -> int | None:
        """Offset in `buffer` of the line break that ends the open chunk, if it is here."""
        breaks = np.flatnonzero(np.frombuffer(buffer, np.uint8, offset=at) == _NEWLINE) + at
        candidates = []
        if rows_left <= len(breaks):
            candidates.append(int(breaks[rows_left - 1]))
        late = np.searchsorted(breaks, at + max(bytes_left, 1) - 1)
        if late < len(breaks):
            candidates.append(int(breaks[late]))
        return min(candidates) if candidates else None

    def finish(self) -> list[tuple[int, int, int, int]]:
        """(start, end, first row, rows) per chunk."""
        if self._tail:
            self.rows += 1
        if self._open is not None:
            start, first = self._open
            self.chunks.append((start, self.position, first, self.rows - first))
            self._open = None
        return self.chunks


def lines_of(
    buffers: Iterable[bytes], cap: int = MAX_LINE_BYTES
) -> Iterator[tuple[list[Line], int]]:
    """The lines (without their LF) of consecutive buffers, a list per buffer with the
    bytes it holds; a line over `cap` bytes is a TooLong, its bytes dropped as they arrive."""
    rest = b""
    skipping = 0  # bytes of an over-long line seen so far (0: not in one)
    for buffer in buffers:
        found: list[Line] = []
        if skipping:
            newline = buffer.find(b"\n")
            if newline < 0:
                skipping += len(buffer)
                continue
            found.append(TooLong(skipping + newline))
            skipping, buffer = 0, buffer[newline + 1 :]
        text = rest + buffer if rest else buffer
        pieces: list[bytes] = text.split(b"\n")
        rest = pieces.pop()
        held = len(text) - len(rest)
        if len(rest) > cap:
            skipping, rest = len(rest), b""
        if pieces and max(map(len, pieces)) > cap:
            found += [TooLong(len(p)) if len(p) > cap else p for p in pieces]
            held = sum(len(p) for p in pieces if len(p) <= cap)
        else:
            found += pieces
        if found:
            yield found, held
    if skipping:
        yield [TooLong(skipping)], 0
    elif rest:
        yield [rest], len(rest)


def line_batches(
    buffers: Iterable[bytes], size: int, max_bytes: int = MAX_BATCH_BYTES,
    cap: int = MAX_LINE_BYTES,
) -> Iterator[list[Line]]:  # fmt: skip
    """Lines in lists of at most `size` lines and about `max_bytes` bytes (a list is
    cut once it holds `max_bytes`, so it may exceed that by one buffer's lines)."""
    batch: list[Line] = []
    held = 0
    for lines, size_of_lines in lines_of(buffers, cap):
        batch += lines
        held += size_of_lines
        while len(batch) >= size:
            yield batch[:size]
            batch = batch[size:]
            held = _bytes_held(batch)
        if held >= max_bytes:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _bytes_held(lines: list[Line]) -> int:
    """The bytes of the lines held (a TooLong holds none)."""
    if set(map(type, lines)) <= {bytes}:
        return sum(map(len, lines))  # type: ignore[arg-type]
    return sum(len(line) for line in lines if type(line) is bytes)
