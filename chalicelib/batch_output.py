"""A chunk's output as it is written: part and error lines, held in memory up to a
limit and then in a temporary file. Nothing here grows with the chunk beyond that
limit."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import IO, Any

import numpy as np
import orjson

from chalicelib.batch_rows import ParsedRows
from chalicelib.core.pipeline import Scored

SPOOL_BYTES = 32 << 20  # a 50,000-row part (~12 MB) stays in memory


class Spool:
    """Lines kept in memory up to `limit` bytes, then in a temporary file (/tmp)."""

    def __init__(self, limit: int = SPOOL_BYTES) -> None:
        self._limit = limit
        self._held: list[bytes] = []
        self._size = 0
        self._file: IO[bytes] | None = None

    def extend(self, lines: Iterable[bytes]) -> None:
        if self._file is not None:
            self._file.writelines(lines)
            return
        added = list(lines)
        self._held += added
        self._size += sum(map(len, added))
        if self._size > self._limit:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self._file.writelines(self._held)
            self._held = []

    def __bool__(self) -> bool:
        return self._file is not None or bool(self._held)

    def body(self) -> bytes | IO[bytes]:
        """What to upload: the bytes, or the file rewound."""
        if self._file is None:
            return b"".join(self._held)
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def write_lines(scores: Scored, parsed: ParsedRows, first: int, part: Spool, errors: Spool) -> int:
    """Append part and error lines in row order (pass-through values after the row);
    returns the number of rejected rows."""
    problems = {parsed.lines[i]: found for i, found in scores.problems.items()}
    problems.update(parsed.problems)
    carried = parsed.carried
    block = part_block(scores, parsed, first)
    if block is not None:
        part.extend([block])
    else:
        part.extend(part_lines(scores, parsed, first))
    dumps = orjson.dumps
    for line in sorted(problems):
        head = {"row": first + line} | carried.get(line, {})
        errors.extend(
            dumps(head | {"field": p.field, "problem": p.problem}) + b"\n" for p in problems[line]
        )
    return len(problems)


def part_lines(scores: Scored, parsed: ParsedRows, first: int) -> Iterator[bytes]:
    """The part's lines one object at a time: the reference the block must equal."""
    dumps, lines, carried = orjson.dumps, parsed.lines, parsed.carried
    for i, prediction in scores.indexed():
        yield dumps({"row": first + lines[i]} | carried.get(lines[i], {}) | prediction) + b"\n"


def part_block(scores: Scored, parsed: ParsedRows, first: int) -> bytes | None:
    """The part's lines as one bytes, built from the score matrix without an object per
    row: {"row": n, <carried>, "label": l, "probabilities": {...}} (or "values" only).
    None when the task answers in another shape (then part_lines writes them): the
    first and last rows are checked against the task's own answer, so the block is
    byte for byte what part_lines writes."""
    rows = len(scores.outputs)
    if not rows:
        return b""
    task, manifest = scores.task, scores.manifest
    names, matrix = task.named_scores(manifest, scores.outputs)
    decided = task.decided(manifest, scores.outputs)
    if not names or len(matrix) != rows or (decided is not None and not all(
            type(label) is str for label in (decided[0], decided[-1]))):  # fmt: skip
        return None
    index = np.asarray(parsed.lines)[scores.index if scores.index is not None else slice(None)]
    carried = parsed.carried
    if carried and _collides(carried, index[0], decided is not None):
        return None
    numbers = orjson.dumps((index + first).tolist())[1:-1].split(b",")
    values = orjson.dumps(matrix.ravel().tolist())[1:-1].split(b",")
    keys = [orjson.dumps(name) for name in names]
    opening = b',"probabilities":{' if decided is not None else b',"values":{'
    pieces: list[Any] = [b'{"row":', numbers]
    if carried:
        pieces.append([b"," + orjson.dumps(carried[line])[1:-1] if carried.get(line) else b""
                       for line in index.tolist()])  # fmt: skip
    if decided is not None:
        labels = {label: orjson.dumps(label) for label in set(decided)}
        pieces += [b',"label":', list(map(labels.__getitem__, decided))]
    width = len(names)
    block = np.empty((rows, len(pieces) + 2 * width + 1), dtype=object)
    for column, piece in enumerate(pieces):
        block[:, column] = piece
    start = len(pieces)
    for j, key in enumerate(keys):
        block[:, start + 2 * j] = (opening if j == 0 else b",") + key + b":"
    values_at = slice(start + 1, start + 2 * width, 2)
    block[:, values_at] = np.array(values, dtype=object).reshape(rows, width)
    block[:, -1] = b"}}\n"
    text = b"".join(block.ravel().tolist())
    if not (text.startswith(_one_line(scores, parsed, first, 0))
            and text.endswith(_one_line(scores, parsed, first, rows - 1))):  # fmt: skip
        return None
    return text


def _one_line(scores: Scored, parsed: ParsedRows, first: int, position: int) -> bytes:
    """part_lines' line for the `position`-th scored row (the task answers that row alone)."""
    index = scores.index[position] if scores.index is not None else position
    alone = replace(scores, outputs=scores.outputs[position : position + 1], index=[index],
                    problems={})  # fmt: skip
    return next(part_lines(alone, parsed, first))


def _collides(carried: dict[int, dict[str, Any]], line: int, labelled: bool) -> bool:
    """Whether a pass-through name is one the answer writes (then the dict merge decides)."""
    answer = {"row", "label", "probabilities"} if labelled else {"row", "values"}
    return not answer.isdisjoint(carried.get(line, {}))
