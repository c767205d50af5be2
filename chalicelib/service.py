"""The core's entry point: load -> preprocess -> predict -> postprocess, no HTTP.

Surfaces (chalicelib.surfaces: the REST contract, and next the batch worker and the
Open Inference Protocol) decode their input into records, call one method here and
encode the plain result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.manifest import BundleManifest
from chalicelib.store import ModelBundle, ModelStore
from chalicelib.tasks import task_named
from chalicelib.tasks.checks import check_rows


@dataclass(frozen=True)
class Scores:
    """Checked model outputs for tensor surfaces: the (n, width) output matrix and the
    task's decisions (classification: winning label index; binary: positive or not;
    multilabel: (n, k) label given; regression: None)."""

    manifest: BundleManifest
    outputs: np.ndarray
    decisions: np.ndarray | None


class PredictionService:
    """Answers predictions, health and model metadata from one ModelStore."""

    def __init__(self, store: ModelStore, max_records: int) -> None:
        self.store = store
        self.max_records = max_records

    def predict(self, records: Sequence[Any]) -> dict[str, Any]:
        """Predictions for parsed records, in order; raises ServiceError subclasses.

        All or nothing: one malformed (InvalidRecords) or unscorable (UnscorableRecords)
        record refuses the request. `max_records` is the surfaces' per-request limit;
        the core scores any count.
        """
        bundle = self.store.get()
        inputs = bundle.reader.to_matrix(records)
        outputs = bundle.engine.predict(bundle.inputs.split(inputs))
        task = task_named(bundle.manifest.task)
        check_rows(
            task.valid_rows(outputs),
            lambda row: bundle.reader.suspect_fields(records[row], inputs[row]),
        )
        return {"model": _model_ref(bundle), "predictions": task.respond(bundle.manifest, outputs)}

    def score_tensors(self, tensors: Mapping[str, np.ndarray]) -> Scores:
        """Scores for the model's own input arrays (by input name, each (n, width))."""
        bundle = self.store.get()
        return self._score(bundle, bundle.reader.tensors_to_matrix(tensors), raw=False)

    def score_columns(self, columns: Mapping[str, Sequence[Any] | np.ndarray]) -> Scores:
        """Scores for raw fields given as equal-length columns (row i is record i)."""
        bundle = self.store.get()
        return self._score(bundle, bundle.reader.columns_to_matrix(columns), raw=True)

    def manifest(self) -> BundleManifest:
        """The served model's manifest (loads the model if needed)."""
        return self.store.get().manifest

    def _score(self, bundle: ModelBundle, inputs: np.ndarray, raw: bool) -> Scores:
        outputs = bundle.engine.predict(bundle.inputs.split(inputs))
        manifest = bundle.manifest
        task = task_named(manifest.task)
        suspects: Callable[[int], list[str]] = lambda row: bundle.reader.suspects(raw, inputs[row])  # noqa: E731
        check_rows(task.valid_rows(outputs), suspects)
        return Scores(manifest, outputs, task.decisions(outputs, task.threshold(manifest)))

    def health(self) -> dict[str, Any]:
        """Liveness plus whether the model is in memory; never loads it."""
        bundle = self.store.loaded
        body: dict[str, Any] = {"status": "ok", "model_loaded": bundle is not None}
        if bundle is not None:
            body["model"] = _model_ref(bundle)
        elif self.store.last_error:
            body["last_load_error"] = self.store.last_error
        return body

    def model_info(self) -> dict[str, Any]:
        """The manifest's public part (loads the model if needed)."""
        return self.store.get().manifest.public_json() | {"engine": self.store.engine_kind}


def _model_ref(bundle: ModelBundle) -> dict[str, str]:
    return {"name": bundle.manifest.name, "version": bundle.manifest.version}
