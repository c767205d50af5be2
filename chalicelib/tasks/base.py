"""What a task is: how many outputs the manifest promises, which output rows are
valid, the response objects, and the questions every surface asks of outputs (a
summary for metrics, a comparison with another version, output tensors), and how
publishing compares and verifies outputs. No caller guesses a task from its answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from chalicelib.tasks.answers import (
    Comparison,
    OutputArray,
    OutputSpec,
    OutputSummary,
    mean_abs_diff,
)

if TYPE_CHECKING:
    from chalicelib.manifest import BundleManifest

DEFAULT_THRESHOLD = 0.5

#: The OpenAPI schema of a one-label prediction (classification and binary answer so).
LABEL_PREDICTION: dict[str, Any] = {
    "type": "object",
    "description": "classification (the most probable label) and binary (the second label "
    "when its probability is at least the threshold).",
    "required": ["label", "probabilities"],
    "additionalProperties": False,
    "properties": {
        "label": {"type": "string"},
        "probabilities": {
            "type": "object",
            "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
            "description": "One finite probability per label; they sum to 1.",
        },
    },
}


class Task:
    """One model kind. Subclasses are stateless; the registry holds one of each."""

    name: ClassVar[str]
    #: Outputs are probabilities: publishing refuses a model whose sample outputs are not.
    probabilistic: ClassVar[bool] = True
    #: Whether the manifest's `threshold` applies.
    thresholded: ClassVar[bool] = False
    #: What a publisher should do when the sample outputs are not this task's kind.
    remedy: ClassVar[str] = ""
    #: At publish: the final activation that, with `detects`' output width, makes the
    #: task unambiguous; None when no activation tells.
    activation: ClassVar[str | None] = None

    def detects(self, activation: str | None, units: int) -> bool:
        """At publish: does a final `activation` over `units` outputs mean this task."""
        return False

    def output_section(
        self, units: int, labels: Sequence[str] | None, outputs: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """At publish: the (labels, output names) of a model with `units` outputs, from
        the ones given or defaults; ValueError says what to pass instead."""
        if outputs:
            raise ValueError("--outputs names regression outputs; name classes with --labels")
        names = list(labels or [str(i) for i in range(units)])
        if len(names) != units:
            raise ValueError(f"the model has {units} outputs but {len(names)} labels were given")
        return tuple(names), ()

    def prediction_schema(self) -> tuple[str, dict[str, Any]]:
        """One prediction's OpenAPI component: (its name, its schema); the served
        OpenAPI document's `Prediction` is one of the registry's."""
        return "LabelPrediction", LABEL_PREDICTION

    def example_prediction(self, manifest: Mapping[str, Any]) -> str:
        """One prediction's shape, for people (local dev's banner), from a manifest's JSON."""
        labels = list(manifest.get("labels") or [])
        probabilities = example_probabilities(labels)
        return f'{{"label": one of {", ".join(labels)}, "probabilities": {probabilities}}}'

    def output_names(self, manifest: BundleManifest) -> tuple[str, ...]:
        """The names the response uses: labels, or regression's output names."""
        return manifest.labels

    def output_width(self, manifest: BundleManifest) -> int:
        """How many values per row the model must return."""
        return len(self.output_names(manifest))

    def threshold(self, manifest: BundleManifest) -> float:
        return DEFAULT_THRESHOLD if manifest.threshold is None else manifest.threshold

    def manifest_problem(self, manifest: BundleManifest) -> str | None:
        """Why the manifest's output section does not fit this task, or None."""
        raise NotImplementedError

    def valid_rows(self, outputs: np.ndarray) -> np.ndarray:
        """Per row: may a response be built from it (else 422 unscorable_records)."""
        raise NotImplementedError

    def sample_problem(self, outputs: np.ndarray) -> str | None:
        """At publish: why outputs on a sample are not this task's kind, or None."""
        raise NotImplementedError

    def decisions(self, outputs: np.ndarray, threshold: float) -> np.ndarray | None:
        """What the response decides per row (labels), compared across engines."""
        return None

    def disagreements(self, outputs: np.ndarray, other: np.ndarray, threshold: float) -> int:
        """Rows two engines' outputs of one model decide differently (publish parity)."""
        mine, theirs = self.decisions(outputs, threshold), self.decisions(other, threshold)
        if mine is None or theirs is None:
            return 0
        differs = mine != theirs
        return int((differs.any(axis=1) if differs.ndim > 1 else differs).sum())

    def parity_tolerance(self, expected: np.ndarray, tolerance: float) -> np.ndarray:
        """The allowed |engine - Keras| per value (absolute on probabilities)."""
        return np.full(expected.shape, tolerance)

    def respond(self, manifest: BundleManifest, outputs: np.ndarray) -> list[dict[str, Any]]:
        """One response object per (already checked) output row."""
        raise NotImplementedError

    # -- what surfaces, metrics and the challenger ask of checked outputs ----------

    def named_scores(
        self, manifest: BundleManifest, outputs: np.ndarray
    ) -> tuple[tuple[str, ...], np.ndarray]:
        """The numbers the response names, as (names, (n, len(names)) matrix):
        probabilities per label, or values per output name."""
        return self.output_names(manifest), outputs

    def decided(self, manifest: BundleManifest, outputs: np.ndarray) -> list[Any] | None:
        """Per row, the response's decision as a comparable value (a label, a set of
        labels); None when the task decides nothing (only a non-probabilistic task may)."""
        if self.probabilistic:
            raise NotImplementedError
        return None

    def label_counts(self, manifest: BundleManifest, outputs: np.ndarray) -> dict[str, int]:
        """How many rows each label was given (probabilistic tasks)."""
        raise NotImplementedError

    def summary(self, manifest: BundleManifest, outputs: np.ndarray) -> OutputSummary:
        """The outputs summed for metrics (label counts and top probabilities, or each
        numeric output's sum, min and max)."""
        rows = len(outputs)
        names, scores = self.named_scores(manifest, outputs)
        if not rows:
            return OutputSummary()
        if self.probabilistic:
            return OutputSummary(
                rows,
                self.label_counts(manifest, outputs),
                float(scores.max(axis=1).sum(dtype=np.float64)),
                rows,
            )
        values = scores.astype(np.float64)
        finite = np.isfinite(values).all(axis=0)
        return OutputSummary(rows, values={
            name: [float(values[:, i].sum()), float(values[:, i].min()), float(values[:, i].max())]
            for i, name in enumerate(names) if finite[i]
        })  # fmt: skip

    def compare(
        self,
        manifest: BundleManifest,
        outputs: np.ndarray,
        other: Task,
        other_manifest: BundleManifest,
        other_outputs: np.ndarray,
    ) -> Comparison:
        """How `other` (another version, maybe another task) answers the same rows."""
        mine = self.decided(manifest, outputs)
        theirs = other.decided(other_manifest, other_outputs)
        agreements = None
        if mine is not None:
            agreements = 0 if theirs is None else sum(map(_equal, mine, theirs))
        difference = mean_abs_diff(
            self.named_scores(manifest, outputs), other.named_scores(other_manifest, other_outputs)
        )
        if self.probabilistic:
            return Comparison(len(outputs), agreements, difference, None)
        return Comparison(len(outputs), agreements, None, difference)

    def v2_outputs(self, manifest: BundleManifest) -> list[OutputSpec]:
        """The output tensors of the Open Inference Protocol's answer."""
        raise NotImplementedError

    def v2_tensors(self, manifest: BundleManifest, outputs: np.ndarray) -> list[OutputArray]:
        """`v2_outputs`' tensors for checked outputs, in the same order."""
        raise NotImplementedError

    def v2_parameters(self, manifest: BundleManifest) -> dict[str, Any]:
        """What the task adds to the V2 model metadata's `parameters`."""
        return {}

    def public_json(self, manifest: BundleManifest) -> dict[str, Any]:
        """The task's part of GET /model."""
        body: dict[str, Any] = {"task": self.name, "labels": list(manifest.labels)}
        if self.thresholded:
            body["threshold"] = self.threshold(manifest)
        return body


def labels_problem(manifest: BundleManifest, minimum: int, exactly: bool = False) -> str | None:
    """Checks shared by the probabilistic tasks: label count and no stray sections."""
    labels = manifest.labels
    count = f"exactly {minimum}" if exactly else f"at least {minimum}"
    if (len(labels) != minimum if exactly else len(labels) < minimum) or _repeats(labels):
        return f"a {manifest.task} model needs {count} unique labels"
    if manifest.outputs:
        return f"a {manifest.task} model has labels, not output names"
    return None


def threshold_problem(manifest: BundleManifest, applies: bool) -> str | None:
    threshold = manifest.threshold
    if threshold is None:
        return None
    if not applies:
        return f"a {manifest.task} model takes no threshold"
    if not 0.0 < threshold < 1.0:
        return "threshold must be between 0 and 1 (exclusive)"
    return None


def example_probabilities(labels: Sequence[str]) -> str:
    """`{"A": p, "B": p}`: a probabilities object's shape, for people."""
    return "{" + ", ".join(f'"{label}": p' for label in labels) + "}"


def _equal(first: Any, second: Any) -> bool:
    return bool(first == second)


def _repeats(names: tuple[str, ...]) -> bool:
    return len(set(names)) != len(names)
