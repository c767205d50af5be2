"""`heads`: a model with several named outputs, each answered by its own task (for
example `grade`: classification over A-G, `default`: binary).

The engines concatenate the model's outputs in its output order, so the service's
one output matrix holds each head's columns after the previous head's; each head is
answered by its task over its columns, seen through a one-output manifest
(`BundleManifest.head_manifests`). The response nests each head's answer under its
name: `{"grade": {"label": "C", ...}, "default": {"label": "no", ...}}`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.tasks.answers import OutputArray, OutputSpec
from chalicelib.tasks.base import Task
from chalicelib.tasks.checks import finite_rows

if TYPE_CHECKING:
    from chalicelib.manifest import BundleManifest, Head


class Heads(Task):
    name = "heads"
    probabilistic = False

    def output_section(
        self, units: int, labels: Sequence[str] | None, outputs: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Sections live in each head; a head that is itself `heads` is refused by
        `manifest_problem`."""
        return (), tuple(outputs or ())

    def prediction_schema(self) -> tuple[str, dict[str, Any]]:
        """Each head's prediction is one of the other tasks'."""
        from chalicelib.tasks import TASKS  # the registry imports this module

        names = dict.fromkeys(
            task.prediction_schema()[0] for task in TASKS.values() if task.name != self.name
        )
        return "HeadsPrediction", {
            "type": "object",
            "description": "heads (a model with several named outputs): each output's "
            "prediction under its name, shaped by its own task (GET /model's `heads`).",
            "minProperties": 2,
            "additionalProperties": {
                "oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in names]
            },
        }

    def example_prediction(self, manifest: Mapping[str, Any]) -> str:
        heads = manifest.get("heads") or []
        return (
            "{"
            + ", ".join(
                f'"{head["name"]}": {_task(head.get("task")).example_prediction(head)}'
                for head in heads
            )
            + "}"
        )

    def output_names(self, manifest: BundleManifest) -> tuple[str, ...]:
        """Each column's name, qualified by its head (`grade.A`, `default.p`)."""
        names: list[str] = []
        for head, part in manifest.head_manifests():
            task = _task(head.task)
            width = task.output_width(part)
            own = task.output_names(part)
            names += [f"{head.name}.{n}" for n in (own if len(own) == width else own[-width:])]
        return tuple(names)

    def output_width(self, manifest: BundleManifest) -> int:
        return sum(width for _, _, width in _widths(manifest))

    def manifest_problem(self, manifest: BundleManifest) -> str | None:
        heads = manifest.heads
        names = [head.name for head in heads]
        if len(heads) < 2 or len(set(names)) != len(names):
            return "a heads model needs two or more outputs with unique names"
        if manifest.labels or manifest.outputs or manifest.threshold is not None:
            return "a heads model keeps labels, output names and thresholds in each head"
        for head, part in manifest.head_manifests():
            if head.task == self.name:
                return f"head {head.name!r} cannot itself have heads"
            try:
                problem = _task(head.task).manifest_problem(part)
            except ValueError as exc:
                problem = str(exc)
            if problem:
                return f"head {head.name!r}: {problem}"
        return None

    def valid_rows(self, outputs: np.ndarray) -> np.ndarray:
        # Without the manifest only finiteness is known here; each head's own range
        # is checked at publish on the sample (`head_problems`).
        return finite_rows(outputs)

    def sample_problem(self, outputs: np.ndarray) -> str | None:
        bad = int((~finite_rows(outputs)).sum())
        return f"{bad} of {len(outputs)} rows have non-finite values" if bad else None

    def respond(self, manifest: BundleManifest, outputs: np.ndarray) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = [{} for _ in range(len(outputs))]
        for head, part, columns in split(manifest, outputs):
            for answer, own in zip(answers, _task(head.task).respond(part, columns), strict=True):
                answer[head.name] = own
        return answers

    def decided(self, manifest: BundleManifest, outputs: np.ndarray) -> list[Any] | None:
        """Per row, every deciding head's decision together (a challenger agrees on a row
        only when it agrees on every head)."""
        per_head = [
            decided
            for head, part, columns in split(manifest, outputs)
            if (decided := _task(head.task).decided(part, columns)) is not None
        ]
        return [tuple(row) for row in zip(*per_head, strict=True)] if per_head else None

    def v2_outputs(self, manifest: BundleManifest) -> list[OutputSpec]:
        """Each head's tensors, named `<head>.<tensor>` (`grade.label`)."""
        return [
            replace(spec, name=f"{head.name}.{spec.name}")
            for head, part in manifest.head_manifests()
            for spec in _task(head.task).v2_outputs(part)
        ]

    def v2_parameters(self, manifest: BundleManifest) -> dict[str, Any]:
        """Each head's name, task and labels (the columns are qualified by head)."""
        return {"heads": [head.to_json() for head in manifest.heads]}

    def v2_tensors(self, manifest: BundleManifest, outputs: np.ndarray) -> list[OutputArray]:
        return [
            replace(tensor, name=f"{head.name}.{tensor.name}")
            for head, part, columns in split(manifest, outputs)
            for tensor in _task(head.task).v2_tensors(part, columns)
        ]

    def public_json(self, manifest: BundleManifest) -> dict[str, Any]:
        return {
            "task": self.name,
            "heads": [
                {"name": head.name} | _task(head.task).public_json(part)
                for head, part in manifest.head_manifests()
            ],
        }


def split(
    manifest: BundleManifest, outputs: np.ndarray
) -> Iterator[tuple[Head, BundleManifest, np.ndarray]]:
    """Each head, its one-output manifest and its columns of `outputs`."""
    start = 0
    for head, part, width in _widths(manifest):
        yield head, part, outputs[:, start : start + width]
        start += width


def head_problems(manifest: BundleManifest, outputs: np.ndarray) -> Iterator[str]:
    """At publish: each head whose sample outputs are not its task's kind."""
    for head, _, columns in split(manifest, outputs):
        problem = _task(head.task).sample_problem(columns)
        if problem:
            yield f"output {head.name!r} ({head.task}): {problem}"


def _widths(manifest: BundleManifest) -> list[tuple[Head, BundleManifest, int]]:
    return [(h, part, _task(h.task).output_width(part)) for h, part in manifest.head_manifests()]


def _task(name: str | None) -> Task:
    from chalicelib.tasks import DEFAULT_TASK, task_named  # the registry imports this module

    return task_named(name or DEFAULT_TASK)
