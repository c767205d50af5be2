"""Keras -> LiteRT conversion and the parity check publishing relies on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.tasks import DEFAULT_TASK, DEFAULT_THRESHOLD, TASKS, Task


@dataclass(frozen=True)
class ParityReport:
    """How LiteRT's outputs compare with Keras's on a sample."""

    rows: int
    max_abs_diff: float
    #: Rows whose decision differs: argmax for classification, thresholded labels for
    #: binary/multilabel (regression decides nothing).
    label_mismatches: int
    #: Every value within the task's tolerance (absolute; relative on large regression values).
    within_tolerance: bool
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.within_tolerance and self.label_mismatches == 0


def convert_to_tflite(keras_model_path: Path) -> bytes:
    """Convert a `.keras` or legacy `.h5` model to a LiteRT flatbuffer (dynamic batch)."""
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
    keras_model: Any,
    tflite: bytes,
    sample: np.ndarray,
    tolerance: float = 1e-5,
    task: Task | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> ParityReport:
    """Compare Keras and LiteRT outputs on `sample` as `task` (default classification)
    reads them: every value within tolerance, and the same decisions."""
    task = task or TASKS[DEFAULT_TASK]
    inputs = np.asarray(sample, dtype=np.float32)
    expected = np.asarray(keras_model(inputs, training=False), dtype=np.float32)
    actual = litert_predict(tflite, inputs)
    if actual.shape != expected.shape:
        return ParityReport(len(inputs), float("inf"), len(inputs), False, tolerance)
    difference = np.abs(actual - expected)
    decided, expected_decisions = (task.decisions(o, threshold) for o in (actual, expected))
    mismatches = 0
    if decided is not None and expected_decisions is not None:
        differs = decided != expected_decisions
        mismatches = int((differs.any(axis=1) if differs.ndim > 1 else differs).sum())
    return ParityReport(
        rows=len(inputs),
        max_abs_diff=float(difference.max()),
        label_mismatches=mismatches,
        within_tolerance=bool((difference <= task.parity_tolerance(expected, tolerance)).all()),
        tolerance=tolerance,
    )
