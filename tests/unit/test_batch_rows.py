"""The batch file rules: one physical line is one row, malformed lines are rejected
alone under their own number, numbers are JSON numbers. Pure, no I/O; a property test
streams generated files with planted faults through the splitter's and the worker's
readers and finds every line exactly once."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.batch_files import (
    BOM,
    ChunkCutter,
    HeaderUnreadable,
    Line,
    TooLong,
    line_batches,
)
from chalicelib.batch_files import split_header as split_header_line
from chalicelib.batch_layout import JobOptions
from chalicelib.batch_rows import (
    FieldNames,
    HeaderRefused,
    ParsedRows,
    Unreadable,
    csv_columns,
    header_names,
    json_columns,
    json_number,
    parse_csv,
    parse_jsonl,
    split_line,
)
from chalicelib.errors import FieldProblem
from chalicelib.records import RecordReader
from tests.unit.schema_fixtures import loan_manifest

READER = RecordReader(loan_manifest())
FIELDS = FieldNames(READER)


class TinyFields(FieldNames):
    """Two raw fields (a number `n`, a category `c`) or two encoded ones."""

    def __init__(self) -> None:
        self.raw = ["n", "c"]
        self.encoded = ["e0", "e1"]
        self.text = frozenset({"c"})
        self.header_problems = lambda names: (
            [] if set(names) in ({"n", "c"}, {"e0", "e1"}) and len(names) == 2
            else [FieldProblem(None, "n", "missing column")]
        )  # fmt: skip


TINY = TinyFields()


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("-0", 0), ("-12.5e3", -12500.0), ("1E-3", 0.001), (" 7 ", 7), ("\t3.5", 3.5),
     ("", None), ("  ", None), ("1_000", "1_000"), ("\u0661\u0662", "\u0661\u0662"),
     ("+1", "+1"), (".5", ".5"),
     ("5.", "5."), ("007", "007"), ("0x10", "0x10"), ("nan", "nan"), ("Infinity", "Infinity"),
     ("1e", "1e"), ("1 2", "1 2"), ("12\u00a0", "12\u00a0")],
)  # fmt: skip
def test_numbers_are_read_as_json_numbers_and_anything_else_stays_text(
    text: str, value: Any
) -> None:
    assert json_number(text) == value and type(json_number(text)) is type(value)
    line = [f"{text},A".encode()]
    for vectorised in (True, False):
        parsed = parse_csv(line, csv_columns(["n", "c"], JobOptions(), TINY), vectorised)
        assert parsed.records() == [{"n": value, "c": "A"}]


@pytest.mark.parametrize(
    ("line", "values"),
    [(b'a,"b,c","d""e",', ["a", "b,c", 'd"e', ""]), (b'"",x', ["", "x"]), (b"a,b\r", ["a", "b"]),
     (b'" spaced ",\xc3\xa9', [" spaced ", "é"])],
)  # fmt: skip
def test_quoted_values_may_hold_commas_and_doubled_quotes(line: bytes, values: list[str]) -> None:
    assert split_line(line) == values


@pytest.mark.parametrize(
    ("line", "problem", "column"),
    [(b'a,b"c', "stray quote", 1), (b'a,"b', "unterminated quote", 1),
     (b'"a"b,c', "text after a closing quote", 0), (b"a\x00,b", "NUL", None),
     (b"a\rb,c", "carriage return", None), (b"a\r\r", "carriage return", None),
     (b"\xff,b", "not UTF-8", None), (b"", "empty line", None), (b"\r", "empty line", None)],
)  # fmt: skip
def test_a_malformed_line_says_what_is_wrong(line: bytes, problem: str, column: int | None) -> None:
    with pytest.raises(Unreadable) as caught:
        split_line(line)
    assert problem in caught.value.problem and caught.value.column == column


def test_header_names_are_read_with_the_same_rules() -> None:
    assert header_names(b' n ,"c"') == ["n", "c"]
    for bad in (b"n\rc", b'n,"c', b"", b"\xffn,c", b"n,\x00"):
        with pytest.raises(HeaderUnreadable):
            header_names(bad)
    line, _, _ = split_header_line([BOM + b"n,c\r\n1,A\n"])
    assert header_names(line) == ["n", "c"]


def test_pass_through_and_extra_columns_are_decided_by_the_options() -> None:
    header = ["application_id", "n", "grade", "c"]
    with pytest.raises(HeaderRefused):  # grade is not a model field
        csv_columns(header, JobOptions(("application_id",)), TINY)
    columns = csv_columns(header, JobOptions(("application_id",), True), TINY)
    assert columns.features == [(1, "n"), (3, "c")] and columns.carried == [(0, "application_id")]
    both = csv_columns(header, JobOptions(("application_id", "grade")), TINY)
    assert both.features == columns.features and both.raw
    with pytest.raises(HeaderRefused) as refused:
        csv_columns(["n", "c"], JobOptions(("application_id",)), TINY)
    assert [p.field for p in refused.value.problems] == ["application_id"]
    feature_too = csv_columns(["n", "c"], JobOptions(("n",)), TINY)
    assert feature_too.features == [(0, "n"), (1, "c")] and feature_too.carried == [(0, "n")]
    with pytest.raises(HeaderRefused) as loan:
        csv_columns([*READER.raw_fields, "grade"], JobOptions(), FIELDS)
    assert {(p.field, p.problem) for p in loan.value.problems} == {("grade", "unknown column")}


def test_each_faulty_csv_line_is_rejected_alone_under_its_number() -> None:
    columns = csv_columns(["id", "n", "c"], JobOptions(("id",)), TINY)
    lines: list[Line] = [b"1,2.5,A", b'2,"3",B', b"3,1_000,C", b'4,"a"b,C', b'5,"1,2",D\r', b"",
             b'6,7,"open', b"7,\xff,A", b"8,1\r2,A", TooLong(2 << 20), b"9, 3 ,A",
             b"x" * 300 + b",1,A", b"10,1", b"11,0x10,A", b'12,-0.5e3,"A"', b"13,\xd9\xa1,A",
             b"14,1,A\x1f"]  # fmt: skip
    parsed = parse_csv(lines, columns)
    assert parsed.lines == [0, 1, 2, 4, 10, 13, 14, 15, 16]
    assert parsed.columns == {"n": [2.5, 3, "1_000", "1,2", 3, "0x10", -500.0, "\u0661", 1],
                              "c": ["A", "B", "C", "D", "A", "A", "A", "A", "A\x1f"]}  # fmt: skip
    problems = {n: [(p.field, p.problem) for p in found] for n, found in parsed.problems.items()}
    assert problems == {
        3: [("n", "text after a closing quote")],
        5: [(None, "empty line")],
        6: [("c", "unterminated quote (quoted values may not hold line breaks)")],
        7: [(None, "not UTF-8 text")],
        8: [(None, "contains a carriage return (CR) that does not end the line")],
        9: [(None, "line longer than 1,048,576 bytes (the cap)")],
        11: [("id", "pass-through value longer than 256 characters")],
        12: [(None, "expected 3 columns, found 2")],
    }
    assert parsed.carried[0] == {"id": "1"} and parsed.carried[11] == {}
    assert all(line in parsed.carried for line in parsed.lines)


VALUES = st.sampled_from(["0", "12", "-3.5", "1e3", " 7 ", "\t4.25E-1", "", "1_000", "+1",
                          "\u0661", "nan", "A", "B", "b a", "é", "x\ty", "\x7f",
                          "q" * 40])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(VALUES, VALUES, VALUES, VALUES), min_size=1, max_size=30),
    options=st.sampled_from([JobOptions(), JobOptions(("id",)), JobOptions(("id", "grade"))]),
    crlf=st.booleans(),
)
def test_a_batch_read_at_once_is_read_as_line_by_line(
    rows: list[tuple[str, ...]], options: JobOptions, crlf: bool
) -> None:
    header = ["n", "id", "c", "grade"]
    if options.pass_through != ("id", "grade"):
        options = JobOptions(options.pass_through, ignore_extra_columns=True)
    columns = csv_columns(header, options, TINY)
    lines = [",".join(row).encode() + (b"\r" if crlf else b"") for row in rows]
    fast, slow = parse_csv(lines, columns), parse_csv(lines, columns, vectorised=False)
    assert (fast.lines, fast.problems, fast.carried) == (slow.lines, slow.problems, slow.carried)
    assert fast.records() == slow.records() and fast.raw_columns == slow.raw_columns


def test_well_formed_batches_are_read_at_once() -> None:
    columns = csv_columns(["n", "c"], JobOptions(), TINY)
    good = [b"%d.5,A" % i for i in range(50)] + [b"1e3 ,\xc3\xa9"]
    fast = parse_csv(good, columns)
    assert fast.columns is not None and isinstance(fast.columns["n"], np.ndarray)
    assert fast.records()[-1] == {"n": 1000.0, "c": "é"} and fast.problems == {}
    assert parse_csv([*good, b'"quoted",D'], columns).records()[:51] == fast.records()


def test_json_lines_are_objects_one_per_line() -> None:
    lines: list[Line] = [b'{"n": 1, "c": "A", "id": "x1"}', b"{not json", b"[1, 2]", b"", b"  \r",
             b'{"n": 2, "c": "B"}', b'{"n": 3, "c": "C", "id": {"a": 1}}', b'"\xff"',
             TooLong(5 << 20), b'{"n": 1_000, "c": "A", "id": 7}',
             b'{"n": 4, "c": "D", "id": "y", "z": 0}\r']  # fmt: skip
    parsed = parse_jsonl(lines, json_columns(JobOptions(("id",), True), TINY))
    assert parsed.lines == [0, 10]
    assert parsed.records() == [{"n": 1, "c": "A"}, {"n": 4, "c": "D"}]
    assert {n: [(p.field, p.problem) for p in found] for n, found in parsed.problems.items()} == {
        1: [(None, "not valid JSON")], 2: [(None, "record must be a JSON object")],
        3: [(None, "empty line")], 4: [(None, "empty line")],
        5: [("id", "missing pass-through field")],
        6: [("id", "pass-through value must be text or a number")],
        7: [(None, "not UTF-8 text")], 8: [(None, "line longer than 1,048,576 bytes (the cap)")],
        9: [(None, "not valid JSON")],
    }  # fmt: skip
    assert parsed.carried[0] == {"id": "x1"} and parsed.carried[10] == {"id": "y"}
    kept = parse_jsonl(lines[10:], json_columns(JobOptions(("id",)), TINY))
    assert kept.records() == [{"n": 4, "c": "D", "z": 0}]  # refused by the record checks


# -- the property: every line of any file is a row or an error, once, under its number --

GOOD = st.tuples(
    st.sampled_from(["0", "12", "-3.5", "1e3", " 7 ", "4.25E-1"]),
    st.sampled_from(["A", "B", "C", "b a", '"q,uoted"', '"say ""x"""']),
)
FAULTS = {  # what the line is -> the problem it gets (None: a number kept as text)
    b'1,A"B': "stray quote", b'1,"AB': "unterminated quote", b"1\r2,A": "carriage return",
    b"1,A\x00": "NUL", b"9," + b"x" * 300: "line longer", b"1,A,B": "expected 2 columns",
    b"1,\xff": "not UTF-8", b"": "empty line", b"1_000,A": None, "\u0661,A".encode(): None,
}  # fmt: skip
ROWS = st.lists(st.one_of(GOOD, st.sampled_from(sorted(FAULTS))), max_size=60)


