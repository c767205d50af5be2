"""A chunk's output as it is written: part and error lines, held in memory up to a
limit and then in a temporary file. Nothing here grows with the chunk beyond that
limit."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import IO

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
    predictions = scores.indexed()
    problems = {parsed.lines[i]: found for i, found in scores.problems.items()}
    problems.update(parsed.problems)
    dumps, lines, carried = orjson.dumps, parsed.lines, parsed.carried
    if carried:
        part.extend(
            dumps({"row": first + lines[i]} | carried[lines[i]] | prediction) + b"\n"
            for i, prediction in predictions
        )
    else:
        part.extend(
            dumps({"row": first + lines[i]} | prediction) + b"\n" for i, prediction in predictions
        )
    for line in sorted(problems):
        head = {"row": first + line} | carried.get(line, {})
        errors.extend(
            dumps(head | {"field": p.field, "problem": p.problem}) + b"\n" for p in problems[line]
        )
    return len(problems)
