"""The one answer to "is this S3 object there?" for every read, in the service and the tools.

S3 answers 404 (`NoSuchKey`; a HEAD's bare `404`) for a missing key only when the caller
may `s3:ListBucket`; without that permission it answers 403 (`AccessDenied`; a HEAD's
bare `403`) for a missing key and a forbidden one alike. So every reader treats both as
"missing or forbidden" and says which in its logs and reasons; each surface maps that to
its documented status (the model store: 503 `model_unavailable`; `/batch`: 404).

Duck-typed on botocore's `ClientError.response`, so callers need not import botocore.
"""

from __future__ import annotations

from typing import Literal

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
FORBIDDEN_CODES = frozenset({"AccessDenied", "403", "Forbidden"})

Absence = Literal["missing", "forbidden"]


def error_code(error: BaseException) -> str:
    """S3's error code of a botocore ClientError ("" for any other exception)."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def http_status(error: BaseException) -> int | None:
    """The HTTP status S3 answered with, if `error` is a botocore ClientError."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def absence(error: BaseException) -> Absence | None:
    """ "missing" (404), "forbidden" (403: missing, or not allowed), or None when
    `error` says something else (a missing bucket, a timeout, a 500...)."""
    code = error_code(error)
    if code in MISSING_CODES:
        return "missing"
    if code in FORBIDDEN_CODES:
        return "forbidden"
    return None


def is_missing(error: BaseException) -> bool:
    """Whether `error` means the object is missing or may not be read (404 or 403)."""
    return absence(error) is not None


def is_not_modified(error: BaseException) -> bool:
    """A conditional GET's 304: the object still has the ETag the caller gave."""
    return http_status(error) == 304
