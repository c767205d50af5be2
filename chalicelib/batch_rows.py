"""Batch input lines to rows the core can score: the file rules.

One physical line is one row, in CSV and JSON Lines alike: a row is numbered by its
line, and a malformed line is rejected alone, with its number and the field or problem
(never the value), so no fault can shift or swallow the rows after it.

CSV, per line (after one CR before the LF, the line ending, is removed):
- UTF-8 text without NUL bytes or any other CR, at most MAX_LINE_BYTES (batch_files);
- exactly the header's number of values, separated by commas; a value may be quoted
  as in RFC 4180 ("a, b"; a quote inside doubled), but a quote may only enclose a whole value
  and must close on the same line (line breaks inside quoted values are not supported);
- values at most MAX_VALUE_CHARS characters;
- a model field that is a number is read as a JSON number (-12.5e3, with spaces or
  tabs around it as JSON allows): `1_000`, `+1`, `.5`, `0x10`, `nan` or digits other
  than 0-9 stay text, which the record checks refuse naming the field; an empty value
  is null. Text (category) values are taken exactly as written.

JSON Lines: each line one JSON object (a BOM before the first is skipped).

Well-formed CSV lines are parsed a batch at a time (one decode, one split, one JSON
parse per number column); only lines that need it take the line-by-line parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from chalicelib.batch_files import MAX_LINE_BYTES, HeaderUnreadable, Line, TooLong
from chalicelib.batch_layout import MAX_PASS_THROUGH_CHARS, JobOptions
from chalicelib.errors import FieldProblem

MAX_VALUE_CHARS = 1 << 16
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_QUOTED = re.compile(r'"([^"]*(?:""[^"]*)*)"')
_PLAIN = re.compile(r'[^",]*')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")
_NUMBER_TYPES = frozenset({int, float})
_JUST_BYTES = {bytes}
_COMMA, _LF, _CR = ord(","), ord("\n"), ord("\r")
_NUMBER_ROLE, _TEXT = 1, 2
#: Bytes a JSON number (with JSON's spaces around it) and the separators may hold.
_NUMBER_BYTES = b"0123456789+-.eE \t,\n"
EMPTY_LINE = "empty line"
TOO_LONG = f"line longer than {MAX_LINE_BYTES:,} bytes (the cap)"


class Unreadable(ValueError):
    """One line that cannot be read as values; `column` (0-based) when one is at fault."""

    def __init__(self, problem: str, column: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.column = column


class HeaderRefused(ValueError):
    """A header the job cannot use: a one-line reason and the columns at fault."""

    def __init__(self, reason: str, problems: list[FieldProblem]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = problems


def json_number(text: str) -> Any:
    """A CSV value as a JSON number reads it: an int or float, None when empty, else
    the text itself (not a number: the record checks name the field)."""
    stripped = text.strip(" \t")
    if not stripped:
        return None
    if _INTEGER.fullmatch(stripped):
        return int(stripped)
    if _NUMBER.fullmatch(stripped):
        return float(stripped)
    return text


def line_text(line: bytes) -> str:
    """A line as text, its line ending removed; Unreadable if it is not a line of text."""
    line = line.removesuffix(b"\r")
    if b"\x00" in line:
        raise Unreadable("contains a NUL byte")
    if b"\r" in line:
        raise Unreadable("contains a carriage return (CR) that does not end the line")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text") from None
    if not text:
        raise Unreadable(EMPTY_LINE)
    return text


def split_line(line: bytes) -> list[str]:
    """One CSV line's values (quotes removed); Unreadable says what is wrong with it."""
    return split_text(line_text(line))


def split_text(text: str) -> list[str]:
    """The values of a line of text (quotes removed); Unreadable for a misplaced quote."""
    if '"' not in text:
        return text.split(",")
    values: list[str] = []
    at, end = 0, len(text)
    while True:
        if text.startswith('"', at):
            quoted = _QUOTED.match(text, at)
            if quoted is None:
                raise Unreadable("unterminated quote (quoted values may not hold line "
                                 "breaks)", len(values))  # fmt: skip
            values.append(quoted.group(1).replace('""', '"'))
            at = quoted.end()
            if at < end and text[at] != ",":
                raise Unreadable("text after a closing quote", len(values) - 1)
        else:
            plain = _PLAIN.match(text, at)
            assert plain is not None  # matches the empty string at least
            values.append(plain.group())
            at = plain.end()
            if at < end and text[at] == '"':
                raise Unreadable("stray quote (a quote may only enclose a whole value)",
                                 len(values) - 1)  # fmt: skip
        if at >= end:
            return values
        at += 1  # the comma


