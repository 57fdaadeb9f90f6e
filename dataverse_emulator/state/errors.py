"""Domain errors of the emulator's state, each with its Dataverse error code and message.

State never sees HTTP: ``kind`` says what went wrong, and ``wire`` maps each kind to the status
Dataverse answers with (see ``wire/errors.py``).
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What kind of failure a fault is; ``wire`` maps each kind to one HTTP status."""

    BAD_REQUEST = "bad_request"  # 400
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    PRECONDITION_FAILED = "precondition_failed"  # 412
    TOO_LARGE = "too_large"  # 413
    SERVER_ERROR = "server_error"  # 500


class DataverseFault(Exception):
    """A failure Dataverse reports as ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, kind: Kind, code: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
