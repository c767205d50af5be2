"""The encoded matrix to the model's inputs: the one place that splits and casts.

`RecordReader` builds one matrix in encoded order: float32, or float64 when an input
is an integer, so that whole numbers up to 2**53 stay exact. This module checks the
integer columns (whole numbers within the dtype's range, and within the input's
`index_range` when the publisher found one in the model, e.g. an Embedding's
`[0, input_dim - 1]`; problems name record and field, never the value), splits the
matrix into one array per model input, keyed by the input's name in the manifest's
order, and builds the store's zero probe.

An integer-valued float (`3.0`) is accepted for an integer input: JSON does not
distinguish it from `3`, and many encoders write whole floats that way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from chalicelib.errors import FieldProblem
from chalicelib.manifest import BundleManifest

#: Accepted range per integer dtype. int64 stops at 2**53 - 1: beyond it JSON numbers
#: (and float64) are no longer exact, so a record could not say which integer it means.
INTEGER_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**53 - 1), 2**53 - 1)}


@dataclass(frozen=True)
class _Slot:
    """One model input: its name, numpy dtype, its columns of the encoded matrix, each
    column's field name and one record's shape in the model (a tensor input's columns
    are its values, row-major, all named by its one field)."""

    name: str
    dtype: np.dtype
    columns: slice | np.ndarray
    features: tuple[str, ...]
    shape: tuple[int, ...]


class ModelInputs:
    """The model's inputs as the manifest declares them, in the model's order."""

    def __init__(self, manifest: BundleManifest) -> None:
        widths = {f: w for i in manifest.model_inputs() for f, w in i.widths().items()}
        first, offset = {}, 0
        for name in manifest.encoded_features:
            first[name], offset = offset, offset + widths[name]
        self.slots = []
        for i in manifest.model_inputs():
            indexes = [first[name] + k for name in i.features for k in range(widths[name])]
            names = tuple(name for name in i.features for _ in range(widths[name]))
            self.slots.append(
                _Slot(i.name, np.dtype(i.dtype), _columns(indexes), names, i.record_shape)
            )
        ranges = {i.name: i.index_range for i in manifest.model_inputs()}
        self._integer = [
            _integer_check(slot, ranges[slot.name]) for slot in self.slots if slot.dtype.kind == "i"
        ]
        #: The dtype RecordReader builds encoded matrices in.
        self.matrix_dtype: type[np.floating] = np.float64 if self._integer else np.float32

    @property
    def names(self) -> list[str]:
        return [slot.name for slot in self.slots]

    def problems(self, matrix: np.ndarray, rows: Sequence[int]) -> Iterator[FieldProblem]:
        """Entries of integer inputs that are not whole numbers within the dtype's (or index) range;
        `rows[i]` is the request's index of matrix row i."""
        for slot, low, high, problem in self._integer:
            values = matrix[:, slot.columns]
            valid = (values == np.floor(values)) & (values >= low) & (values <= high)
            if valid.all():
                continue
            bad_rows, bad_columns = np.nonzero(~valid)
            for row, column in zip(bad_rows.tolist(), bad_columns.tolist(), strict=True):
                yield FieldProblem(rows[row], slot.features[column], problem)

    def split(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """One C-contiguous array per input, cast to its dtype and shaped (rows, *shape)
        (no copy for a single float32 input taking every column in order, the common case)."""
        return {
            slot.name: np.ascontiguousarray(matrix[:, slot.columns], dtype=slot.dtype).reshape(
                (len(matrix), *slot.shape)
            )
            for slot in self.slots
        }

    def zeros(self, rows: int) -> dict[str, np.ndarray]:
        """All-zero inputs (a valid index for integer inputs): the store's load probe."""
        return {slot.name: np.zeros((rows, *slot.shape), dtype=slot.dtype) for slot in self.slots}


def _integer_check(slot: _Slot, index_range: tuple[int, int] | None) -> tuple[_Slot, int, int, str]:
    """(slot, low, high, problem): the dtype's range, narrowed to the input's index range."""
    low, high = INTEGER_RANGES[slot.dtype.name]
    if index_range is None:
        return (
            slot,
            low,
            high,
            f"must be a whole number from {low} to {high} ({slot.dtype.name} input)",
        )
    low, high = max(low, index_range[0]), min(high, index_range[1])
    return slot, low, high, f"must be a whole number from {low} to {high} (an index the model has)"


def _columns(indexes: list[int]) -> slice | np.ndarray:
    """A slice when the columns are consecutive (a view, no gather), else an index array."""
    start = indexes[0]
    if indexes == list(range(start, start + len(indexes))):
        return slice(start, start + len(indexes))
    return np.array(indexes, dtype=np.intp)
