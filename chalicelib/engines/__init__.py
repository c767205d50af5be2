"""Inference engines behind one interface; heavy frameworks load only when chosen."""

from __future__ import annotations

from chalicelib.engines.base import InferenceEngine
from chalicelib.manifest import KERAS_ARTIFACT, TFLITE_ARTIFACT

#: Which bundle artifact each engine runs.
ARTIFACT_FOR_ENGINE = {"litert": TFLITE_ARTIFACT, "keras": KERAS_ARTIFACT}


def load_engine(kind: str, path: str) -> InferenceEngine:
    """Load the engine `kind` ("litert" or "keras") from the artifact at `path`."""
    if kind == "litert":
        from chalicelib.engines.litert import LiteRTEngine

        return LiteRTEngine.from_file(path)
    if kind == "keras":
        from chalicelib.engines.keras_engine import KerasEngine

        return KerasEngine.from_file(path)
    raise ValueError(f"unknown engine {kind!r}")


__all__ = ["ARTIFACT_FOR_ENGINE", "InferenceEngine", "load_engine"]
