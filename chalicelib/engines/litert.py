"""LiteRT engine: runs the bundle's `.tflite` conversion (the default engine)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
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
    Inputs are matched by name through the conversion's signature: the converter
    orders a model's input tensors its own way (by name, not by the Keras order).
    Each input tensor is resized only when the batch size changes; inputs may be of any
    rank (rows first).
    """

    name = "litert"

    def __init__(self, model_content: bytes, num_threads: int = 1) -> None:
        self._interpreter = _interpreter_class()(
            model_content=model_content, num_threads=num_threads
        )
        self._interpreter.allocate_tensors()
        #: input name -> (tensor index, one row's shape: (features,), (steps, features), ...)
        details = _input_details(self._interpreter)
        self._inputs = {
            name: (int(detail["index"]), tuple(int(d) for d in detail["shape"][1:]))
            for name, detail in details.items()
        }
        self.input_names = list(self._inputs)
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self._rows = int(next(iter(details.values()))["shape"][0])
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str) -> LiteRTEngine:
        with open(path, "rb") as handle:
            return cls(handle.read())

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's output for `inputs` (one array per input name)."""
        tensors = self._tensors(inputs)
        rows = next(iter(inputs.values())).shape[0]
        with self._lock:
            if rows != self._rows:
                for index, row_shape in tensors:
                    self._interpreter.resize_tensor_input(index, [rows, *row_shape])
                self._interpreter.allocate_tensors()
                self._rows = rows
            for (index, _), array in tensors.items():
                self._interpreter.set_tensor(index, array)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output_index).copy()

    def _tensors(
        self, inputs: Mapping[str, np.ndarray]
    ) -> dict[tuple[int, tuple[int, ...]], np.ndarray]:
        """(tensor index, row shape) -> array; one input takes the only array by any name."""
        if len(self._inputs) == 1 and len(inputs) == 1:
            return {next(iter(self._inputs.values())): next(iter(inputs.values()))}
        missing = set(self._inputs) - set(inputs)
        if missing:
            raise ValueError(f"the model's inputs {sorted(missing)} were not given")
        return {self._inputs[name]: inputs[name] for name in self._inputs}


def _input_details(interpreter: Any) -> dict[str, dict[str, Any]]:
    """Input details by the model's input names: the serving signature's names when the
    file has one (Keras conversions do), else the tensor names."""
    signatures = interpreter.get_signature_list()
    if signatures:
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        details: dict[str, dict[str, Any]] = interpreter.get_signature_runner(
            key
        ).get_input_details()
        return details
    return {detail["name"]: detail for detail in interpreter.get_input_details()}
