"""The core's entry point: load -> preprocess -> predict -> postprocess, no HTTP.

Surfaces (chalicelib.surfaces: the REST contract, and next the batch worker and the
Open Inference Protocol) decode their input into records, call one method here and
encode the plain result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chalicelib.errors import FieldProblem
from chalicelib.scores import NO_VALID_SCORE, SUSPECT, check_probabilities, valid_probability_rows
from chalicelib.store import ModelBundle, ModelStore


@dataclass(frozen=True)
class BatchScores:
    """`PredictionService.predict_each`'s answer: (index, prediction) in input order,
    and the problems of each record that was not scored."""

    model: dict[str, str]
    predictions: list[tuple[int, dict[str, Any]]]
    problems: dict[int, list[FieldProblem]]


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
        probabilities = bundle.engine.predict(inputs)
        check_probabilities(
            probabilities, lambda row: bundle.reader.suspect_fields(records[row], inputs[row])
        )
        return {"model": _model_ref(bundle), "predictions": _postprocess(bundle, probabilities)}

    def predict_each(self, records: Sequence[Any]) -> BatchScores:
        """Predictions for the records that can be scored and problems for the others,
        each by its index in `records` (batch scoring: a bad record does not refuse
        the rest). The same checks and outputs as `predict`."""
        bundle = self.store.get()
        valid, inputs, problems = bundle.reader.partition(records)
        probabilities = bundle.engine.predict(inputs) if valid else inputs[:, :0]
        scored = valid_probability_rows(probabilities) if valid else np.ones(0, dtype=bool)
        if not scored.all():
            for row in np.flatnonzero(~scored).tolist():
                index = valid[row]
                suspects = bundle.reader.suspect_fields(records[index], inputs[row])
                problems[index] = [FieldProblem(index, None, NO_VALID_SCORE)] + [
                    FieldProblem(index, name, SUSPECT) for name in suspects
                ]
            valid = [index for index, ok in zip(valid, scored.tolist(), strict=True) if ok]
            probabilities = probabilities[scored]
        predictions = _postprocess(bundle, probabilities) if valid else []
        return BatchScores(_model_ref(bundle), list(zip(valid, predictions, strict=True)), problems)

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


def _postprocess(bundle: ModelBundle, probabilities: np.ndarray) -> list[dict[str, Any]]:
    labels = bundle.manifest.labels
    winners = probabilities.argmax(axis=1).tolist()
    return [
        {"label": labels[winner], "probabilities": dict(zip(labels, row, strict=True))}
        for winner, row in zip(winners, probabilities.tolist(), strict=True)
    ]
