"""Inference engines behind one interface; heavy frameworks load only when chosen.

`registry.ENGINES` is the one table of engine kinds (artifact, file name, factory).
"""

from __future__ import annotations

from chalicelib.engines.base import InferenceEngine
from chalicelib.engines.registry import ENGINES, EngineSpec, engine_spec, load_engine

__all__ = ["ENGINES", "EngineSpec", "InferenceEngine", "engine_spec", "load_engine"]
