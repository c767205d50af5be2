"""Reading batch input files as streams: row offsets for the splitter, rows for workers.

A row is one line (CSV rows may not contain line breaks inside quotes). The last
line needs no line break. Nothing here holds more than one buffer or one batch of
lines: a file of any size streams through.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from chalicelib.errors import FieldProblem

MAX_HEADER_BYTES = 1 << 16


class HeaderUnreadable(ValueError):
    """The file's first line is missing, too long or not UTF-8 text."""


def split_header(buffers: Iterable[bytes]) -> tuple[bytes, int, Iterator[bytes]]:
    """(first line without its line break, bytes it takes, the remaining buffers)."""
    stream = iter(buffers)
    head = b""
    for buffer in stream:
        head += buffer
        newline = head.find(b"\n")
        if newline >= 0:
            return head[:newline], newline + 1, _chain(head[newline + 1 :], stream)
        if len(head) > MAX_HEADER_BYTES:
            break
    if len(head) > MAX_HEADER_BYTES:
        raise HeaderUnreadable("the header line is longer than 64 KiB")
    return head, len(head), iter(())


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def header_names(line: bytes) -> list[str]:
    """Column names of a CSV header line."""
    try:
        text = line.decode("utf-8").removeprefix("\ufeff").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise HeaderUnreadable("the header line is not UTF-8 text") from exc
    names = next(csv.reader([text]), [])
    if not names:
        raise HeaderUnreadable("the file has no header line")
    return [name.strip() for name in names]


@dataclass
class RowOffsets:
    """Rows counted in one pass, with the byte offset where every `every`-th begins."""

    every: int
    position: int  # absolute offset of the next byte
    rows: int = 0
    starts: list[int] = field(default_factory=list)
    _tail: bool = False  # bytes after the last line break

    def feed(self, buffer: bytes) -> None:
        if not buffer:
            return
        if self.rows % self.every == 0 and not self._tail:
            self.starts.append(self.position)
        breaks = buffer.count(b"\n")
        room = self.every - self.rows % self.every  # rows until the next chunk starts
        if breaks < room:
            self.rows += breaks
        else:
            found = -1
            for _ in range(breaks):
                found = buffer.index(b"\n", found + 1)
                self.rows += 1
                if self.rows % self.every == 0 and found + 1 < len(buffer):
                    self.starts.append(self.position + found + 1)
        self._tail = not buffer.endswith(b"\n")
        self.position += len(buffer)

    def finish(self) -> list[tuple[int, int, int, int]]:
        """(start, end, first row, rows) per chunk."""
        if self._tail:
            self.rows += 1
        ends = [*self.starts[1:], self.position]
        return [
            (start, end, i * self.every, min(self.every, self.rows - i * self.every))
            for i, (start, end) in enumerate(zip(self.starts, ends, strict=True))
        ]


def line_batches(buffers: Iterable[bytes], size: int) -> Iterator[list[bytes]]:
    """Lines (without line breaks) in lists of at most `size`."""
    batch: list[bytes] = []
    rest = b""
    for buffer in buffers:
        lines = (rest + buffer).split(b"\n")
        rest = lines.pop()
        batch += lines
        while len(batch) >= size:
            yield batch[:size]
            batch = batch[size:]
    if rest:
        batch.append(rest)
    while batch:
        yield batch[:size]
        batch = batch[size:]


@dataclass
class ParsedRows:
    """Records parsed from lines, the line each came from, and lines that did not parse."""

    records: list[Any] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: dict[int, list[FieldProblem]] = field(default_factory=dict)


def parse_jsonl(lines: Sequence[bytes]) -> ParsedRows:
    parsed = ParsedRows()
    for number, line in enumerate(lines):
        if not line.strip():
            parsed.problems[number] = [FieldProblem(number, None, "empty line")]
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            parsed.problems[number] = [FieldProblem(number, None, "not valid JSON")]
            continue
        parsed.records.append(record)
        parsed.lines.append(number)
    return parsed


def parse_csv(lines: Sequence[bytes], header: list[str], text_columns: set[str]) -> ParsedRows:
    """Records keyed by `header`; numbers parsed except in `text_columns`. A value that
    is not a number stays text (and an empty one becomes null), so the record checks
    name the field."""
    parsed = ParsedRows()
    width = len(header)
    rows: list[list[str]] = []
    for number, row in enumerate(csv.reader(_decoded(lines))):
        if len(row) == width:
            rows.append(row)
            parsed.lines.append(number)
        elif not row or row == [""]:
            parsed.problems[number] = [FieldProblem(number, None, "empty line")]
        else:
            problem = f"expected {width} columns, found {len(row)}"
            parsed.problems[number] = [FieldProblem(number, None, problem)]
    if not rows:
        return parsed
    columns = [
        list(column) if name in text_columns else _numbers(column)
        for name, column in zip(header, zip(*rows, strict=True), strict=True)
    ]
    parsed.records = [
        dict(zip(header, values, strict=True)) for values in zip(*columns, strict=True)
    ]
    return parsed


def _decoded(lines: Sequence[bytes]) -> Iterator[str]:
    for line in lines:
        yield line.decode("utf-8", "replace")


def _numbers(column: Sequence[str]) -> list[Any]:
    try:
        return np.array(column, dtype=np.float64).tolist()
    except ValueError:
        return [_number(value) for value in column]


def _number(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return text
