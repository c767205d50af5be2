"""The scoring core: one pipeline under every surface, knowing nothing of HTTP or SQS.

`inputs` (records, tensors, columns), `pipeline` (the scoring steps, once, on one
bundle snapshot). `chalicelib.service.PredictionService` runs them per request with
telemetry and the challenger.
"""

from chalicelib.core.inputs import Columns, ModelInput, Records, Tensors
from chalicelib.core.pipeline import Scored, score_all, score_each

__all__ = ["Columns", "ModelInput", "Records", "Scored", "Tensors", "score_all", "score_each"]
