"""`multilabel`: k independent sigmoid units; every label at or above the threshold."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.tasks.answers import OutputArray, OutputSpec
from chalicelib.tasks.base import (
    DEFAULT_THRESHOLD,
    Task,
    example_probabilities,
    labels_problem,
    threshold_problem,
)
from chalicelib.tasks.checks import not_probabilities, probability_rows

if TYPE_CHECKING:
    from chalicelib.manifest import BundleManifest


class Multilabel(Task):
    name = "multilabel"
    thresholded = True
    remedy = "end the model with sigmoid units, or publish a numeric output with --task regression"
    activation = "sigmoid"

    def detects(self, activation: str | None, units: int) -> bool:
        return activation == self.activation and units > 1

    def prediction_schema(self) -> tuple[str, dict[str, Any]]:
        return "MultilabelPrediction", {
            "type": "object",
            "description": "multilabel: every label whose probability is at least the threshold.",
            "required": ["labels", "probabilities"],
            "additionalProperties": False,
            "properties": {
                "labels": {"type": "array", "items": {"type": "string"}},
                "probabilities": {
                    "type": "object",
                    "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
                    "description": "One finite, independent probability per label.",
                },
            },
        }

    def example_prediction(self, manifest: Mapping[str, Any]) -> str:
        threshold = manifest.get("threshold", DEFAULT_THRESHOLD)
        probabilities = example_probabilities(list(manifest.get("labels") or []))
        return f'{{"labels": [those with p >= {threshold}], "probabilities": {probabilities}}}'

    def manifest_problem(self, manifest: BundleManifest) -> str | None:
        return labels_problem(manifest, 1) or threshold_problem(manifest, True)

    def valid_rows(self, outputs: np.ndarray) -> np.ndarray:
        return probability_rows(outputs)

    def sample_problem(self, outputs: np.ndarray) -> str | None:
        return not_probabilities(outputs, sums_to_one=False)

    def decisions(self, outputs: np.ndarray, threshold: float) -> np.ndarray:
        return outputs >= threshold

    def respond(self, manifest: BundleManifest, outputs: np.ndarray) -> list[dict[str, Any]]:
        labels = manifest.labels
        threshold = self.threshold(manifest)
        return [
            {
                "labels": [label for label, p in zip(labels, row, strict=True) if p >= threshold],
                "probabilities": dict(zip(labels, row, strict=True)),
            }
            for row in outputs.tolist()
        ]

    def decided(self, manifest: BundleManifest, outputs: np.ndarray) -> list[Any]:
        labels = manifest.labels
        chosen = self.decisions(outputs, self.threshold(manifest)).tolist()
        return [frozenset(label for label, on in zip(labels, row, strict=True) if on)
                for row in chosen]  # fmt: skip

    def label_counts(self, manifest: BundleManifest, outputs: np.ndarray) -> dict[str, int]:
        counts = self.decisions(outputs, self.threshold(manifest)).sum(axis=0)
        return dict(zip(manifest.labels, counts.tolist(), strict=True))

    def v2_outputs(self, manifest: BundleManifest) -> list[OutputSpec]:
        width = len(manifest.labels)
        return [OutputSpec("probabilities", "FP32", (-1, width)),
                OutputSpec("labels", "BOOL", (-1, width))]  # fmt: skip

    def v2_tensors(self, manifest: BundleManifest, outputs: np.ndarray) -> list[OutputArray]:
        given = self.decisions(outputs, self.threshold(manifest))
        return [OutputArray("probabilities", "FP32", outputs.shape, outputs),
                OutputArray("labels", "BOOL", given.shape, given)]  # fmt: skip
