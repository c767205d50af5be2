"""Metric names, units and dimension sets as data (units per the EMF specification)."""

from __future__ import annotations

from chalicelib.observability.emf import Directive

SERVICE, STAGE = "Service", "Stage"
MODEL, VERSION, ENGINE = "Model", "Version", "Engine"
ERROR_CODE, ERROR_KIND = "ErrorCode", "ErrorKind"
#: Which way in a request came: predict | v2_infer | batch_api | batch_chunk.
SURFACE = "Surface"

SERVICE_DIMENSIONS = (SERVICE, STAGE)
SURFACE_DIMENSIONS = (SERVICE, STAGE, SURFACE)
MODEL_DIMENSIONS = (SERVICE, STAGE, MODEL, VERSION, ENGINE)

MS, SECONDS, COUNT, NONE = "Milliseconds", "Seconds", "Count", "None"

#: Per request of every surface (and batch chunk). Phases appear only when they ran.
REQUEST_METRICS = {
    "Requests": COUNT,
    "Records": COUNT,
    "Status4xx": COUNT,
    "Status5xx": COUNT,
    "Latency": MS,
    "ParseLatency": MS,
    "ValidateLatency": MS,
    "PredictLatency": MS,
    "SerialiseLatency": MS,
}
PHASE_METRICS = {
    "parse": "ParseLatency",
    "validate": "ValidateLatency",
    "predict": "PredictLatency",
    "serialise": "SerialiseLatency",
}
#: A refused or failed request, by its error code (a fixed set: chalicelib/errors.py).
ERROR_DIRECTIVE = Directive({"Errors": COUNT}, [(SERVICE, STAGE, ERROR_CODE)])

#: Per model load.
LOAD_DIRECTIVE = Directive({"ModelLoadSeconds": SECONDS, "ColdStart": COUNT}, [MODEL_DIMENSIONS])
LOAD_FAILURE_DIRECTIVE = Directive({"ModelLoadFailures": COUNT}, [(SERVICE, STAGE, ERROR_KIND)])

#: Per prediction batch: one count per manifest label, plus the mean top probability.
LABEL_METRIC_PREFIX = "Predicted."
CONFIDENCE = "MeanTopProbability"
#: Per prediction batch of numeric outputs (regression).
VALUE_SUMMARY = {"PredictedMean": NONE, "PredictedMin": NONE, "PredictedMax": NONE}