def _expected_value(text: str) -> str:
    return text[1:-1].replace('""', '"') if text.startswith('"') else text


@settings(max_examples=300, deadline=None)
@given(
    rows=ROWS,
    crlf=st.booleans(),
    bom=st.booleans(),
    final_newline=st.booleans(),
    buffer=st.integers(1, 97),
    every=st.integers(1, 9),
    max_bytes=st.integers(1, 120),
    batch=st.integers(1, 8),
)
def test_every_line_is_scored_or_rejected_exactly_once_under_its_own_number(
    rows: list[Any], crlf: bool, bom: bool, final_newline: bool, buffer: int, every: int,
    max_bytes: int, batch: int,
) -> None:  # fmt: skip
    newline = b"\r\n" if crlf else b"\n"
    lines = [row if isinstance(row, bytes) else ",".join(row).encode() for row in rows]
    data = (BOM if bom else b"") + b"n,c" + newline + newline.join(lines)
    if lines and (final_newline or not lines[-1]):  # a last empty line needs its break
        data += newline
    buffers = [data[i : i + buffer] for i in range(0, len(data), buffer)]
    header, offset, rest = split_header_line(buffers)
    columns = csv_columns(header_names(header), JobOptions(), TINY)
    cutter = ChunkCutter(every, offset, max_bytes)
    for piece in rest:
        cutter.feed(piece)
    seen: dict[int, Any] = {}
    for start, end, first, count in cutter.finish():
        pieces = [data[i : min(i + buffer, end)] for i in range(start, end, buffer)]
        numbered = 0
        for part in line_batches(pieces, batch, cap=200):
            parsed: ParsedRows = parse_csv(part, columns)
            records = parsed.records()
            for index, line in enumerate(parsed.lines):
                assert first + numbered + line not in seen
                seen[first + numbered + line] = records[index]
            for line, problems in parsed.problems.items():
                assert first + numbered + line not in seen
                seen[first + numbered + line] = " ".join(p.problem for p in problems)
            numbered += len(part)
        assert numbered == count
    assert sorted(seen) == list(range(len(rows))) == list(range(cutter.rows))
    for number, row in enumerate(rows):
        if isinstance(row, bytes) and FAULTS[row] is None:  # kept as text, for the checks
            assert isinstance(seen[number]["n"], str)
        elif isinstance(row, bytes):
            assert FAULTS[row] in seen[number]
        else:
            assert seen[number] == {"n": json_number(row[0]), "c": _expected_value(row[1])}