def header_names(line: bytes) -> list[str]:
    """Column names of a CSV header line (spaces around each removed)."""
    if not line.strip():
        raise HeaderUnreadable("the file has no header line")
    try:
        names = split_line(line)
    except Unreadable as exc:
        where = "" if exc.column is None else f" (column {exc.column + 1})"
        raise HeaderUnreadable(f"the header line is not readable: {exc.problem}{where}") from None
    return [name.strip() for name in names]


@dataclass
class ParsedRows:
    """A batch of lines read as rows: the rows to score (as feature columns for CSV,
    records for JSON Lines) with the line each came from, each other line's problems,
    and each readable line's pass-through values."""

    lines: list[int] = field(default_factory=list)
    problems: dict[int, list[FieldProblem]] = field(default_factory=dict)
    carried: dict[int, dict[str, Any]] = field(default_factory=dict)
    columns: dict[str, Any] | None = None  # name -> list, or float64 array
    raw_columns: bool = False  # columns are exactly the model's raw fields
    _records: list[dict[str, Any]] | None = None

    def records(self) -> list[dict[str, Any]]:
        """The rows to score as records (built from the columns on first use)."""
        if self._records is None:
            columns = self.columns or {}
            names = list(columns)
            lists = [v.tolist() if isinstance(v, np.ndarray) else v for v in columns.values()]
            self._records = [dict(zip(names, row, strict=True))
                             for row in zip(*lists, strict=True)]  # fmt: skip
        return self._records

    def refuse(self, line: int, problem: FieldProblem) -> None:
        self.problems.setdefault(line, []).append(problem)


@dataclass(frozen=True)
class CsvColumns:
    """How a job reads its CSV's columns: the header, which columns are model fields
    (and of those, which are text), and which are carried through."""

    header: list[str]
    features: list[tuple[int, str]]
    text: frozenset[str]
    carried: list[tuple[int, str]]
    raw: bool  # the features are the model's raw fields (not encoded features)

    @property
    def width(self) -> int:
        return len(self.header)

    @cached_property
    def roles(self) -> np.ndarray | None:
        """Each column's role for the vectorised reader (0 ignored, 1 a number, 2 text
        or carried), or None when a carried column is also a number feature."""
        roles = np.zeros(self.width, np.uint8)
        for index, name in self.features:
            roles[index] = _TEXT if name in self.text else _NUMBER_ROLE
        for index, _ in self.carried:
            if roles[index] == _NUMBER_ROLE:
                return None
            roles[index] = _TEXT
        return roles

    def name(self, column: int) -> str | None:
        """A column's name as a problem may give it (only names that look like one)."""
        if column < self.width and _FIELD_NAME.fullmatch(self.header[column]):
            return self.header[column]
        return None


CSV_IS_FLAT = (
    "the model takes nested-list inputs (sequences, images) and a CSV cell holds one value: "
    "send the rows as JSON Lines (.jsonl)"
)


class FieldNames:
    """The model's field names a batch reader needs (from a RecordReader)."""

    #: Whether an input takes nested lists (JSON Lines only: a CSV cell holds one value).
    nested = False

    def __init__(self, reader: Any) -> None:
        self.raw: list[str] = list(reader.raw_fields)
        self.encoded: list[str] = list(reader.encoded_fields)
        self.nested = bool(reader.tensor_fields)
        self.text = frozenset(getattr(reader, "categorical_names", []))
        self.header_problems: Callable[[Sequence[str]], list[FieldProblem]] = reader.header_problems


def csv_columns(header: list[str], options: JobOptions, fields: FieldNames) -> CsvColumns:
    """The job's reading of `header`; HeaderRefused names what does not fit."""
    problems = [FieldProblem(None, name, "pass-through column missing from the header")
                for name in options.pass_through if name not in header]  # fmt: skip
    problems += [FieldProblem(None, name, "duplicate column")
                 for name in options.pass_through if header.count(name) > 1]  # fmt: skip
    if problems:
        raise HeaderRefused("a pass-through column is missing from the header or named "
                            "twice", problems)  # fmt: skip
    if fields.nested:
        raise HeaderRefused(CSV_IS_FLAT, [])
    known = set(fields.raw) | set(fields.encoded)
    candidates = [name for name in header if name in known or (
        not options.ignore_extra_columns and name not in options.pass_through)]  # fmt: skip
    problems = fields.header_problems(candidates)
    if problems:
        raise HeaderRefused("the header does not match the model's fields (GET /model lists "
                            "them)", problems)  # fmt: skip
    chosen = set(candidates)
    features = [(index, name) for index, name in enumerate(header) if name in chosen]
    carried = [(header.index(name), name) for name in options.pass_through]
    raw = bool(fields.raw) and chosen == set(fields.raw)
    return CsvColumns(header, features, fields.text if raw else frozenset(), carried, raw)


