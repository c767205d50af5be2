"""The one interface every inference engine implements, and the guard every engine
the registry loads is wrapped in."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from chalicelib.errors import EngineRefused

logger = logging.getLogger(__name__)


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


class GuardedEngine:
    """An engine whose failure on a request's inputs is `EngineRefused` (422), never a
    500: inputs reach an engine only after every check, so what still makes it raise
    (an index the manifest records no range for, a shape a custom layer refuses) is
    the request's. Only the exception's type is logged: engine messages quote values."""

    def __init__(self, engine: InferenceEngine) -> None:
        self.engine = engine
        self.name = engine.name

    def predict(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        try:
            return self.engine.predict(inputs)
        except MemoryError:
            raise
        except Exception as exc:
            logger.warning("engine %s refused the inputs (%s)", self.name, type(exc).__name__)
            raise EngineRefused(
                "The model could not score these inputs (its engine refused them); "
                "nothing was predicted."
            ) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)
