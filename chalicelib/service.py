"""The core's entry point for surfaces: one call per request (or batch chunk), on one
bundle snapshot, counted by telemetry and shadow-scored by the challenger. No HTTP,
no SQS.

A surface decodes its input (`chalicelib.core.inputs`: records, tensors, columns, or
a function of the snapshot's manifest that returns one), calls `score` with its
`RequestObservation`, encodes the `Scored` it gets back (every name, version and
answer comes from that snapshot) and finishes the observation (`finish`): one request
line with the `Surface` dimension, whatever the surface.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.core.inputs import ModelInput, Records
from chalicelib.core.pipeline import Scored, score_all, score_each
from chalicelib.manifest import BundleManifest
from chalicelib.observability import RequestObservation, Telemetry, Timings
from chalicelib.observability.telemetry import ServedModel
from chalicelib.store import ModelBundle, ModelStore

if TYPE_CHECKING:  # imported only when a challenger is configured
    from chalicelib.challenger import Challenger

#: What a surface hands `score`: an input, or how to decode one given the snapshot's
#: manifest (V2 checks names, outputs and shapes against the very version it scores).
Decode = ModelInput | Callable[[BundleManifest], ModelInput]


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

    def snapshot(self) -> ModelBundle:
        """The bundle serving now (loading it if needed); a version swapped in later
        serves the next snapshot, never the rest of a request holding this one."""
        return self.store.get()

    def score(
        self,
        observation: RequestObservation,
        decode: Decode,
        *,
        each: bool = False,
        bundle: ModelBundle | None = None,
    ) -> Scored:
        """Score one request's input on one snapshot (`bundle`, else a new one).

        All or nothing by default: one malformed (InvalidRecords) or unscorable
        (UnscorableRecords) row refuses the input, and the challenger may shadow-score
        it afterwards. `each` scores the good rows and reports the others (a batch).
        `observation` gets the snapshot's model, the row count, the outputs' summary
        and the validate and predict phases (its row count is the surface's to set:
        it knows it before any refusal); `max_records` is the surfaces' limit.
        """
        bundle = bundle or self.snapshot()
        manifest = bundle.manifest
        observation.model = ServedModel(manifest.name, manifest.version, bundle.engine.name,
                                        manifest.labels)  # fmt: skip
        model_input = decode(manifest) if callable(decode) else decode
        if each:
            scored = score_each(bundle, model_input)
        else:
            scored = score_all(bundle, model_input, observation.timings)
        observation.add(scored.summary())
        if model_input.records is not None and not each:
            observation.inputs = model_input.records
            observation.predictions = lambda: scored.predictions
        if self.challenger is not None and not each:
            self.challenger.consider(model_input, scored)
        return scored

    def finish(self, observation: RequestObservation) -> None:
        """The request's one line (status and error code set by the surface)."""
        self.telemetry.finish_request(observation)

    def predict(self, records: Sequence[Any], timings: Timings | None = None) -> dict[str, Any]:
        """`score` for parsed records, as `POST /predict` answers them (embedding, tests)."""
        observation = RequestObservation("", timings=timings or Timings())
        scored = self.score(observation, Records(records))
        return {"model": scored.model, "predictions": scored.predictions}

    def manifest(self) -> BundleManifest:
        """The served model's manifest (loads the model if needed)."""
        return self.snapshot().manifest

    def health(self) -> dict[str, Any]:
        """Liveness, whether the model is in memory and which version serves; the
        refresh schedule and last outcome when it follows LATEST; the challenger's
        state (no output aggregates: those are behind auth, in `model_info`). Never
        loads a model."""
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
            body["challenger"] = self.challenger.state(aggregates=False)
        return body

    def model_info(self) -> dict[str, Any]:
        """The manifest's public part (loads the model if needed), and the challenger's
        state with its running comparison when one is set."""
        body = self.snapshot().manifest.public_json() | {"engine": self.store.engine_kind}
        if self.challenger is not None:
            body["challenger"] = self.challenger.state()
        return body


def _model_ref(bundle: ModelBundle) -> dict[str, str]:
    return {"name": bundle.manifest.name, "version": bundle.manifest.version}
