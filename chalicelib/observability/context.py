"""Which request this is: its id and whether it is the process's first (cold start)."""

from __future__ import annotations

import re
import threading

_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class ColdStart:
    """True for the first caller of `take()` in this process, False after."""

    def __init__(self) -> None:
        self._cold = True
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            cold, self._cold = self._cold, False
            return cold


def request_id(*candidates: object) -> str:
    """The first candidate that is a short id-like string, else a new UUID.

    Candidates come from Lambda (aws_request_id) and API Gateway (requestId);
    anything else (absent, not text, too long) is replaced, never logged.
    """
    for candidate in candidates:
        if isinstance(candidate, str) and _ID.fullmatch(candidate):
            return candidate
    import uuid  # only here: Lambda always gives an id, and cold-start time counts

    return str(uuid.uuid4())
