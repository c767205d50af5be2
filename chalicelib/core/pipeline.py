"""The scoring steps, written once: input -> encoded matrix -> engine -> valid rows ->
answer, all against ONE bundle snapshot (its reader, engine, task and manifest).

`score_all` refuses the whole input for one bad row (a request); `score_each` scores
the good rows and reports the others by index (a batch). The champion, the challenger,
every surface and the publisher's parity check use these and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from chalicelib.core.inputs import ModelInput
from chalicelib.engines.base import InferenceEngine
from chalicelib.errors import EngineRefused, FieldProblem
from chalicelib.manifest import BundleManifest
from chalicelib.observability.timings import Timings
from chalicelib.store import ModelBundle
from chalicelib.tasks import Task, task_named
from chalicelib.tasks.answers import Comparison, OutputArray, OutputSummary
from chalicelib.tasks.checks import NO_VALID_SCORE, SUSPECT, check_rows

#: A batch row the engine refused alone (its chunk's other rows are still scored).
ENGINE_REFUSED_ROW = "the model's engine refused this record (engine_refused)"


@dataclass(frozen=True)
class Scored:
    """Checked outputs of one snapshot: the (n, width) matrix of the rows scored, the
    input index of each (None: every row, in order) and each refused row's problems.
    Everything a surface reports (model, version, answers) comes from `bundle`."""

    bundle: ModelBundle
    outputs: np.ndarray
    index: list[int] | None = None
    problems: dict[int, list[FieldProblem]] = field(default_factory=dict)

    @property
    def manifest(self) -> BundleManifest:
        return self.bundle.manifest

    @property
    def task(self) -> Task:
        return task_named(self.bundle.manifest.task)

    @property
    def model(self) -> dict[str, str]:
        """{"name", "version"}: the snapshot's, never a newer one's."""
        return {"name": self.manifest.name, "version": self.manifest.version}

    @cached_property
    def predictions(self) -> list[dict[str, Any]]:
        """The task's response objects, one per scored row."""
        return self.task.respond(self.manifest, self.outputs) if len(self.outputs) else []

    def indexed(self) -> list[tuple[int, dict[str, Any]]]:
        """(input index, response object) per scored row."""
        index = self.index if self.index is not None else range(len(self.outputs))
        return list(zip(index, self.predictions, strict=True))

    def summary(self) -> OutputSummary:
        return self.task.summary(self.manifest, self.outputs)

    def tensors(self) -> list[OutputArray]:
        return self.task.v2_tensors(self.manifest, self.outputs)

    def compare(self, other: Scored) -> Comparison:
        """How `other` (another version on the same input) answers the rows both scored."""
        mine, theirs = self.outputs, other.outputs
        if self.index is not None or other.index is not None:
            ours = self.index if self.index is not None else range(len(mine))
            where = {j: k for k, j in enumerate(other.index or range(len(theirs)))}
            pairs = [(k, where[j]) for k, j in enumerate(ours) if j in where]
            mine = mine[[k for k, _ in pairs]]
            theirs = theirs[[k for _, k in pairs]]
        return self.task.compare(self.manifest, mine, other.task, other.manifest, theirs)


def run_engine(engine: InferenceEngine, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The engine step: one array per model input in, the (n, width) outputs out."""
    return engine.predict(arrays)


def score_all(
    bundle: ModelBundle, model_input: ModelInput, timings: Timings | None = None
) -> Scored:
    """Every row or none: InvalidRecords/UnscorableRecords name the bad rows and fields."""
    timings = timings or Timings()
    reader = bundle.reader
    with timings.phase("validate"):
        matrix = model_input.matrix(reader)
    with timings.phase("predict"):
        outputs = run_engine(bundle.engine, bundle.inputs.split(matrix))
        check_rows(
            task_named(bundle.manifest.task).valid_rows(outputs),
            lambda row: model_input.suspects(reader, row, matrix[row]),
        )
    return Scored(bundle, outputs)


def score_each(bundle: ModelBundle, model_input: ModelInput) -> Scored:
    """The rows that can be scored, and the problems of the others by input index: the
    same checks and outputs as `score_all`, row by row."""
    reader = bundle.reader
    valid, matrix, problems = model_input.partition(reader)
    if not valid:
        return Scored(bundle, np.empty((0, 0), np.float32), [], problems)
    try:
        outputs = run_engine(bundle.engine, bundle.inputs.split(matrix))
    except EngineRefused:
        # One row can make the engine raise for all: score each row alone so only the
        # rows it refuses are lost, each reported, never the whole chunk.
        kept, rows = [], []
        for row, index in enumerate(valid):
            try:
                rows.append(run_engine(bundle.engine, bundle.inputs.split(matrix[row : row + 1])))
                kept.append(row)
            except EngineRefused:
                problems[index] = [FieldProblem(index, None, ENGINE_REFUSED_ROW)]
        if not kept:
            return Scored(bundle, np.empty((0, 0), np.float32), [], problems)
        valid, matrix, outputs = [valid[r] for r in kept], matrix[kept], np.concatenate(rows)
    scored = task_named(bundle.manifest.task).valid_rows(outputs)
    if not scored.all():
        for row in np.flatnonzero(~scored).tolist():
            index = valid[row]
            suspects = model_input.suspects(reader, index, matrix[row])
            problems[index] = [FieldProblem(index, None, NO_VALID_SCORE)] + [
                FieldProblem(index, name, SUSPECT) for name in suspects
            ]
        valid = [index for index, ok in zip(valid, scored.tolist(), strict=True) if ok]
        outputs = outputs[scored]
    return Scored(bundle, outputs, valid, problems)
