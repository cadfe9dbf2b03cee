"""What the CLI prints and exits with when something fails: ``error: <STATUS>: <message>``."""

from __future__ import annotations

#: google.rpc code number -> name (Operation errors carry the number).
CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}

#: HTTP status -> google.rpc name, for error bodies that are not google.rpc.Status JSON (a proxy's page).
HTTP_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: Exit codes (2 is typer's usage error; 130 an interrupted wait).
EXIT_CODES = {
    "INVALID_ARGUMENT": 3,
    "FAILED_PRECONDITION": 3,
    "OUT_OF_RANGE": 3,
    "NOT_FOUND": 4,
    "PERMISSION_DENIED": 5,
    "UNAUTHENTICATED": 5,
    "UNAVAILABLE": 6,
}


def code_name(code: object) -> str:
    try:
        return CODE_NAMES.get(int(code), "UNKNOWN")  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(code) if code else "UNKNOWN"


class CliError(Exception):
    """A failure to report to the user without a traceback."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)
