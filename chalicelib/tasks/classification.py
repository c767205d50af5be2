"""`classification`: softmax over k >= 2 classes; the winner and every probability."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.tasks.answers import OutputArray, OutputSpec, OutputSummary
from chalicelib.tasks.base import Task, labels_problem, threshold_problem
from chalicelib.tasks.checks import not_probabilities, valid_probability_rows

if TYPE_CHECKING:
    from chalicelib.manifest import BundleManifest

#: Up to this many rows, summaries are summed in Python.
_SMALL = 8


class Classification(Task):
    name = "classification"
    remedy = (
        "end the model with a softmax layer, or publish a numeric output with --task regression"
    )
    activation = "softmax"

    def detects(self, activation: str | None, units: int) -> bool:
        return activation == self.activation and units >= 2

    def output_section(
        self, units: int, labels: Sequence[str] | None, outputs: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if units < 2 and not outputs:
            raise ValueError(
                "a classification model has a softmax over 2 or more outputs; "
                "a one-unit sigmoid is --task binary"
            )
        return super().output_section(units, labels, outputs)

    def manifest_problem(self, manifest: BundleManifest) -> str | None:
        return labels_problem(manifest, 2) or threshold_problem(manifest, applies=False)

    def valid_rows(self, outputs: np.ndarray) -> np.ndarray:
        return valid_probability_rows(outputs)

    def sample_problem(self, outputs: np.ndarray) -> str | None:
        return not_probabilities(outputs, sums_to_one=True)

    def decisions(self, outputs: np.ndarray, threshold: float) -> np.ndarray:
        return outputs.argmax(axis=1)

    def respond(self, manifest: BundleManifest, outputs: np.ndarray) -> list[dict[str, Any]]:
        labels = manifest.labels
        winners = outputs.argmax(axis=1).tolist()
        return [
            {"label": labels[winner], "probabilities": dict(zip(labels, row, strict=True))}
            for winner, row in zip(winners, outputs.tolist(), strict=True)
        ]

    def decided(self, manifest: BundleManifest, outputs: np.ndarray) -> list[Any]:
        labels = manifest.labels
        return [labels[i] for i in outputs.argmax(axis=1).tolist()]

    def summary(self, manifest: BundleManifest, outputs: np.ndarray) -> OutputSummary:
        rows = len(outputs)
        if rows > _SMALL:  # one argmax serves the counts and the top probabilities
            winners = outputs.argmax(axis=1)
            given = np.bincount(winners, minlength=len(manifest.labels)).tolist()
            top = float(outputs[np.arange(rows), winners].sum(dtype=np.float64))
            return OutputSummary(rows, dict(zip(manifest.labels, given, strict=True)), top, rows)
        # A request's few rows: plain Python beats numpy's per-call overhead (~20 us).
        labels = manifest.labels
        counts = dict.fromkeys(labels, 0)
        top = 0.0
        for row in outputs.tolist():
            best = max(row)
            counts[labels[row.index(best)]] += 1  # the first maximum, as argmax
            top += best
        return OutputSummary(len(outputs), counts, top, len(outputs))

    def label_counts(self, manifest: BundleManifest, outputs: np.ndarray) -> dict[str, int]:
        counts = np.bincount(outputs.argmax(axis=1), minlength=len(manifest.labels))
        return dict(zip(manifest.labels, counts.tolist(), strict=True))

    def v2_outputs(self, manifest: BundleManifest) -> list[OutputSpec]:
        width = len(manifest.labels)
        return [
            OutputSpec("probabilities", "FP32", (-1, width)),
            OutputSpec("label", "BYTES", (-1,)),
        ]

    def v2_tensors(self, manifest: BundleManifest, outputs: np.ndarray) -> list[OutputArray]:
        return [
            OutputArray("probabilities", "FP32", outputs.shape, outputs),
            OutputArray("label", "BYTES", (len(outputs),), self.decided(manifest, outputs)),
        ]
