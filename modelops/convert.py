"""Keras -> LiteRT conversion and the parity check publishing relies on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ParityReport:
    """How LiteRT's probabilities compare with Keras's on a sample."""

    rows: int
    max_abs_diff: float
    argmax_mismatches: int
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.argmax_mismatches == 0


def convert_to_tflite(keras_model_path: Path) -> bytes:
    """Convert a `.keras` or legacy `.h5` classifier to a LiteRT flatbuffer (dynamic batch)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    model = keras.saving.load_model(keras_model_path, compile=False)
    return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def litert_predict(tflite: bytes, inputs: np.ndarray) -> np.ndarray:
    """Run LiteRT on `inputs` with the engine the service uses."""
    from chalicelib.engines.litert import LiteRTEngine

    return LiteRTEngine(tflite).predict(np.asarray(inputs, dtype=np.float32))


def check_parity(
    keras_model: Any, tflite: bytes, sample: np.ndarray, tolerance: float = 1e-5
) -> ParityReport:
    """Compare Keras and LiteRT probabilities (max abs difference, argmax mismatches)."""
    inputs = np.asarray(sample, dtype=np.float32)
    expected = np.asarray(keras_model(inputs, training=False), dtype=np.float32)
    actual = litert_predict(tflite, inputs)
    if actual.shape != expected.shape:
        return ParityReport(len(inputs), float("inf"), len(inputs), tolerance)
    return ParityReport(
        rows=len(inputs),
        max_abs_diff=float(np.abs(actual - expected).max()),
        argmax_mismatches=int((actual.argmax(axis=1) != expected.argmax(axis=1)).sum()),
        tolerance=tolerance,
    )
