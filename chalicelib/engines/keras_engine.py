"""Keras-on-TensorFlow engine, for models LiteRT cannot run (tensorflow flavor)."""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np


class KerasEngine:
    """Calls the Keras model directly (no `predict()` batching overhead)."""

    name = "keras"

    def __init__(self, model: Any) -> None:
        self._model = model
        self.width = int(model.inputs[0].shape[-1])
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str) -> KerasEngine:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras  # heavy: imported only when this engine is configured

        return cls(keras.saving.load_model(path, compile=False))

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities for each row of `inputs` (float32, shape (rows, width))."""
        with self._lock:
            return np.asarray(self._model(inputs, training=False), dtype=np.float32)
