"""Optional sampled prediction logging: a keyed hash of each input record, never the
record, with the outputs and the model version (the hook for drift analysis)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Callable, Sequence
from typing import Any


class PredictionSampler:
    """Decides which requests are sampled and hashes their records with HMAC-SHA256."""

    def __init__(self, rate: float, key: bytes, draw: Callable[[], float] = random.random) -> None:
        if not 0.0 < rate <= 1.0:
            raise ValueError("the sample rate must be in (0, 1]")
        if not key:
            raise ValueError("sampled prediction logging needs a key")
        self.rate = rate
        self._key = key
        self._draw = draw

    def sampled(self) -> bool:
        return self._draw() < self.rate

    def record_hash(self, record: Any) -> str:
        """HMAC-SHA256 of the record's canonical JSON (sorted keys, no spaces)."""
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
        return hmac.new(self._key, canonical.encode(), hashlib.sha256).hexdigest()

    def entries(self, records: Sequence[Any], outputs: Sequence[Any]) -> list[dict[str, Any]]:
        return [
            {"record_hmac": self.record_hash(record), "output": output}
            for record, output in zip(records, outputs, strict=False)
        ]
