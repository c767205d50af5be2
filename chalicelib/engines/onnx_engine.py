"""ONNX Runtime engine: runs the bundle's `.onnx` conversion (models LiteRT cannot convert).

ONNX Runtime records a device id and usage events under ~/.cache/Microsoft unless
ORT_DISABLE_TELEMETRY=1 is set before it is imported; this module sets it (unless the
environment already says otherwise) and is the only place onnxruntime is imported from.
One intra-op thread, sequential: the default thread pool spin-waits, costing ~6x the CPU
per single-row call for the same latency, and Lambda bills CPU time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

TELEMETRY_VARIABLE = "ORT_DISABLE_TELEMETRY"


def _runtime() -> Any:
    os.environ.setdefault(TELEMETRY_VARIABLE, "1")
    import onnxruntime

    return onnxruntime


class OnnxEngine:
    """An ONNX Runtime session; `run` is thread-safe, so no lock is needed.

    Inputs are matched by the model's input names (the Keras input names); a model with
    one input takes the only array whatever its name. Arrays are cast to the dtype the
    graph declares (an integer input may be int32 or int64 after conversion).
    """

    name = "onnx"

    def __init__(self, model_content: bytes) -> None:
        ort = _runtime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: no warnings on stderr per load
        self._session = ort.InferenceSession(
            model_content, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._dtypes = {
            node.name: _NUMPY_TYPES.get(node.type, np.float32)
            for node in self._session.get_inputs()
        }
        self.input_names = list(self._dtypes)
        #: The graph's outputs in its order (the Keras model's); several are concatenated.
        self._outputs = [node.name for node in self._session.get_outputs()]

    @classmethod
    def from_file(cls, path: str) -> OnnxEngine:
        with open(path, "rb") as handle:
            return cls(handle.read())

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's output for `inputs` (one array per input name)."""
        outputs = self._session.run(self._outputs, self._feed(inputs))
        if len(outputs) == 1:
            return np.asarray(outputs[0], dtype=np.float32)
        arrays = [np.asarray(output, dtype=np.float32) for output in outputs]
        return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)

    def _feed(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if len(self._dtypes) == 1 and len(inputs) == 1:
            ((name, dtype),) = self._dtypes.items()
            return {name: np.asarray(next(iter(inputs.values())), dtype=dtype)}
        missing = set(self._dtypes) - set(inputs)
        if missing:
            raise ValueError(f"the model's inputs {sorted(missing)} were not given")
        return {name: np.asarray(inputs[name], dtype=dtype) for name, dtype in self._dtypes.items()}


_NUMPY_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