def parse_csv(lines: Sequence[Line], columns: CsvColumns, vectorised: bool = True) -> ParsedRows:
    """Rows of a batch of CSV lines, numbered by their index in `lines`. `vectorised`
    False reads line by line even a well-formed batch (the same result, slower)."""
    parsed = _well_formed(lines, columns) if vectorised else None
    if parsed is not None:
        return parsed
    parsed = ParsedRows()
    numbers, flat = _split_all(lines, columns, parsed)
    if columns.carried:
        numbers, flat = _carry(numbers, flat, columns, parsed)
    width = columns.width
    parsed.lines = numbers
    parsed.columns = {}
    for index, name in columns.features:
        values = flat[index::width]
        parsed.columns[name] = values if name in columns.text else _numbers(values)
    parsed.raw_columns = columns.raw
    return parsed


def _well_formed(lines: Sequence[Line], columns: CsvColumns) -> ParsedRows | None:
    """The batch read with numpy, when every line is well formed: UTF-8 without quotes,
    NUL bytes or any CR but the line ending, each with the header's number of values,
    none too long, every number valid, every carried value usable. None otherwise, and
    the line-by-line reader decides (with the same rules, so both read alike)."""
    roles = columns.roles
    if roles is None or not lines or set(map(type, lines)) != _JUST_BYTES:
        return None
    blob = b"\n".join(lines)  # type: ignore[arg-type]
    rows, width = len(lines), columns.width
    returns = blob.count(b"\r")  # CRLF line endings: each CR just before a line break
    if returns and (width == 1 or returns != blob.count(b"\r\n") + blob.endswith(b"\r")):
        return None
    if b'"' in blob or b"\x00" in blob or not _utf8(blob):
        return None
    data = np.frombuffer(blob, np.uint8)
    is_separator = (data == _COMMA) | (data == _LF)
    if np.count_nonzero(is_separator) != rows * width - 1:
        return None  # some line has another number of values (no positions array built)
    separators = np.flatnonzero(is_separator)
    breaks = data[separators] == _LF  # must be every width-th separator, and only those
    if int(breaks.sum()) != rows - 1 or not breaks[width - 1 :: width].all():
        return None
    sizes = np.diff(separators, prepend=-1, append=len(data))  # a value and its separator
    if sizes.max() - 1 > MAX_VALUE_CHARS or (width == 1 and sizes.min() == 1):
        return None  # a long value, or an empty line
    role = np.repeat(np.tile(roles, rows), sizes)[: len(data)]
    if returns:
        role[data == _CR] = 0  # a line ending's CR is in no value
    matrix = _number_matrix(data[role == _NUMBER_ROLE], rows, int((roles == _NUMBER_ROLE).sum()))
    texts = _texts(data[role == _TEXT], rows, int((roles == _TEXT).sum()))
    if matrix is None or texts is None:
        return None
    parsed = ParsedRows(lines=list(range(rows)), raw_columns=columns.raw)
    found: dict[str, Any] = {}
    parsed.columns = found
    numeric = [name for _, name in columns.features if name not in columns.text]
    text_columns = [i for i in range(columns.width) if roles[i] == _TEXT]
    for index, name in columns.features:
        if name in columns.text:
            found[name] = texts[text_columns.index(index)]
        else:
            found[name] = matrix[:, numeric.index(name)]
    if columns.carried:
        carried = [(name, texts[text_columns.index(index)]) for index, name in columns.carried]
        if any(max(map(len, values)) > MAX_PASS_THROUGH_CHARS or _CONTROL.search("".join(values))
               for _, values in carried):  # fmt: skip
            return None
        names = [name for name, _ in carried]
        for line, values in enumerate(zip(*(v for _, v in carried), strict=True)):
            parsed.carried[line] = dict(zip(names, values, strict=True))
    return parsed


