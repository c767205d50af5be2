"""Records (parsed JSON objects) to the model's encoded float32 matrix.

A record is either raw application fields (standardised and one-hot encoded with
the bundle's preprocessing) or encoded features keyed by the bundle's encoded
names (used as given). Key order never matters. Validation is vectorised in the
common all-valid case; only when that fails does a per-field pass find the
record and field to report. Problems never echo submitted values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from chalicelib.encoding import FeatureEncoder
from chalicelib.errors import FieldProblem, InvalidRecords
from chalicelib.manifest import BundleManifest

MAX_REPORTED_PROBLEMS = 100
_NUMBER_TYPES = frozenset({int, float})
_FIELD_NAME_LIMIT = 64


class RecordReader:
    """Validates records against one bundle's schema and encodes them."""

    def __init__(self, manifest: BundleManifest) -> None:
        self.encoded_names = list(manifest.encoded_features)
        self._encoded_set = frozenset(self.encoded_names)
        self._encoded_getter = _getter(self.encoded_names)
        spec = manifest.preprocessing
        self.encoder = FeatureEncoder(spec) if spec else None
        if spec is None:
            self._raw_set: frozenset[str] = frozenset()
            return
        self.numeric_names = [f.name for f in spec.numeric]
        self.categorical_names = [f.name for f in spec.categorical]
        self._raw_set = frozenset(self.numeric_names + self.categorical_names)
        self._numeric_getter = _getter(self.numeric_names)
        self._raw_only = self._raw_set - self._encoded_set
        self._encoded_only = self._encoded_set - self._raw_set

    def to_matrix(self, records: Sequence[Any]) -> np.ndarray:
        """Encode `records` in order; raises InvalidRecords naming record and field."""
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
            else:
                problems.extend(self._key_problems(index, record))
        _raise_if(problems)
        if not raw_rows:  # one format per request is the common case: no scatter copy
            return self._encoded(records, encoded_rows)
        if not encoded_rows:
            return self._encode_raw(records, raw_rows)
        out = np.empty((len(records), len(self.encoded_names)), dtype=np.float32)
        out[encoded_rows] = self._encoded(records, encoded_rows)
        out[raw_rows] = self._encode_raw(records, raw_rows)
        return out

    def _encoded(self, records: Sequence[Any], rows: list[int]) -> np.ndarray:
        """Encoded records go to the model as given, so they must fit float32."""
        return self._numbers(records, rows, self._encoded_getter, self.encoded_names, np.float32)

    def _encode_raw(self, records: Sequence[Any], rows: list[int]) -> np.ndarray:
        assert self.encoder is not None
        numeric = self._numbers(records, rows, self._numeric_getter, self.numeric_names)
        codes = self._category_codes(records, rows)
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
        values = [getter(records[i]) for i in rows]
        if set(map(type, chain.from_iterable(values))) <= _NUMBER_TYPES:
            try:
                with np.errstate(over="ignore"):
                    matrix = np.array(values, dtype=dtype)
            except OverflowError:  # an integer beyond float range
                matrix = None
            if matrix is not None and np.isfinite(matrix).all():
                return matrix
        raise _invalid(_number_problems(rows, values, names, float(np.finfo(dtype).max)))

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
                    FieldProblem(row, name, _category_problem(value))
                    for row, value in zip(rows, values, strict=True)
                    if type(value) is not str or value not in index
                )
            else:
                codes[:, column] = np.fromiter(found, dtype=np.intp, count=len(found))
        _raise_if(sorted(problems, key=lambda p: p.record or 0))
        return codes

    def _key_problems(self, index: int, record: dict[str, Any]) -> Iterator[FieldProblem]:
        keys = record.keys()
        looks_encoded = not self._raw_set or (
            len(keys & self._encoded_only) > len(keys & self._raw_only)
        )
        expected = self.encoded_names if looks_encoded else self._raw_field_order()
        expected_set = self._encoded_set if looks_encoded else self._raw_set
        for name in expected:
            if name not in record:
                yield FieldProblem(index, name, "missing field")
        for key in record:
            if key not in expected_set:
                yield FieldProblem(index, _field_label(key), "unknown field")

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


def _number_problems(
    rows: list[int], values: list[tuple[Any, ...]], names: list[str], largest: float
) -> Iterator[FieldProblem]:
    for row, row_values in zip(rows, values, strict=True):
        for name, value in zip(names, row_values, strict=False):
            problem = _number_problem(value, largest)
            if problem:
                yield FieldProblem(row, name, problem)


def _number_problem(value: Any, largest: float) -> str | None:
    kind = type(value)
    if kind is bool:
        return "must be a number, not a boolean"
    if kind is float and not math.isfinite(value):
        return "must be a finite number (not NaN or infinity)"
    if kind in _NUMBER_TYPES:
        return None if abs(value) <= largest else "must be a finite number (out of range)"
    return f"must be a number, not {_json_type(value)}"


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


def _field_label(key: str) -> str:
    """A client's key, shortened and made encodable (JSON allows lone surrogates)."""
    label = key if len(key) <= _FIELD_NAME_LIMIT else key[:_FIELD_NAME_LIMIT] + "..."
    return label.encode("utf-8", "backslashreplace").decode("utf-8")


def _invalid(problems: Iterator[FieldProblem] | list[FieldProblem]) -> InvalidRecords:
    found = list(problems)
    shown = found[:MAX_REPORTED_PROBLEMS]
    more = f" ({len(found) - len(shown)} more not shown)" if len(found) > len(shown) else ""
    records = len({p.record for p in found})
    return InvalidRecords(
        f"{len(found)} problem(s) in {records} record(s){more}; nothing was predicted.",
        details=shown,
    )


def _raise_if(problems: list[FieldProblem]) -> None:
    if problems:
        raise _invalid(problems)
