"""A chunk's output as it is written: part and error lines, held in memory up to a
limit and then in a temporary file, and the part's prediction summary for its metrics.
Nothing here grows with the chunk beyond that limit."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import IO, Any

import orjson

from chalicelib.batch_rows import ParsedRows
from chalicelib.observability import names
from chalicelib.observability.telemetry import prediction_summary
from chalicelib.service import BatchScores

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


def write_lines(
    scores: BatchScores, parsed: ParsedRows, first: int, part: Spool, errors: Spool
) -> int:
    """Append part and error lines in row order (pass-through values after the row);
    returns the number of rejected rows."""
    problems = {parsed.lines[i]: found for i, found in scores.problems.items()}
    problems.update(parsed.problems)
    dumps, lines, carried = orjson.dumps, parsed.lines, parsed.carried
    if carried:
        part.extend(
            dumps({"row": first + lines[i]} | carried[lines[i]] | prediction) + b"\n"
            for i, prediction in scores.predictions
        )
    else:
        part.extend(
            dumps({"row": first + lines[i]} | prediction) + b"\n"
            for i, prediction in scores.predictions
        )
    for line in sorted(problems):
        head = {"row": first + line} | carried.get(line, {})
        errors.extend(
            dumps(head | {"field": p.field, "problem": p.problem}) + b"\n" for p in problems[line]
        )
    return len(problems)


class PredictionTally:
    """A part's prediction summary (label counts, mean top probability, regression
    mean/min/max), added up batch by batch so no prediction is kept."""

    def __init__(self, labels: Iterable[str]) -> None:
        self._labels = list(labels)
        self._sums: dict[str, float] = {}
        self._weights: dict[str, int] = {}

    def add(self, predictions: list[dict[str, Any]]) -> None:
        rows = len(predictions)
        for name, value in prediction_summary(self._labels, predictions).items():
            if name.startswith(names.LABEL_METRIC_PREFIX):
                self._sums[name] = self._sums.get(name, 0) + value
            elif name.startswith("PredictedMin"):
                self._sums[name] = min(self._sums.get(name, value), value)
            elif name.startswith("PredictedMax"):
                self._sums[name] = max(self._sums.get(name, value), value)
            else:  # a mean over the batch's rows
                self._sums[name] = self._sums.get(name, 0.0) + value * rows
                self._weights[name] = self._weights.get(name, 0) + rows

    def summary(self) -> dict[str, float]:
        return {name: round(value / self._weights[name], 6) if name in self._weights else value
                for name, value in self._sums.items()}  # fmt: skip
