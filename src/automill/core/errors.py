"""The one error tree of Automill.

Every layer raises these; only ``api/`` turns them into google.rpc.Status JSON and
HTTP statuses, and the job runner stores ``code``/``message`` on failed operations.

    AutomillError (code: google.rpc.Code number)
    ├── InvalidArgument (3)      bad request field, bad CSV, bad filter   (also ValueError)
    ├── NotFound (5)             unknown dataset, model, operation, gs:// object
    ├── AlreadyExists (6)
    ├── PermissionDenied (7)     a path that tries to leave its bucket; a key without the permission
    ├── ResourceExhausted (8)
    ├── FailedPrecondition (9)   wrong state: model not deployed, dataset too small, etag mismatch
    ├── Aborted (10)
    ├── Unimplemented (12)       an RPC or export format not supported (yet)
    ├── Internal (13)
    ├── Unavailable (14)
    ├── DeadlineExceeded (4)
    ├── Unauthenticated (16)     no API key, or one that is unknown, revoked or expired
    └── Cancelled (1)            the operation was cancelled
"""

from __future__ import annotations


class AutomillError(Exception):
    """Base of all errors that carry a google.rpc.Code."""

    code: int = 2  # UNKNOWN
    status: str = "UNKNOWN"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class Cancelled(AutomillError):
    code, status = 1, "CANCELLED"


class InvalidArgument(AutomillError, ValueError):
    code, status = 3, "INVALID_ARGUMENT"


class DeadlineExceeded(AutomillError):
    code, status = 4, "DEADLINE_EXCEEDED"


class NotFound(AutomillError, LookupError):
    code, status = 5, "NOT_FOUND"


class AlreadyExists(AutomillError):
    code, status = 6, "ALREADY_EXISTS"


class PermissionDenied(AutomillError):
    code, status = 7, "PERMISSION_DENIED"


class ResourceExhausted(AutomillError):
    code, status = 8, "RESOURCE_EXHAUSTED"
    #: Seconds after which a retry may succeed (an HTTP Retry-After header), where known.
    retry_after: int | None = None


class FailedPrecondition(AutomillError):
    code, status = 9, "FAILED_PRECONDITION"


class Aborted(AutomillError):
    code, status = 10, "ABORTED"


class Unimplemented(AutomillError, NotImplementedError):
    code, status = 12, "UNIMPLEMENTED"


class Unauthenticated(AutomillError):
    code, status = 16, "UNAUTHENTICATED"


class Internal(AutomillError):
    code, status = 13, "INTERNAL"


class Unavailable(AutomillError):
    code, status = 14, "UNAVAILABLE"


_BY_CODE: dict[int, type[AutomillError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        Unimplemented,
        Internal,
        Unavailable,
        Unauthenticated,
    )
}


def error_for_code(code: int, message: str) -> AutomillError:
    """Rebuild an error from a stored google.rpc code (used for failed operations)."""
    cls = _BY_CODE.get(code, AutomillError)
    return cls(message)


__all__ = [
    "Aborted",
    "AlreadyExists",
    "AutomillError",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "error_for_code",
]
