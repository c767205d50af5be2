"""Inference engines behind one interface; heavy frameworks load only when chosen.

`registry.ENGINES` is the one table of engine kinds (artifact, file name, factory).
"""

from __future__ import annotations

import os

# Before numpy is first imported (chalicelib.engines.base, on app.py's import path):
# numpy's OpenBLAS otherwise starts a thread per core that spin-waits, ~60 ms of CPU at
# import and more while idle, taken from the request's core on a fractional-vCPU Lambda.
# No engine here uses numpy's BLAS for inference (docs/benchmarks.md#cold-start).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from chalicelib.engines.base import InferenceEngine
from chalicelib.engines.registry import ENGINES, EngineSpec, engine_spec, load_engine

__all__ = ["ENGINES", "EngineSpec", "InferenceEngine", "engine_spec", "load_engine"]