def _utf8(blob: bytes) -> bool:
    if blob.isascii():
        return True
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _number_matrix(data: np.ndarray, rows: int, count: int) -> np.ndarray | None:
    """The number columns' bytes (each value with its separator) as a (rows, count)
    float64 matrix, parsed as one JSON array; None if a value is not a JSON number."""
    if not count:
        return np.empty((rows, 0))
    text = data.tobytes()
    if text.translate(None, _NUMBER_BYTES):  # a byte no JSON number (or separator) has
        return None
    text = text.replace(b"\n", b",").removesuffix(b",")
    try:
        values = orjson.loads(b"[" + text + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(values) != rows * count:
        return None
    return np.fromiter(values, np.float64, count=len(values)).reshape(rows, count)


def _texts(data: np.ndarray, rows: int, count: int) -> list[list[str]] | None:
    """The text columns' bytes (each value with its separator) as `count` columns."""
    if not count:
        return []
    text = np.where(data == _COMMA, _LF, data).tobytes().removesuffix(b"\n").decode("utf-8")
    values = text.split("\n")
    if len(values) != rows * count:
        return None
    return [values[i::count] for i in range(count)]


def _split_all(
    lines: Sequence[Line], columns: CsvColumns, parsed: ParsedRows
) -> tuple[list[int], list[str]]:
    """The numbers of the lines that hold the header's number of values, and all their
    values in one list (row after row); the other lines' problems go to `parsed`."""
    width = columns.width
    plain = [line for line in lines if type(line) is bytes]
    blob = b"\n".join(plain)
    if b"\r" in blob:
        blob = blob.replace(b"\r\n", b"\n").removesuffix(b"\r")
    text: str | None = None
    if len(plain) == len(lines) and b'"' not in blob and b"\r" not in blob and b"\x00" not in blob:
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None:  # the common case: every line is plain values, at C speed
        texts = text.split("\n")
        counts = [t.count(",") for t in texts]
        lengths = list(map(len, texts))
        if (counts.count(width - 1) == len(texts) and min(lengths, default=1) > 0
                and max(lengths, default=0) <= MAX_VALUE_CHARS):  # fmt: skip
            return list(range(len(texts))), text.replace("\n", ",").split(",")
    numbers: list[int] = []
    flat: list[str] = []
    for number, line in enumerate(lines):
        values = _values(number, line, columns, parsed)
        if values is not None:
            numbers.append(number)
            flat += values
    return numbers, flat


def _values(number: int, line: Line, columns: CsvColumns, parsed: ParsedRows) -> list[str] | None:
    """One line's values, or None with its problem recorded."""
    if type(line) is TooLong:
        parsed.refuse(number, FieldProblem(number, None, TOO_LONG))
        return None
    assert type(line) is bytes
    try:
        text = line_text(line)
        if '"' not in text and text.count(",") != columns.width - 1:  # without splitting it
            problem = f"expected {columns.width} columns, found {text.count(',') + 1}"
            parsed.refuse(number, FieldProblem(number, None, problem))
            return None
        values = split_text(text)
    except Unreadable as exc:
        column = None if exc.column is None else columns.name(exc.column)
        where = "" if exc.column is None or column else f" in column {exc.column + 1}"
        parsed.refuse(number, FieldProblem(number, column, exc.problem + where))
        return None
    if len(values) != columns.width:
        problem = f"expected {columns.width} columns, found {len(values)}"
        parsed.refuse(number, FieldProblem(number, None, problem))
        return None
    long = [i for i, value in enumerate(values) if len(value) > MAX_VALUE_CHARS]
    for i in long:
        name = columns.name(i)
        where = "" if name else f" (column {i + 1})"
        problem = f"value longer than {MAX_VALUE_CHARS:,} characters{where}"
        parsed.refuse(number, FieldProblem(number, name, problem))
    return None if long else values


def _carry(
    numbers: list[int], flat: list[str], columns: CsvColumns, parsed: ParsedRows
) -> tuple[list[int], list[str]]:
    """Record each row's pass-through values; rows with an unusable one are refused."""
    width = columns.width
    carried: list[tuple[str, list[str]]] = []
    bad: set[int] = set()  # positions in `numbers`
    for index, name in columns.carried:
        values = flat[index::width]
        carried.append((name, values))
        if max(map(len, values), default=0) <= MAX_PASS_THROUGH_CHARS and not _CONTROL.search(
            "".join(values)
        ):
            continue
        for position, value in enumerate(values):
            problem = pass_through_problem(value)
            if problem:
                line = numbers[position]
                parsed.refuse(line, FieldProblem(line, name, problem))
                bad.add(position)
    for position, line in enumerate(numbers):
        parsed.carried[line] = {name: values[position] for name, values in carried
                                if pass_through_problem(values[position]) is None} if (
            position in bad) else {name: values[position] for name, values in carried}  # fmt: skip
    if not bad:
        return numbers, flat
    kept = [p for p in range(len(numbers)) if p not in bad]
    return [numbers[p] for p in kept], [v for p in kept for v in flat[p * width : (p + 1) * width]]


def pass_through_problem(value: Any) -> str | None:
    """Why `value` cannot be copied into output lines, or None."""
    if type(value) is str:
        if len(value) > MAX_PASS_THROUGH_CHARS:
            return f"pass-through value longer than {MAX_PASS_THROUGH_CHARS} characters"
        if _CONTROL.search(value):
            return "pass-through value contains a control character"
        return None
    if type(value) in _NUMBER_TYPES:
        return None
    return "pass-through value must be text or a number"


def _numbers(values: list[str]) -> list[Any]:
    """A column of values read as JSON numbers: one JSON parse for the whole column,
    value by value only when that fails."""
    try:
        numbers = orjson.loads("[" + ",".join(values) + "]")
    except orjson.JSONDecodeError:
        numbers = None
    if (type(numbers) is list and len(numbers) == len(values)
            and set(map(type, numbers)) <= _NUMBER_TYPES):  # fmt: skip
        return numbers
    return [json_number(value) for value in values]


@dataclass(frozen=True)
class JsonColumns:
    """How a job reads JSON Lines records: which keys are scored, which carried."""

    keep: frozenset[str] | None  # the model's fields (None: every key but pass-through)
    carried: tuple[str, ...]
    drop: frozenset[str]  # pass-through keys that are not model fields


def json_columns(options: JobOptions, fields: FieldNames) -> JsonColumns:
    known = frozenset(fields.raw) | frozenset(fields.encoded)
    keep = known if options.ignore_extra_columns else None
    return JsonColumns(keep, options.pass_through, frozenset(options.pass_through) - known)


def parse_jsonl(lines: Sequence[Line], columns: JsonColumns) -> ParsedRows:
    """Records of a batch of JSON Lines lines, numbered by their index in `lines`."""
    parsed = ParsedRows(_records=[])
    records = parsed.records()
    for number, line in enumerate(lines):
        record = _record(number, line, parsed)
        if record is None:
            continue
        if columns.carried and not _carried(number, record, columns, parsed):
            continue
        if columns.keep is not None:
            record = {key: value for key, value in record.items() if key in columns.keep}
        elif columns.drop:
            record = {key: value for key, value in record.items() if key not in columns.drop}
        records.append(record)
        parsed.lines.append(number)
    return parsed


def _record(number: int, line: Line, parsed: ParsedRows) -> dict[str, Any] | None:
    if type(line) is TooLong:
        parsed.refuse(number, FieldProblem(number, None, TOO_LONG))
        return None
    assert type(line) is bytes
    if not line.strip():
        parsed.refuse(number, FieldProblem(number, None, EMPTY_LINE))
        return None
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:
            line.decode("utf-8")
            problem = "not valid JSON"
        except UnicodeDecodeError:
            problem = "not UTF-8 text"
        parsed.refuse(number, FieldProblem(number, None, problem))
        return None
    if type(record) is not dict:  # dropped now: an array line may hold many objects
        parsed.refuse(number, FieldProblem(number, None, "record must be a JSON object"))
        return None
    return record


def _carried(number: int, record: dict[str, Any], columns: JsonColumns,
             parsed: ParsedRows) -> bool:  # fmt: skip
    """Record the line's pass-through values; False (refused) if one is missing or unusable."""
    carried = {}
    for name in columns.carried:
        if name not in record:
            parsed.refuse(number, FieldProblem(number, name, "missing pass-through field"))
            continue
        problem = pass_through_problem(record[name])
        if problem:
            parsed.refuse(number, FieldProblem(number, name, problem))
        else:
            carried[name] = record[name]
    parsed.carried[number] = carried
    return number not in parsed.problems
