"""`regression`: any number of named numeric outputs, answered as they come."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.tasks.answers import OutputArray, OutputSpec
from chalicelib.tasks.base import Task, threshold_problem
from chalicelib.tasks.checks import finite_rows

if TYPE_CHECKING:
    from chalicelib.manifest import BundleManifest


class Regression(Task):
    name = "regression"
    probabilistic = False

    def output_section(
        self, units: int, labels: Sequence[str] | None, outputs: Sequence[str] | None
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if labels:
            raise ValueError("a regression model has no labels: name its outputs with --outputs")
        names = list(outputs or [f"y{i}" for i in range(units)])
        if len(names) != units:
            raise ValueError(f"the model has {units} outputs but {len(names)} names were given")
        return (), tuple(names)

    def prediction_schema(self) -> tuple[str, dict[str, Any]]:
        return "RegressionPrediction", {
            "type": "object",
            "description": "regression: one finite value per output name.",
            "required": ["values"],
            "additionalProperties": False,
            "properties": {
                "values": {"type": "object", "additionalProperties": {"type": "number"}},
            },
        }

    def example_prediction(self, manifest: Mapping[str, Any]) -> str:
        outputs = list(manifest.get("outputs") or manifest.get("labels") or [])
        return '{"values": {' + ", ".join(f'"{name}": x' for name in outputs) + "}}"

    def output_names(self, manifest: BundleManifest) -> tuple[str, ...]:
        return manifest.outputs

    def manifest_problem(self, manifest: BundleManifest) -> str | None:
        outputs = manifest.outputs
        if not outputs or len(set(outputs)) != len(outputs):
            return "a regression model needs at least one unique output name"
        if manifest.labels:
            return "a regression model has output names, not labels"
        return threshold_problem(manifest, applies=False)

    def valid_rows(self, outputs: np.ndarray) -> np.ndarray:
        return finite_rows(outputs)

    def sample_problem(self, outputs: np.ndarray) -> str | None:
        bad = int((~finite_rows(outputs)).sum())
        return f"{bad} of {len(outputs)} rows have non-finite values" if bad else None

    def parity_tolerance(self, expected: np.ndarray, tolerance: float) -> np.ndarray:
        """Relative to each output's scale on the sample (its largest |value|, at least 1):
        float32 keeps ~7 significant digits of the terms summed, so a value near zero
        in an output of thousands carries the thousands' rounding."""
        scale = np.maximum(1.0, np.abs(expected).max(axis=0, initial=0.0))
        return np.broadcast_to(tolerance * scale, expected.shape)

    def respond(self, manifest: BundleManifest, outputs: np.ndarray) -> list[dict[str, Any]]:
        names = manifest.outputs
        return [{"values": dict(zip(names, row, strict=True))} for row in outputs.tolist()]

    def v2_outputs(self, manifest: BundleManifest) -> list[OutputSpec]:
        return [OutputSpec("values", "FP32", (-1, len(manifest.outputs)))]

    def v2_tensors(self, manifest: BundleManifest, outputs: np.ndarray) -> list[OutputArray]:
        return [OutputArray("values", "FP32", outputs.shape, outputs)]

    def public_json(self, manifest: BundleManifest) -> dict[str, Any]:
        return {"task": self.name, "outputs": list(manifest.outputs)}
