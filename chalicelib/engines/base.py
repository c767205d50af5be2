"""The one interface every inference engine implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class InferenceEngine(Protocol):
    """Turns an encoded (rows, features) float32 matrix into (rows, labels) probabilities."""

    name: str

    def predict(self, inputs: np.ndarray) -> np.ndarray: ...
