"""Keras -> LiteRT conversion, and what publishing does with any engine's conversion:
the parity check against Keras and the verdict whether the bundle gets that artifact."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chalicelib.engines.registry import ENGINES
from chalicelib.tasks import DEFAULT_TASK, DEFAULT_THRESHOLD, TASKS, Task

if TYPE_CHECKING:
    from chalicelib.engines.base import InferenceEngine


@dataclass(frozen=True)
class ParityReport:
    """How an engine's outputs compare with Keras's on a sample."""

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
class EngineOutcome:
    """One engine's artifact for the model, or why the bundle goes without it."""

    kind: str
    artifact: bytes | None
    problem: str | None
    max_abs_diff: float | None


def convert_to_tflite(keras_model_path: Path) -> bytes:
    """Convert a `.keras` or legacy `.h5` model to a LiteRT flatbuffer (dynamic batch),
    with the project's custom objects (chalicelib.custom_objects) and LiteRT builtins only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from chalicelib.engines.keras_engine import load_keras_model

    model = load_keras_model(str(keras_model_path))
    with converter_output_silenced():
        return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


@contextlib.contextmanager
def converter_output_silenced() -> Iterator[None]:
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


def check_parity(
    keras_model: Any,
    engine: InferenceEngine,
    sample: Mapping[str, np.ndarray],
    tolerance: float = 1e-5,
    task: Task | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> ParityReport:
    """Compare Keras's outputs with `engine`'s on `sample` (one array per input name), both
    fed through the service's engines, as `task` (default classification) reads them: every
    value within tolerance, and the same decisions."""
    from chalicelib.engines.keras_engine import KerasEngine

    task = task or TASKS[DEFAULT_TASK]
    rows = len(next(iter(sample.values())))
    expected = KerasEngine(keras_model).predict(sample)
    actual = engine.predict(sample)
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


def load_artifact(kind: str, content: bytes) -> InferenceEngine:
    """The service's engine `kind` over an artifact's bytes (through a scratch file,
    removed at once, as the store loads it)."""
    from chalicelib.engines.base import GuardedEngine

    spec = ENGINES[kind]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / spec.file_name()
        path.write_bytes(content)
        # LiteRT prints "INFO: Created ... XNNPACK delegate" from C++; a publish that then
        # fails must still end in its one `error:` line.
        with converter_output_silenced():
            engine = spec.load(str(path))
    # Unguarded: publishing reports what the engine itself says when it fails.
    return engine.engine if isinstance(engine, GuardedEngine) else engine


def try_engine(
    kind: str,
    keras_model: Any,
    model_path: Path,
    sample: Mapping[str, np.ndarray],
    converter: Callable[[Path], bytes] | None = None,
    tolerance: float = 1e-5,
    task: Task | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> EngineOutcome:
    """Convert for engine `kind` (its registry converter unless `converter`) and compare;
    any failure (ops it lacks, a file it cannot run, a disagreement with Keras) is a reason
    to try the next engine, not an exception."""
    label = ENGINES[kind].label
    try:
        artifact = (converter or ENGINES[kind].convert)(model_path)
    except Exception as exc:  # converters raise many kinds; all mean "not this engine"
        return EngineOutcome(
            kind, None, f"{label} cannot convert this model: {conversion_problem(exc)}", None
        )
    try:
        report = check_parity(
            keras_model, load_artifact(kind, artifact), sample, tolerance, task, threshold
        )
    except Exception as exc:  # converted, but the engine cannot load or run it
        return EngineOutcome(kind, None, f"{label} cannot run its conversion: {_first_line(exc)}",
                             None)  # fmt: skip
    if not report.ok:
        return EngineOutcome(
            kind,
            None,
            f"{label}'s conversion disagrees with Keras (max difference "
            f"{report.max_abs_diff:.3g}, {report.label_mismatches} rows decided differently; "
            f"tolerance {tolerance:g})",
            report.max_abs_diff,
        )
    return EngineOutcome(kind, artifact, None, report.max_abs_diff)


def conversion_problem(exc: Exception) -> str:
    """A one-line reason for a failed conversion naming the ops that blocked it; the
    converter's text is pages of MLIR."""
    text = str(exc)
    if isinstance(exc, ValueError) and getattr(exc, "ops", None):
        return str(exc)  # already one line naming the ops (modelops.onnx_convert)
    named = re.findall(r"(?:Flex|Custom) ops: ([\w, .]+)", text)
    named += re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)
    if named:
        return f"ops LiteRT's builtins lack: {', '.join(dict.fromkeys(named))}"
    if "tensor list ops" in text.lower():
        return "it needs TensorList ops (a recurrent layer without unroll=True)"
    if "ERROR_NEEDS_FLEX_OPS" in text or "Select TF ops" in text or "SELECT_TF_OPS" in text:
        return "it needs flex ops, TensorFlow ops outside LiteRT's builtins"
    if "ERROR_NEEDS_CUSTOM_OPS" in text or "custom op" in text.lower():
        return "it needs custom ops, which LiteRT does not have"
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    line = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    line = line if len(line) <= 160 else f"{line[:157]}..."
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__
