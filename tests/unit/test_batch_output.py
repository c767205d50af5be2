"""A part written as one block from the score matrix is byte for byte the part written
one answer object at a time, for every task (or the block is not used)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.batch_output import Spool, part_block, part_lines, write_lines
from chalicelib.batch_rows import ParsedRows
from chalicelib.core import Scored
from chalicelib.errors import FieldProblem
from chalicelib.manifest import BundleManifest, Head
from chalicelib.store import ModelBundle
from tests.unit.schema_fixtures import loan_manifest

LOAN = loan_manifest()
MANIFESTS = {
    "classification": LOAN,
    "binary": dataclasses.replace(LOAN, task="binary", labels=("no", "yes é"), threshold=0.3),
    "regression": dataclasses.replace(LOAN, task="regression", labels=(), outputs=("a", "b\"c")),
    "multilabel": dataclasses.replace(LOAN, task="multilabel", labels=("x", "y", "z")),
    "heads": dataclasses.replace(
        LOAN, task="heads", labels=(), heads=(Head("grade", "classification", ("A", "B")),
                                              Head("default", "binary", ("no", "yes"))),
    ),
}  # fmt: skip
BLOCK_TASKS = {"classification", "binary", "regression"}
WIDTHS = {"classification": len(LOAN.labels), "binary": 1, "regression": 2, "multilabel": 3,
          "heads": 3}  # fmt: skip


def scored(manifest: BundleManifest, outputs: np.ndarray, index: list[int] | None) -> Scored:
    bundle = cast(ModelBundle, SimpleNamespace(manifest=manifest))
    return Scored(bundle, outputs, index, {})


def body(spool: Spool) -> bytes:
    held = spool.body()
    assert isinstance(held, bytes)  # a few lines stay in memory
    return held


def outputs_for(task: str, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if task == "classification":
        return rng.dirichlet(np.ones(WIDTHS[task]), rows).astype(np.float32)
    values = rng.random((rows, WIDTHS[task]))
    if task == "regression":
        values = (values - 0.5) * 10.0 ** rng.integers(-8, 9, (rows, 1))
    return values.astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(
    task=st.sampled_from(sorted(MANIFESTS)),
    rows=st.integers(1, 40),
    seed=st.integers(0, 1000),
    first=st.integers(0, 10**9),
    gaps=st.booleans(),
    carried=st.sampled_from([None, ("id",), ("id", "note")]),
)
def test_the_block_is_the_part_written_line_by_line(
    task: str, rows: int, seed: int, first: int, gaps: bool, carried: tuple[str, ...] | None
) -> None:
    lines = [3 * i + 1 for i in range(rows)] if gaps else list(range(rows))
    parsed = ParsedRows(lines=lines)
    if carried:
        values: list[Any] = ['a"b', 7, 2.5, "é\u2028", ""]
        parsed.carried = {line: {name: values[(line + k) % len(values)]
                                 for k, name in enumerate(carried)} for line in lines}  # fmt: skip
    index = [i for i in range(rows) if i % 3 != 1] if gaps and rows > 2 else None
    kept = len(index) if index is not None else rows
    scores = scored(MANIFESTS[task], outputs_for(task, kept, seed), index)
    expected = b"".join(part_lines(scores, parsed, first))
    block = part_block(scores, parsed, first)
    assert (block is not None) == (task in BLOCK_TASKS)
    assert block is None or block == expected
    part = Spool()
    write_lines(scores, parsed, first, part, Spool())
    assert part.body() == expected


def test_a_pass_through_column_named_like_the_answer_takes_the_line_by_line_writer() -> None:
    parsed = ParsedRows(lines=[0, 1], carried={0: {"label": "mine"}, 1: {"label": "x"}})
    scores = scored(LOAN, outputs_for("classification", 2, 0), None)
    assert part_block(scores, parsed, 5) is None
    part = Spool()
    write_lines(scores, parsed, 5, part, Spool())
    assert part.body() == b"".join(part_lines(scores, parsed, 5))
    assert b'"row":5,"label":"' in part.body()


def test_errors_and_rejected_rows_are_written_in_row_order() -> None:
    parsed = ParsedRows(lines=[0, 2, 3], problems={1: [FieldProblem(1, None, "empty line")]})
    scores = scored(LOAN, outputs_for("classification", 2, 1), [0, 2])
    scores.problems[1] = [FieldProblem(1, "dti", "must be a number")]
    part, errors = Spool(), Spool()
    assert write_lines(scores, parsed, 10, part, errors) == 2
    assert [line[:9] for line in body(part).splitlines()] == [b'{"row":10', b'{"row":13']
    assert body(errors).splitlines() == [
        b'{"row":11,"field":null,"problem":"empty line"}',
        b'{"row":12,"field":"dti","problem":"must be a number"}',
    ]


@pytest.mark.parametrize("task", sorted(BLOCK_TASKS))
def test_no_rows_scored_is_an_empty_block(task: str) -> None:
    scores = scored(MANIFESTS[task], np.empty((0, WIDTHS[task]), np.float32), [])
    assert part_block(scores, ParsedRows(lines=[0]), 0) == b""
