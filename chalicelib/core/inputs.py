"""What a surface hands the core: records, the model's own tensors, or raw fields as
columns. Each kind knows how one bundle's reader turns it into the encoded matrix
(all or nothing, or row by row) and which fields to suspect for a row."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from chalicelib.errors import FieldProblem, InvalidRecords, UnscorableRecords
from chalicelib.records import RecordReader

Partition = tuple[list[int], np.ndarray, dict[int, list[FieldProblem]]]


class ModelInput(Protocol):
    """Rows for one bundle's reader."""

    @property
    def records(self) -> Sequence[Any] | None:
        """The parsed records when the surface has them (the prediction sample's input)."""
        ...

    def matrix(self, reader: RecordReader) -> np.ndarray:
        """The encoded matrix; raises InvalidRecords or UnscorableRecords for any row."""
        ...

    def partition(self, reader: RecordReader) -> Partition:
        """(valid row indexes, their matrix, each other row's problems)."""
        ...

    def suspects(self, reader: RecordReader, row: int, encoded: np.ndarray) -> list[str]:
        """Fields of `row` (its encoded values `encoded`) likely to explain a bad output."""
        ...


@dataclass(frozen=True)
class Records:
    """Parsed JSON records, raw fields or encoded features each (`POST /predict`)."""

    records: Sequence[Any]

    def matrix(self, reader: RecordReader) -> np.ndarray:
        return reader.to_matrix(self.records)

    def partition(self, reader: RecordReader) -> Partition:
        return reader.partition(self.records)

    def suspects(self, reader: RecordReader, row: int, encoded: np.ndarray) -> list[str]:
        return reader.suspect_fields(self.records[row], encoded)


@dataclass(frozen=True)
class Tensors:
    """The model's own input arrays by input name, each (n, width) (V2 tensors)."""

    arrays: Mapping[str, np.ndarray]
    records: Sequence[Any] | None = None

    def matrix(self, reader: RecordReader) -> np.ndarray:
        return reader.tensors_to_matrix(self.arrays)

    def partition(self, reader: RecordReader) -> Partition:
        matrix = self.matrix(reader)  # tensors come whole: one bad row refuses them
        return list(range(len(matrix))), matrix, {}

    def suspects(self, reader: RecordReader, row: int, encoded: np.ndarray) -> list[str]:
        return reader.suspects(False, encoded)


@dataclass(frozen=True)
class Columns:
    """Raw fields as equal-length columns, row i being record i (V2 raw fields, batch
    CSV). Row by row, a set with a bad row is read again as `as_records()` so the
    reader names each bad row."""

    columns: Mapping[str, Sequence[Any] | np.ndarray]
    as_records: Callable[[], Sequence[Any]] | None = None
    records: Sequence[Any] | None = None

    def matrix(self, reader: RecordReader) -> np.ndarray:
        return reader.columns_to_matrix(self.columns)

    def partition(self, reader: RecordReader) -> Partition:
        try:
            matrix = self.matrix(reader)
        except (InvalidRecords, UnscorableRecords):
            return reader.partition(self._records())
        return list(range(len(matrix))), matrix, {}

    def suspects(self, reader: RecordReader, row: int, encoded: np.ndarray) -> list[str]:
        return reader.suspects(True, encoded)

    def _records(self) -> Sequence[Any]:
        if self.as_records is not None:
            return self.as_records()
        names = list(self.columns)
        lists = [v.tolist() if isinstance(v, np.ndarray) else list(v)
                 for v in self.columns.values()]  # fmt: skip
        return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]
