"""The service's one exception tree; each class carries its HTTP status and code.

    ServiceError                 500 internal_error
    ├── InvalidRequest           400 (code varies: invalid_json, empty_body, ...)
    │   └── InvalidRecords       400 invalid_records, with per-record details
    ├── NotServed                404 not_served (a model name or version not served here)
    ├── PayloadTooLarge          413 too_many_records (too_many_values: a body's JSON
    │                                beyond what any valid request holds)
    ├── UnscorableRecords        422 unscorable_records, with per-record details
    ├── EngineRefused            422 engine_refused (the engine failed on valid-looking
    │                                inputs: the request's, never a 500)
    ├── NotFound                 404 not_found (a batch job or its input)
    ├── UnsupportedMediaType     415 unsupported_media_type
    └── ModelUnavailable         503 model_unavailable
        ├── ModelNotFound            nothing at the configured location
        ├── ModelCorrupt             checksum, manifest or file does not load
        ├── RuntimeMismatch          the bundle has no artifact for this runtime's engine
        ├── StorageUnreachable       S3 did not answer in time
        └── CacheUnwritable          the local model cache is read-only, full or missing

Messages never contain submitted values: loan data is personal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

#: At most this many per-record problems in one error's details, on every surface.
MAX_REPORTED_PROBLEMS = 100


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field of one record; never holds the value itself."""

    record: int | None
    field: str | None
    problem: str

    def to_json(self) -> dict[str, Any]:
        return {"record": self.record, "field": self.field, "problem": self.problem}


class ServiceError(Exception):
    """Root of every error the service reports to a client."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: list[FieldProblem] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or []

    def to_json(self) -> dict[str, Any]:
        """The error body of the API contract."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = [problem.to_json() for problem in self.details]
        return {"error": error}


class InvalidRequest(ServiceError):
    """The request as a whole cannot be read (body, JSON, top-level shape)."""

    status = 400
    default_code = "invalid_request"


class InvalidRecords(InvalidRequest):
    """One or more records are malformed; details say which record and field."""

    default_code = "invalid_records"


class NotServed(ServiceError):
    """The request names a model or version this deployment does not serve."""

    status = 404
    default_code = "not_served"


class PayloadTooLarge(ServiceError):
    status = 413
    default_code = "too_many_records"


class UnscorableRecords(ServiceError):
    """Well-formed records the model cannot score: inputs far outside the training
    range, or an output that is not a valid score. Nothing is predicted."""

    status = 422
    default_code = "unscorable_records"


class EngineRefused(ServiceError):
    """The inference engine raised on inputs that passed every check (e.g. an index
    beyond an embedding whose range the manifest does not record). The inputs caused
    it, so the client gets a 4xx; nothing is predicted."""

    status = 422
    default_code = "engine_refused"


class UnsupportedMediaType(ServiceError):
    status = 415
    default_code = "unsupported_media_type"


class ModelUnavailable(ServiceError):
    """The model cannot be served right now; a later request retries the load."""

    status = 503
    default_code = "model_unavailable"


class ModelNotFound(ModelUnavailable):
    pass


class ModelCorrupt(ModelUnavailable):
    pass


class RuntimeMismatch(ModelUnavailable):
    """The bundle can be served, but by another engine than this deployment runs."""


class StorageUnreachable(ModelUnavailable):
    pass


class CacheUnwritable(ModelUnavailable):
    pass


class NotFound(ServiceError):
    """The thing asked for does not exist (a batch job, its input object)."""

    status = 404
    default_code = "not_found"
