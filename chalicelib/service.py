"""The core's entry point: load -> preprocess -> predict -> postprocess, no HTTP.

Surfaces (chalicelib.surfaces: the REST contract, and next the batch worker and the
Open Inference Protocol) decode their input into records, call one method here and
encode the plain result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.errors import FieldProblem
from chalicelib.manifest import BundleManifest
from chalicelib.observability import Telemetry, Timings
from chalicelib.store import ModelBundle, ModelStore
from chalicelib.tasks import task_named
from chalicelib.tasks.checks import NO_VALID_SCORE, SUSPECT, check_rows


@dataclass(frozen=True)
class BatchScores:
    """`PredictionService.predict_each`'s answer: (index, prediction) in input order,
    and the problems of each record that was not scored."""

    model: dict[str, str]
    predictions: list[tuple[int, dict[str, Any]]]
    problems: dict[int, list[FieldProblem]]


if TYPE_CHECKING:  # imported only when a challenger is configured
    from chalicelib.challenger import Challenger


@dataclass(frozen=True)
class Scores:
    """Checked model outputs for tensor surfaces: the (n, width) output matrix and the
    task's decisions (classification: winning label index; binary: positive or not;
    multilabel: (n, k) label given; regression: None)."""

    manifest: BundleManifest
    outputs: np.ndarray
    decisions: np.ndarray | None


class PredictionService:
    """Answers predictions, health and model metadata from one ModelStore; a
    `challenger`, if given, shadow-scores a sample of requests after the answer."""

    def __init__(
        self,
        store: ModelStore,
        max_records: int,
        telemetry: Telemetry | None = None,
        challenger: Challenger | None = None,
    ) -> None:
        self.store = store
        self.max_records = max_records
        self.telemetry = telemetry or Telemetry.discarding()
        self.challenger = challenger

    def predict(self, records: Sequence[Any], timings: Timings | None = None) -> dict[str, Any]:
        """Predictions for parsed records, in order; raises ServiceError subclasses.

        All or nothing: one malformed (InvalidRecords) or unscorable (UnscorableRecords)
        record refuses the request. `max_records` is the surfaces' per-request limit;
        the core scores any count. `timings` records the validate and predict phases.
        The bundle is fetched once: a version swapped in meanwhile serves the next
        request, not the rest of this one.
        """
        timings = timings or Timings()
        bundle = self.store.get()
        with timings.phase("validate"):
            inputs = bundle.reader.to_matrix(records)
        with timings.phase("predict"):
            outputs = bundle.engine.predict(bundle.inputs.split(inputs))
            task = task_named(bundle.manifest.task)
            check_rows(
                task.valid_rows(outputs),
                lambda row: bundle.reader.suspect_fields(records[row], inputs[row]),
            )
        predictions = task.respond(bundle.manifest, outputs)
        if self.challenger is not None:
            self.challenger.consider(records, bundle, predictions)
        return {"model": _model_ref(bundle), "predictions": predictions}

    def predict_each(self, records: Sequence[Any]) -> BatchScores:
        """Predictions for the records that can be scored and problems for the others,
        each by its index in `records` (batch scoring: a bad record does not refuse
        the rest). The same checks and outputs as `predict`."""
        bundle = self.store.get()
        valid, inputs, problems = bundle.reader.partition(records)
        if not valid:
            return BatchScores(_model_ref(bundle), [], problems)
        outputs = bundle.engine.predict(bundle.inputs.split(inputs))
        task = task_named(bundle.manifest.task)
        scored = task.valid_rows(outputs)
        if not scored.all():
            for row in np.flatnonzero(~scored).tolist():
                index = valid[row]
                suspects = bundle.reader.suspect_fields(records[index], inputs[row])
                problems[index] = [FieldProblem(index, None, NO_VALID_SCORE)] + [
                    FieldProblem(index, name, SUSPECT) for name in suspects
                ]
            valid = [index for index, ok in zip(valid, scored.tolist(), strict=True) if ok]
            outputs = outputs[scored]
        predictions = task.respond(bundle.manifest, outputs) if valid else []
        return BatchScores(_model_ref(bundle), list(zip(valid, predictions, strict=True)), problems)

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
        """Liveness, whether the model is in memory and which version serves; the
        refresh schedule and last outcome when it follows LATEST; the challenger's
        state when one is set. Never loads a model."""
        bundle = self.store.loaded
        body: dict[str, Any] = {"status": "ok", "model_loaded": bundle is not None}
        if bundle is not None:
            body["model"] = _model_ref(bundle)
        elif self.store.last_error:
            body["last_load_error"] = self.store.last_error
        if self.store.refresh is not None:
            last, change = self.store.last_refresh, self.store.last_change
            body["refresh"] = {
                "interval_seconds": self.store.refresh.seconds,
                "last": None if last is None else last.to_json(),
                "last_change": None if change is None else change.to_json(),
            }
        if self.challenger is not None:
            body["challenger"] = self.challenger.state()
        return body

    def model_info(self) -> dict[str, Any]:
        """The manifest's public part (loads the model if needed)."""
        return self.store.get().manifest.public_json() | {"engine": self.store.engine_kind}


def _model_ref(bundle: ModelBundle) -> dict[str, str]:
    return {"name": bundle.manifest.name, "version": bundle.manifest.version}
