"""Checks on what an engine returns, before any label is chosen from it.

argmax of a NaN row is 0, so an overflowed model would otherwise answer the first
label with no probabilities; such rows are refused instead (422 unscorable_records).
Each task picks the row rule that fits its outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

import numpy as np

from chalicelib.errors import MAX_REPORTED_PROBLEMS, FieldProblem, UnscorableRecords

#: How far a probability row's sum may stray from 1 (float32 softmax is within ~1e-6).
SUM_TOLERANCE = 1e-3
#: Slack on [0, 1] for float rounding.
RANGE_TOLERANCE = 1e-6

NO_VALID_SCORE = "the model gave no valid score for this record"
SUSPECT = "far outside the training range (likely cause)"


def finite_rows(outputs: np.ndarray) -> np.ndarray:
    """Per row: every value finite."""
    return np.isfinite(outputs).all(axis=1)


def probability_rows(outputs: np.ndarray) -> np.ndarray:
    """Per row: every value in [0, 1] (independent probabilities; NaN fails)."""
    in_range = (outputs >= -RANGE_TOLERANCE) & (outputs <= 1 + RANGE_TOLERANCE)
    return in_range.all(axis=1)


def valid_probability_rows(probabilities: np.ndarray) -> np.ndarray:
    """Per row: every value finite and in [0, 1], and the row sums to 1 (NaN fails)."""
    sums_to_one = np.abs(probabilities.sum(axis=1, dtype=np.float64) - 1.0) <= SUM_TOLERANCE
    return probability_rows(probabilities) & sums_to_one


def check_rows(valid: np.ndarray, suspects: Callable[[int], list[str]]) -> None:
    """Raise UnscorableRecords naming each invalid row and `suspects(row)`, its likely causes."""
    if not valid.all():
        bad = np.flatnonzero(~valid).tolist()
        raise UnscorableRecords(
            f"{len(bad)} record(s) got no valid score from the model; nothing was predicted.",
            details=list(islice(_problems(bad, suspects), MAX_REPORTED_PROBLEMS)),
        )


def check_probabilities(probabilities: np.ndarray, suspects: Callable[[int], list[str]]) -> None:
    """check_rows with the softmax rule (`valid_probability_rows`)."""
    check_rows(valid_probability_rows(probabilities), suspects)


def not_probabilities(outputs: np.ndarray, *, sums_to_one: bool) -> str | None:
    """Why sample `outputs` are not probabilities (for a publisher's refusal), or None."""
    rows = len(outputs)
    reasons = [
        (~finite_rows(outputs), "have non-finite values"),
        ((outputs < -RANGE_TOLERANCE).any(axis=1), "have negative values"),
        ((outputs > 1 + RANGE_TOLERANCE).any(axis=1), "have values above 1"),
    ]
    if sums_to_one:
        sums = outputs.sum(axis=1, dtype=np.float64)
        reasons.append((np.abs(sums - 1.0) > SUM_TOLERANCE, "do not sum to 1"))
    found = [f"{int(bad.sum())} of {rows} rows {what}" for bad, what in reasons if bad.any()]
    return "; ".join(found) or None


def _problems(rows: list[int], suspects: Callable[[int], list[str]]) -> Iterator[FieldProblem]:
    for row in rows:
        yield FieldProblem(row, None, NO_VALID_SCORE)
        for name in suspects(row):
            yield FieldProblem(row, name, SUSPECT)
