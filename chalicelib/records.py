"""Records (parsed JSON objects) to the model's encoded matrix, in encoded order.

A record is either raw application fields (standardised and one-hot encoded with
the bundle's preprocessing) or encoded features keyed by the bundle's encoded
names (used as given). Key order never matters. Validation is vectorised in the
common all-valid case; only when that fails does a per-field pass find the
record and field to report. Problems never echo submitted values, and an unknown
key is named only when it looks like a field name.

Well-formed values far from the training data (more than `max_deviations`
training standard deviations from the training mean) are refused as unscorable:
for raw records with the preprocessing spec's mean/std, for encoded records with
the manifest's optional `feature_stats`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from operator import itemgetter
from typing import Any

import numpy as np

from chalicelib.encoding import FeatureEncoder
from chalicelib.errors import (
    MAX_REPORTED_PROBLEMS,
    FieldProblem,
    InvalidRecords,
    ServiceError,
    UnscorableRecords,
)
from chalicelib.manifest import BundleManifest
from chalicelib.model_inputs import ModelInputs

DEFAULT_MAX_DEVIATIONS = 1000.0
#: Deviation above which a field is named as a likely cause of an unscorable output.
SUSPECT_DEVIATIONS = 10.0
_NUMBER_TYPES = frozenset({int, float})
_TEXT_TYPE = frozenset({str})
# A client's key is echoed only if it looks like a field name, not free text
# ("Jane Doe SSN 123-45-6789" is personal data, "nickname" is not).
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


class RecordReader:
    """Validates records against one bundle's schema and encodes them."""

    def __init__(
        self, manifest: BundleManifest, max_deviations: float = DEFAULT_MAX_DEVIATIONS
    ) -> None:
        self.max_deviations = max_deviations
        self.inputs = ModelInputs(manifest)
        #: The encoded matrix's column names (a nested-list field's name once per value).
        self.encoded_names = manifest.column_names()
        #: The fields of an encoded record, and the shape of each nested-list one.
        self.encoded_fields = list(manifest.encoded_features)
        self.tensor_fields = {i.features[0]: i.shape for i in manifest.model_inputs() if i.shape}
        self._encoded_set = frozenset(self.encoded_fields)
        self._encoded_getter = _getter(self.encoded_fields)
        stats = manifest.feature_stats
        self._stats = (np.array(stats.mean), np.array(stats.std)) if stats is not None else None
        if self._stats is not None:  # float32 like the inputs: ~10x faster than float64
            self._mean32 = self._stats[0].astype(np.float32)
            self._limit32 = (max_deviations * self._stats[1]).astype(np.float32)
        spec = manifest.preprocessing
        self.encoder = FeatureEncoder(spec) if spec else None
        self.numeric_names = [f.name for f in spec.numeric] if spec else []
        if spec is None:
            self._raw_set: frozenset[str] = frozenset()
            return
        self.categorical_names = [f.name for f in spec.categorical]
        self._raw_set = frozenset(self.numeric_names + self.categorical_names)
        self._numeric_getter = _getter(self.numeric_names)
        self._raw_only = self._raw_set - self._encoded_set
        self._encoded_only = self._encoded_set - self._raw_set

    def to_matrix(self, records: Sequence[Any]) -> np.ndarray:
        """Encode `records` in order.

        Raises InvalidRecords (malformed) or UnscorableRecords (far outside the
        training range), naming record and field; nothing is encoded partially.
        """
        raw_rows, encoded_rows = self._split_formats(records)
        encoded = self._encoded(records, encoded_rows) if encoded_rows else None
        raw = self._encode_raw(records, raw_rows) if raw_rows else None
        self._check_range(raw_rows, raw, encoded_rows, encoded)
        if raw is None:  # one format per request is the common case: no scatter copy
            return encoded if encoded is not None else self._empty(0)
        if encoded is None:
            return raw
        out = self._empty(len(records))
        out[encoded_rows] = encoded
        out[raw_rows] = raw
        return out

    @property
    def raw_fields(self) -> list[str]:
        """The raw fields a record (or a column set) gives: numeric, then categorical."""
        return self._raw_field_order() if self.encoder else []

    def columns_to_matrix(self, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> np.ndarray:
        """Encode raw fields given as columns of equal length (row i is record i).

        The same rules and errors as raw records: vectorised when every column is
        valid, else the per-record pass names the row (as `record`) and field.
        """
        assert self.encoder is not None and columns.keys() == self._raw_set
        rows = len(next(iter(columns.values())))
        numeric = _numeric_columns([columns[name] for name in self.numeric_names], rows)
        codes = self._column_codes(columns, rows)
        if numeric is None or codes is None:
            return self.to_matrix(_records_of_columns(columns))  # raises, naming row and field
        with np.errstate(over="ignore"):
            encoded = self.encoder.encode(numeric, codes)
        self._check_range(list(range(rows)), encoded, [], None)
        return encoded

    def tensors_to_matrix(self, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's own input arrays (name -> (n, *shape), shapes already checked) as
        one encoded matrix, with the checks encoded records get (finite, integer inputs,
        training range)."""
        slots = self.inputs.slots
        rows = len(next(iter(tensors.values())))
        if len(slots) == 1 and slots[0].columns == slice(0, len(self.encoded_names)):
            given = tensors[slots[0].name].reshape(rows, -1)
            matrix = np.asarray(given, dtype=self.inputs.matrix_dtype)
        else:
            matrix = self._empty(rows)
            for slot in slots:
                matrix[:, slot.columns] = tensors[slot.name].reshape(rows, -1)
        rows_index = range(len(matrix))
        if not np.isfinite(matrix).all():
            bad_rows, bad_columns = np.nonzero(~np.isfinite(matrix))
            raise _invalid(
                FieldProblem(int(row), self.encoded_names[column], _NOT_FINITE)
                for row, column in zip(bad_rows.tolist(), bad_columns.tolist(), strict=True)
            )
        _raise_if(list(islice(self.inputs.problems(matrix, rows_index), _ROOM)))
        self._check_range([], None, list(rows_index), matrix)
        return matrix

    def suspect_fields(self, record: Any, inputs: np.ndarray) -> list[str]:
        """Fields of one encoded row more than SUSPECT_DEVIATIONS from the training mean."""
        raw = bool(self._raw_set) and type(record) is dict and record.keys() == self._raw_set
        return self.suspects(raw, inputs)

    def suspects(self, raw: bool, inputs: np.ndarray) -> list[str]:
        """suspect_fields for a row known to come from raw fields (`raw`) or not."""
        if raw:
            names, deviations = self.numeric_names, np.abs(inputs[: len(self.numeric_names)])
        elif self._stats is not None:
            mean, std = self._stats
            names, deviations = self.encoded_names, np.abs((inputs - mean) / std)
        else:
            return []
        return [
            name for name, far in zip(names, deviations > SUSPECT_DEVIATIONS, strict=True) if far
        ]

    def partition(
        self, records: Sequence[Any]
    ) -> tuple[list[int], np.ndarray, dict[int, list[FieldProblem]]]:
        """Per-row validation for batch scoring: (indexes of the valid records, their
        encoded matrix, each invalid record's problems by index).

        The same checks as `to_matrix`: one vectorised pass when all records are valid,
        else halves are retried until each bad record stands alone, so a chunk with k
        bad rows of n costs about k log n extra passes. Problems are not capped across
        records; each record's own list is capped as `to_matrix` caps it.
        """
        valid: list[int] = []
        parts: list[np.ndarray] = []
        problems: dict[int, list[FieldProblem]] = {}
        pending = [(0, len(records))]
        while pending:
            start, stop = pending.pop()
            try:
                matrix = self.to_matrix(records[start:stop])
            except (InvalidRecords, UnscorableRecords) as exc:
                if stop - start == 1:
                    problems[start] = [
                        FieldProblem(start, p.field, p.problem) for p in exc.details
                    ] or [FieldProblem(start, None, exc.message)]
                else:
                    middle = (start + stop) // 2
                    pending += [(middle, stop), (start, middle)]  # popped in order
                continue
            valid.extend(range(start, stop))
            parts.append(matrix)
        matrix = np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else self._empty(0)
        return valid, matrix, problems

    def header_problems(self, names: Sequence[str]) -> list[FieldProblem]:
        """Problems with a file's column names (record None): they must be exactly the
        raw fields or the encoded features, each once. At most MAX_REPORTED_PROBLEMS."""
        columns = dict.fromkeys(names)
        if self.tensor_fields:
            return [FieldProblem(None, None, _CSV_IS_FLAT)]
        problems = [
            FieldProblem(None, name, "duplicate column")
            for name, count in sorted(Counter(names).items())
            if count > 1 and _FIELD_NAME.fullmatch(name)
        ]
        keys = columns.keys()
        if keys == self._encoded_set or (self._raw_set and keys == self._raw_set):
            return problems[:MAX_REPORTED_PROBLEMS]
        unknown = (
            FieldProblem(None, p.field, p.problem.replace("field", "column"))
            for p in self._key_problems(0, columns)
        )
        return list(islice(chain(problems, unknown), MAX_REPORTED_PROBLEMS))

    def _empty(self, rows: int) -> np.ndarray:
        return np.empty((rows, len(self.encoded_names)), dtype=self.inputs.matrix_dtype)

    def _split_formats(self, records: Sequence[Any]) -> tuple[list[int], list[int]]:
        """Row indexes of raw and of encoded records; InvalidRecords for anything else."""
        raw_rows: list[int] = []
        encoded_rows: list[int] = []
        problems: list[FieldProblem] = []
        for index, record in enumerate(records):
            if type(record) is not dict:
                problems.append(FieldProblem(index, None, "record must be a JSON object"))
            elif self._raw_set and record.keys() == self._raw_set:
                raw_rows.append(index)
            elif record.keys() == self._encoded_set:
                encoded_rows.append(index)
            else:  # stop at the cap: a body of 500,000 unknown keys builds 101 problems
                problems.extend(islice(self._key_problems(index, record), _ROOM - len(problems)))
            if len(problems) >= _ROOM:
                break
        _raise_if(problems)
        return raw_rows, encoded_rows

    def _check_range(
        self,
        raw_rows: list[int],
        raw: np.ndarray | None,
        encoded_rows: list[int],
        encoded: np.ndarray | None,
    ) -> None:
        """Refuse values more than `max_deviations` training stds from the training mean."""
        bound = self.max_deviations
        problems: list[FieldProblem] = []
        if raw is not None and self.numeric_names:
            # The raw numeric columns are already (x - mean) / std.
            deviations = np.abs(raw[:, : len(self.numeric_names)])
            if not deviations.max() <= bound:  # NaN-safe: only all-near passes
                problems += _far_problems(raw_rows, deviations, self.numeric_names, bound)
        if encoded is not None and self._stats is not None:
            with np.errstate(over="ignore"):
                near = np.abs(encoded - self._mean32) <= self._limit32
            if not near.all():
                mean, std = self._stats
                deviations = np.abs(encoded - mean) / std
                problems += _far_problems(encoded_rows, deviations, self.encoded_names, bound)
        if problems:
            problems.sort(key=lambda p: p.record or 0)
            raise refusal(UnscorableRecords, problems, "value(s) far outside the training range")

    def _encoded(self, records: Sequence[Any], rows: list[int]) -> np.ndarray:
        """Encoded records go to the model as given, so they must fit its inputs: float32,
        or whole numbers in range for integer inputs (the matrix is then float64)."""
        if self.tensor_fields:
            values = self._flat_values(records, rows)
            matrix = _number_matrix(rows, values, self.encoded_names, self.inputs.matrix_dtype)
        else:
            matrix = self._numbers(
                records, rows, self._encoded_getter, self.encoded_names, self.inputs.matrix_dtype
            )
        _raise_if(list(islice(self.inputs.problems(matrix, rows), _ROOM)))
        return matrix

    def _flat_values(self, records: Sequence[Any], rows: list[int]) -> list[tuple[Any, ...]]:
        """Each record's values in column order, nested-list fields flattened row-major;
        InvalidRecords naming record and field when a nested list is not of its shape."""
        values: list[tuple[Any, ...]] = []
        problems: list[FieldProblem] = []
        for row in rows:
            record, flat = records[row], []
            for name in self.encoded_fields:
                shape = self.tensor_fields.get(name)
                if shape is None:
                    flat.append(record[name])
                    continue
                leaves = _flatten(record[name], shape)
                if leaves is None:
                    problems.append(FieldProblem(row, name, _shape_problem(shape)))
                else:
                    flat.extend(leaves)
            values.append(tuple(flat))
            if len(problems) >= _ROOM:
                break
        _raise_if(problems)
        return values

    def _encode_raw(self, records: Sequence[Any], rows: list[int]) -> np.ndarray:
        assert self.encoder is not None
        numeric = self._numbers(records, rows, self._numeric_getter, self.numeric_names)
        codes = self._category_codes(records, rows)
        with np.errstate(over="ignore"):  # far values become inf, refused by the range check
            return self.encoder.encode(numeric, codes)

    def _numbers(
        self,
        records: Sequence[Any],
        rows: list[int],
        getter: Callable[[dict[str, Any]], tuple[Any, ...]],
        names: list[str],
        dtype: type[np.floating[Any]] = np.float64,
    ) -> np.ndarray:
        """Numbers of `names` as a matrix of `dtype`; all must be finite in that type."""
        return _number_matrix(rows, [getter(records[i]) for i in rows], names, dtype)

    def _category_codes(self, records: Sequence[Any], rows: list[int]) -> np.ndarray:
        assert self.encoder is not None
        codes = np.empty((len(rows), len(self.categorical_names)), dtype=np.intp)
        problems: list[FieldProblem] = []
        for column, name in enumerate(self.categorical_names):
            index = self.encoder.category_index[name]
            values = [records[row][name] for row in rows]
            try:
                found: list[int | None] = list(map(index.get, values))
            except TypeError:  # an object or array is unhashable
                found = [None]
            if None in found:
                problems.extend(
                    islice(
                        (
                            FieldProblem(row, name, _category_problem(value))
                            for row, value in zip(rows, values, strict=True)
                            if type(value) is not str or value not in index
                        ),
                        _ROOM,
                    )
                )
            else:
                codes[:, column] = np.fromiter(found, dtype=np.intp, count=len(found))
        _raise_if(sorted(problems, key=lambda p: p.record or 0))
        return codes

    def _column_codes(
        self, columns: Mapping[str, Sequence[Any] | np.ndarray], rows: int
    ) -> np.ndarray | None:
        """Category codes of category columns, or None if any value is not a known category."""
        assert self.encoder is not None
        codes = np.empty((rows, len(self.categorical_names)), dtype=np.intp)
        for column, name in enumerate(self.categorical_names):
            values = columns[name]
            if isinstance(values, np.ndarray) or len(values) != rows:
                return None
            try:
                found = list(map(self.encoder.category_index[name].__getitem__, values))
            except (KeyError, TypeError):  # not a category, or an unhashable value
                return None
            if not set(map(type, values)) <= _TEXT_TYPE:
                return None
            codes[:, column] = found
        return codes

    def _key_problems(self, index: int, record: dict[str, Any]) -> Iterator[FieldProblem]:
        keys = record.keys()
        looks_encoded = not self._raw_set or (
            len(keys & self._encoded_only) > len(keys & self._raw_only)
        )
        expected = self.encoded_fields if looks_encoded else self._raw_field_order()
        expected_set = self._encoded_set if looks_encoded else self._raw_set
        for name in expected:
            if name not in record:
                yield FieldProblem(index, name, "missing field")
        for position, key in enumerate(record, start=1):
            if key not in expected_set:
                if _FIELD_NAME.fullmatch(key):
                    yield FieldProblem(index, key, "unknown field")
                else:
                    yield FieldProblem(
                        index, None, f"unknown field (key #{position} of the record)"
                    )

    def _raw_field_order(self) -> list[str]:
        return self.numeric_names + self.categorical_names


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Fetch `names` from a record as a tuple (itemgetter alone unpacks one name)."""
    if len(names) == 1:
        name = names[0]
        return lambda record: (record[name],)
    if not names:
        return lambda record: ()
    return itemgetter(*names)


_NOT_FINITE = "must be a finite number (not NaN or infinity)"
_CSV_IS_FLAT = (
    "CSV files carry flat records only; this model takes nested-list inputs: send JSONL "
    "(one JSON record per line)"
)


def _number_matrix(
    rows: list[int],
    values: list[tuple[Any, ...]],
    names: list[str],
    dtype: type[np.floating[Any]] = np.float64,
) -> np.ndarray:
    """`values` (one tuple per row, in `names` order) as a matrix of `dtype`; all must
    be numbers, finite in that type."""
    if set(map(type, chain.from_iterable(values))) <= _NUMBER_TYPES:
        try:
            with np.errstate(over="ignore"):
                matrix = np.array(values, dtype=dtype)
        except OverflowError:  # an integer beyond float range
            matrix = None
        if matrix is not None and np.isfinite(matrix).all():
            return matrix.reshape(len(values), len(names))
    raise _invalid(_number_problems(rows, values, names, dtype))


def _flatten(value: Any, shape: tuple[int, ...]) -> list[Any] | None:
    """The leaves of `value`, row-major, when it is lists nested exactly as `shape`."""
    level = [value]
    for dimension in shape:
        nested: list[Any] = []
        for item in level:
            if type(item) is not list or len(item) != dimension:
                return None
            nested.extend(item)
        level = nested
    return level


def _shape_problem(shape: tuple[int, ...]) -> str:
    return f"must be lists of numbers nested as shape {list(shape)}"


def _numeric_columns(columns: list[Sequence[Any] | np.ndarray], rows: int) -> np.ndarray | None:
    """(rows, k) float64 of numeric columns (lists of JSON numbers or numeric arrays),
    or None when a value is not a finite number or a length is not `rows`."""
    matrix = np.empty((rows, len(columns)))  # each column copied once, in place
    for column, values in enumerate(columns):
        if isinstance(values, np.ndarray):
            if values.dtype.kind not in "fiu":
                return None
            array = values.reshape(-1)
        elif set(map(type, values)) <= _NUMBER_TYPES:
            try:
                array = np.array(values, dtype=np.float64)
            except OverflowError:  # an integer beyond float range
                return None
        else:
            return None
        if len(array) != rows:
            return None
        matrix[:, column] = array
    return matrix if np.isfinite(matrix).all() else None


def _records_of_columns(columns: Mapping[str, Sequence[Any] | np.ndarray]) -> list[Any]:
    """Columns (of equal length) back to records, for the per-record pass that names
    row and field."""
    lists = [
        values.reshape(-1).tolist() if isinstance(values, np.ndarray) else list(values)
        for values in columns.values()
    ]
    return [dict(zip(columns, row, strict=True)) for row in zip(*lists, strict=True)]


def _number_problems(
    rows: list[int], values: list[tuple[Any, ...]], names: list[str], dtype: type[np.floating[Any]]
) -> Iterator[FieldProblem]:
    for row, row_values in zip(rows, values, strict=True):
        for name, value in zip(names, row_values, strict=False):
            problem = _number_problem(value, dtype)
            if problem:
                yield FieldProblem(row, name, problem)


def _number_problem(value: Any, dtype: type[np.floating[Any]]) -> str | None:
    kind = type(value)
    if kind is bool:
        return "must be a number, not a boolean"
    if kind is float and not math.isfinite(value):
        return "must be a finite number (not NaN or infinity)"
    if kind in _NUMBER_TYPES:
        return None if _fits(value, dtype) else "must be a finite number (out of range)"
    return f"must be a number, not {_json_type(value)}"


def _fits(value: float, dtype: type[np.floating[Any]]) -> bool:
    """Finite once converted, as the vectorised path converts (float32 rounds
    3.4028235e38 down to its maximum, 3.5e38 up to infinity)."""
    try:
        with np.errstate(over="ignore"):
            return bool(np.isfinite(dtype(value)))
    except OverflowError:  # an integer beyond float range
        return False


def _category_problem(value: Any) -> str:
    if type(value) is str:
        return "unknown category (GET /model lists the accepted values)"
    return f"must be a category string, not {_json_type(value)}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a number"


def _far_problems(
    rows: list[int], deviations: np.ndarray, names: list[str], bound: float
) -> Iterator[FieldProblem]:
    """Problems for entries beyond `bound` (or NaN), up to the reported cap."""
    problem = f"more than {bound:g} standard deviations from the training mean"
    far_rows, far_columns = np.nonzero(~(deviations <= bound))
    for row, column in islice(zip(far_rows.tolist(), far_columns.tolist(), strict=True), _ROOM):
        yield FieldProblem(rows[row], names[column], problem)


# One more than is shown, so a message can say "more than N".
_ROOM = MAX_REPORTED_PROBLEMS + 1


def refusal[E: ServiceError](
    kind: type[E], problems: Iterable[FieldProblem], noun: str = "problem(s)"
) -> E:
    """`kind` with at most MAX_REPORTED_PROBLEMS details; collection stops at the cap."""
    found = list(islice(_unique(problems), _ROOM))
    shown = found[:MAX_REPORTED_PROBLEMS]
    if len(found) > len(shown):
        summary = f"More than {len(shown)} {noun} (the first {len(shown)} shown)"
    else:
        summary = f"{len(found)} {noun} in {len({p.record for p in found})} record(s)"
    return kind(f"{summary}; nothing was predicted.", details=shown)


def _unique(problems: Iterable[FieldProblem]) -> Iterator[FieldProblem]:
    """Each (record, field, problem) once: a nested list's values share one field."""
    seen: set[tuple[int | None, str | None, str]] = set()
    for problem in problems:
        key = (problem.record, problem.field, problem.problem)
        if key not in seen:
            seen.add(key)
            yield problem


def _invalid(problems: Iterable[FieldProblem]) -> InvalidRecords:
    return refusal(InvalidRecords, problems)


def _raise_if(problems: list[FieldProblem]) -> None:
    if problems:
        raise _invalid(problems)
