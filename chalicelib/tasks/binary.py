"""`binary`: one sigmoid unit p = P(second label); the answer has the shape of
classification's, with both labels' probabilities (1 - p, p)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.tasks.answers import OutputArray, OutputSpec
from chalicelib.tasks.base import Task, labels_problem, threshold_problem
from chalicelib.tasks.checks import not_probabilities, probability_rows

if TYPE_CHECKING:
    from chalicelib.manifest import BundleManifest


class Binary(Task):
    name = "binary"
    thresholded = True
    remedy = "end the model with a sigmoid unit, or publish a numeric output with --task regression"
    activation = "sigmoid"

    def detects(self, activation: str | None, units: int) -> bool:
        return activation == self.activation and units == 1

    def output_section(
        self, units: int, labels: Sequence[str] | None, outputs: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if outputs:
            return super().output_section(units, labels, outputs)
        if units != 1:
            raise ValueError(
                f"a binary model has one sigmoid output, this one has {units}: "
                "use --task multilabel (sigmoids) or --task classification (softmax)"
            )
        names = tuple(labels or ("0", "1"))
        if len(names) != 2:
            raise ValueError(
                "the model has 2 classes (negative first: --labels neg,pos) "
                f"but {len(names)} labels were given"
            )
        return names, ()

    def output_width(self, manifest: BundleManifest) -> int:
        return 1

    def manifest_problem(self, manifest: BundleManifest) -> str | None:
        return labels_problem(manifest, 2, exactly=True) or threshold_problem(manifest, True)

    def valid_rows(self, outputs: np.ndarray) -> np.ndarray:
        return probability_rows(outputs)

    def sample_problem(self, outputs: np.ndarray) -> str | None:
        return not_probabilities(outputs, sums_to_one=False)

    def decisions(self, outputs: np.ndarray, threshold: float) -> np.ndarray:
        return outputs[:, 0] >= threshold

    def respond(self, manifest: BundleManifest, outputs: np.ndarray) -> list[dict[str, Any]]:
        negative, positive = manifest.labels
        threshold = self.threshold(manifest)
        return [
            {
                "label": positive if p >= threshold else negative,
                "probabilities": {negative: 1.0 - p, positive: p},
            }
            for p in outputs[:, 0].tolist()
        ]

    def named_scores(
        self, manifest: BundleManifest, outputs: np.ndarray
    ) -> tuple[tuple[str, ...], np.ndarray]:
        positive = outputs[:, :1].astype(np.float64)
        return manifest.labels, np.hstack([1.0 - positive, positive])

    def decided(self, manifest: BundleManifest, outputs: np.ndarray) -> list[Any]:
        negative, positive = manifest.labels
        chosen = self.decisions(outputs, self.threshold(manifest)).tolist()
        return [positive if p else negative for p in chosen]

    def label_counts(self, manifest: BundleManifest, outputs: np.ndarray) -> dict[str, int]:
        negative, positive = manifest.labels
        positives = int(self.decisions(outputs, self.threshold(manifest)).sum())
        return {negative: len(outputs) - positives, positive: positives}

    def v2_outputs(self, manifest: BundleManifest) -> list[OutputSpec]:
        return [OutputSpec("probabilities", "FP32", (-1, 2)), OutputSpec("label", "BYTES", (-1,))]

    def v2_tensors(self, manifest: BundleManifest, outputs: np.ndarray) -> list[OutputArray]:
        positive = outputs[:, :1].astype(np.float32)
        both = np.hstack([1 - positive, positive])
        return [
            OutputArray("probabilities", "FP32", both.shape, both),
            OutputArray("label", "BYTES", (len(outputs),), self.decided(manifest, outputs)),
        ]
