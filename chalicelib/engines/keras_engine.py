"""Keras-on-TensorFlow engine, for models LiteRT cannot run (tensorflow flavor).

Custom layers and objects come from `chalicelib.custom_objects`, imported here (and by
`modelops.publish`) only, since it imports Keras.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np


def load_keras_model(path: str) -> Any:
    """Load a `.keras`/`.h5` file with the project's custom objects registered."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras  # heavy: imported only when this engine is configured

    from chalicelib.custom_objects import CUSTOM_OBJECTS  # registers custom layers too

    return keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)


class KerasEngine:
    """Calls the Keras model directly (no `predict()` batching overhead)."""

    name = "keras"

    def __init__(self, model: Any) -> None:
        self._model = model
        self.input_names = [tensor.name for tensor in model.inputs]
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str) -> KerasEngine:
        return cls(load_keras_model(path))

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model's output for `inputs` (one array per input name)."""
        with self._lock:
            outputs = self._model(self._ordered(inputs), training=False)
        if isinstance(outputs, dict):
            outputs = [outputs[name] for name in self._model.output_names]
        if isinstance(outputs, (list, tuple)):  # several outputs: concatenated, in order
            arrays = [np.asarray(output, dtype=np.float32) for output in outputs]
            return np.concatenate([a.reshape(len(a), -1) for a in arrays], axis=1)
        return np.asarray(outputs, dtype=np.float32)

    def _ordered(self, inputs: Mapping[str, np.ndarray]) -> Any:
        """The arrays as the model is called: one array, or a list in `model.inputs` order."""
        if len(self.input_names) == 1 and len(inputs) == 1:
            return next(iter(inputs.values()))
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise ValueError(f"the model's inputs {sorted(missing)} were not given")
        return [inputs[name] for name in self.input_names]
