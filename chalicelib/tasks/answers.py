"""What a task answers about a matrix of checked outputs, besides its response objects:
a summary for metrics, a comparison with another version's outputs (challenger,
parity) and output tensors (the Open Inference Protocol). Plain data, no surface."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class OutputSpec:
    """One output tensor a task answers: a V2 datatype name and a shape (-1: rows)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class OutputArray:
    """One output tensor's values: an array, or a list of label strings (BYTES)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray | list[str]


@dataclass(frozen=True)
class Comparison:
    """How one version's outputs differ from another's on the same rows.

    `agreements` counts rows with the same decision (a label, a multilabel set); None
    when the task decides nothing (regression). The differences are means over the
    rows of the mean |a - b| over the probabilities (or values) both versions name."""

    records: int
    agreements: int | None
    probability_diff: float | None
    value_diff: float | None

    @property
    def agreement_rate(self) -> float | None:
        if self.agreements is None or not self.records:
            return None
        return self.agreements / self.records


@dataclass
class OutputSummary:
    """A batch of outputs summed for metrics: per-label decision counts and the sum of
    each row's top probability (probabilistic tasks), or per output name the sum, min
    and max (numeric outputs). Summaries add up (a batch chunk's parts)."""

    rows: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    top_probability_sum: float = 0.0
    top_probability_rows: int = 0
    values: dict[str, list[float]] = field(default_factory=dict)  # name -> [sum, min, max]

    def add(self, other: OutputSummary) -> None:
        self.rows += other.rows
        for label, count in other.label_counts.items():
            self.label_counts[label] = self.label_counts.get(label, 0) + count
        self.top_probability_sum += other.top_probability_sum
        self.top_probability_rows += other.top_probability_rows
        for name, (total, low, high) in other.values.items():
            mine = self.values.get(name)
            self.values[name] = (
                [total, low, high]
                if mine is None
                else [mine[0] + total, min(mine[1], low), max(mine[2], high)]
            )


def mean_abs_diff(
    ours: tuple[tuple[str, ...], np.ndarray], theirs: tuple[tuple[str, ...], np.ndarray]
) -> float | None:
    """Mean over rows of the mean |ours - theirs| over the names both give; None if none."""
    (our_names, our_values), (their_names, their_values) = ours, theirs
    where = {name: index for index, name in enumerate(their_names)}
    shared = [(i, where[name]) for i, name in enumerate(our_names) if name in where]
    if not shared or not len(our_values):
        return None
    mine = our_values[:, [i for i, _ in shared]].astype(np.float64)
    other = their_values[:, [j for _, j in shared]].astype(np.float64)
    return float(np.abs(mine - other).mean(axis=1).mean())
