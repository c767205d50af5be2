"""Operational events (model refreshes, challenger scores) for whoever records them.

The core reports what happened through an `Observer`: an event name and plain fields
(versions, outcomes, counts, seconds; never a submitted value). The default writes one
JSON log line per event; a metrics writer (CloudWatch EMF) can be passed in instead
through `wiring.build_service`.

    model_refresh       model, outcome (ok | unchanged | failed), code, serving_version,
                        previous_version, seconds
    challenger_scored   model, champion_version, challenger_version, records,
                        agreement_rate (None for regression), mean_abs_probability_diff,
                        mean_abs_value_diff (regression), latency_seconds
    challenger_failed   model, champion_version, challenger_version, stage (load |
                        predict), code
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class Observer(Protocol):
    """Receives one operational event; must not raise (callers guard anyway)."""

    def __call__(self, event: str, fields: Mapping[str, Any]) -> None: ...


def log_event(event: str, fields: Mapping[str, Any]) -> None:
    """The default observer: one JSON line on the log, `{"event": ..., **fields}`."""
    import json  # only when used: the service's own observer writes EMF

    logger.info("%s", json.dumps({"event": event, **fields}, sort_keys=True, default=str))


def notify(observer: Observer, event: str, fields: Mapping[str, Any]) -> None:
    """Call `observer`; an observer's own failure is logged, never raised to serving."""
    try:
        observer(event, fields)
    except Exception:
        logger.exception("observer failed on %s", event)
