"""LiteRT engine: runs the bundle's `.tflite` conversion (the default engine)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # only full TensorFlow installed (the tensorflow flavor)
        import tensorflow as tf

        return tf.lite.Interpreter
    return Interpreter


class LiteRTEngine:
    """A LiteRT interpreter behind a lock: interpreters are not thread-safe.

    Lambda never calls concurrently, `chalice local` does; the lock costs ~100 ns.
    The input tensor is resized only when the batch size changes.
    """

    name = "litert"

    def __init__(self, model_content: bytes, num_threads: int = 1) -> None:
        self._interpreter = _interpreter_class()(
            model_content=model_content, num_threads=num_threads
        )
        self._interpreter.allocate_tensors()
        (input_detail,) = self._interpreter.get_input_details()
        self._input_index = input_detail["index"]
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self._rows = int(input_detail["shape"][0])
        self.width = int(input_detail["shape"][1])
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str) -> LiteRTEngine:
        with open(path, "rb") as handle:
            return cls(handle.read())

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities for each row of `inputs` (float32, shape (rows, width))."""
        rows = inputs.shape[0]
        with self._lock:
            if rows != self._rows:
                self._interpreter.resize_tensor_input(self._input_index, [rows, self.width])
                self._interpreter.allocate_tensors()
                self._rows = rows
            self._interpreter.set_tensor(self._input_index, inputs)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output_index).copy()
