"""Keras -> LiteRT conversion, the parity check publishing relies on, and the decision
whether a bundle gets a LiteRT artifact at all."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
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


@dataclass(frozen=True)
class LiteRTOutcome:
    """The LiteRT artifact, or why the bundle goes without one (Keras-only)."""

    tflite: bytes | None
    problem: str | None
    max_abs_diff: float | None


def convert_to_tflite(keras_model_path: Path) -> bytes:
    """Convert a `.keras` or legacy `.h5` model to a LiteRT flatbuffer (dynamic batch),
    with the project's custom objects (chalicelib.custom_objects) and LiteRT builtins only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from chalicelib.engines.keras_engine import load_keras_model

    model = load_keras_model(str(keras_model_path))
    with _converter_output_silenced():
        return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


@contextlib.contextmanager
def _converter_output_silenced() -> Iterator[None]:
    """Keep the converter's C++ chatter off the console: it prints `error: ...` lines for a
    conversion that then falls back cleanly. A failure's exception carries the details."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def litert_predict(tflite: bytes, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run LiteRT on `inputs` (one array per input name) with the service's engine."""
    from chalicelib.engines.litert import LiteRTEngine

    return LiteRTEngine(tflite).predict(inputs)


def check_parity(
    keras_model: Any,
    tflite: bytes,
    sample: Mapping[str, np.ndarray],
    tolerance: float = 1e-5,
    task: Task | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> ParityReport:
    """Compare Keras and LiteRT outputs on `sample` (one array per input name), both fed
    through the service's engines, as `task` (default classification) reads them: every
    value within tolerance, and the same decisions."""
    from chalicelib.engines.keras_engine import KerasEngine

    task = task or TASKS[DEFAULT_TASK]
    rows = len(next(iter(sample.values())))
    expected = KerasEngine(keras_model).predict(sample)
    actual = litert_predict(tflite, sample)
    if actual.shape != expected.shape:
        return ParityReport(rows, float("inf"), rows, False, tolerance)
    difference = np.abs(actual - expected)
    mismatches = task.disagreements(expected, actual, threshold)
    return ParityReport(
        rows=rows,
        max_abs_diff=float(difference.max()),
        label_mismatches=mismatches,
        within_tolerance=bool((difference <= task.parity_tolerance(expected, tolerance)).all()),
        tolerance=tolerance,
    )


def try_litert(
    keras_model: Any,
    model_path: Path,
    sample: Mapping[str, np.ndarray],
    converter: Callable[[Path], bytes] | None = None,
    tolerance: float = 1e-5,
    task: Task | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> LiteRTOutcome:
    """Convert and compare; any failure (ops LiteRT lacks, a file it cannot run, a
    disagreement with Keras) is a reason to publish Keras-only, not an exception."""
    try:
        tflite = (converter or convert_to_tflite)(model_path)
    except Exception as exc:  # the converter raises many kinds; all mean "no LiteRT"
        return LiteRTOutcome(
            None, f"LiteRT cannot convert this model: {conversion_problem(exc)}", None
        )
    try:
        report = check_parity(keras_model, tflite, sample, tolerance, task, threshold)
    except Exception as exc:  # converted, but the interpreter cannot load or run it
        return LiteRTOutcome(None, f"LiteRT cannot run its conversion: {_first_line(exc)}", None)
    if not report.ok:
        return LiteRTOutcome(
            None,
            f"LiteRT's conversion disagrees with Keras (max difference {report.max_abs_diff:.3g}, "
            f"{report.label_mismatches} rows decided differently; tolerance {tolerance:g})",
            report.max_abs_diff,
        )
    return LiteRTOutcome(tflite, None, report.max_abs_diff)


def conversion_problem(exc: Exception) -> str:
    """A one-line reason for a failed conversion; the converter's text is pages of MLIR."""
    text = str(exc)
    if "ERROR_NEEDS_FLEX_OPS" in text or "Select TF ops" in text or "SELECT_TF_OPS" in text:
        return "it needs flex ops, TensorFlow ops outside LiteRT's builtins"
    if "ERROR_NEEDS_CUSTOM_OPS" in text or "custom op" in text.lower():
        return "it needs custom ops, which LiteRT does not have"
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    line = line if len(line) <= 160 else f"{line[:157]}..."
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
