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
            name: (int(detail["index"]), tuple(int(dim) for dim in detail["shape"][1:]))
            for name, detail in details.items()
        }
        self.input_names = list(self._inputs)
        #: The model's outputs in its order (several are concatenated, as Keras's are).
        self._output_indexes = _output_indexes(self._interpreter)
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
                for index, shape in tensors:
                    self._interpreter.resize_tensor_input(index, [rows, *shape])
                self._interpreter.allocate_tensors()
                self._rows = rows
            for (index, _), array in tensors.items():
                self._interpreter.set_tensor(index, array)
            self._interpreter.invoke()
            outputs = [self._interpreter.get_tensor(index) for index in self._output_indexes]
        if len(outputs) == 1:
            return outputs[0].copy()
        return np.concatenate([output.reshape(len(output), -1) for output in outputs], axis=1)

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


def _output_indexes(interpreter: Any) -> list[int]:
    """Output tensor indexes in the model's output order: the serving signature's
    `output_0`, `output_1`, ... (the interpreter's own list is in another order)."""
    signatures = interpreter.get_signature_list()
    if not signatures:
        return [int(interpreter.get_output_details()[0]["index"])]
    key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
    details = interpreter.get_signature_runner(key).get_output_details()
    names = sorted(details, key=lambda n: (len(n), n))  # output_2 before output_10
    return [int(details[name]["index"]) for name in names]


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
