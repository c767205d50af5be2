"""The one interface every inference engine implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import numpy as np


class InferenceEngine(Protocol):
    """Turns the model's inputs into its (rows, outputs) output.

    `inputs` maps each input's name to an array of its dtype, rows first (2-D today;
    every engine also takes sequences and images, any rank), in the manifest's
    input order (`chalicelib.model_inputs` builds it). An engine whose model has one
    input takes the only array whatever its name (manifests before several inputs
    name none).
    """

    name: str

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray: ...
