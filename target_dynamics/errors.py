"""Errors of target-dynamics, each carrying the decision a caller needs.

DataverseError
 ├─ ConfigError          bad settings; never retried
 ├─ AuthError            the token endpoint refused the credentials
 ├─ MetadataError        table, column or key not found, or a stream that cannot map
 ├─ ServiceUnreachable   no usable answer for ``outage_budget_seconds``: ends the run
 └─ WebApiError          non-2xx from the Web API
     └─ Throttled        429; ``retry_after`` from the header

Callers ask :attr:`WebApiError.is_transient` and :attr:`WebApiError.unavailable`; they never
parse messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing_extensions import override

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
UNAVAILABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
"""Refusals of a request as a whole: timeout, throttling, bad gateway, unavailable."""
SQL_TIMEOUT_CODE = "0x80044151"
"""-2147204783 "SQL timeout expired": retry later, or send less at once (§4.9)."""
OBJECT_NOT_FOUND_CODE = "0x80040217"
"""ObjectDoesNotExist: the addressed row does not exist (§4.9)."""
KEY_NOT_FOUND_CODE = "0x80060891"
"""RecordNotFoundByEntityKey: no row has these alternate-key values (§4.9)."""
ALREADY_EXISTS_CODE = "0x80040237"
"""DuplicateRecord: "A record with matching key values already exists." (§4.1, §4.9)."""
PERMANENT_CODES = frozenset({"0x80040333", ALREADY_EXISTS_CODE, "0x80048d19"})
"""Codes that never succeed on retry even with a 5xx status (duplicate detection, duplicate key)."""
TRANSIENT_CODES = frozenset({SQL_TIMEOUT_CODE, "0x80044150", "0x80040255"})
"""SQL timeout, SQL deadlock, transaction already ended (§4.9): retry later, whatever the status."""
NOT_FOUND_CODES = frozenset({OBJECT_NOT_FOUND_CODE, KEY_NOT_FOUND_CODE})
"""ObjectDoesNotExist and RecordNotFoundByEntityKey (§4.9)."""


class DataverseError(Exception):
    """Base of every error target-dynamics raises on purpose."""


class ConfigError(DataverseError):
    """The settings are wrong; the message lists every problem and how to fix it."""


class AuthError(DataverseError):
    """The token endpoint refused the credentials (AADSTS error)."""


class MetadataError(DataverseError):
    """A table, column or key named in the settings or the stream does not exist."""


class ServiceUnreachable(DataverseError):
    """The service gave no usable answer for ``outage_budget_seconds``; the run must stop.

    Fatal: nothing is isolated or dead-lettered for it, STATE stays at the last batch that
    settled, and every later request fails at once with the same message.
    """


@dataclass(eq=False)
class WebApiError(DataverseError):
    """A non-2xx answer from the Dataverse Web API.

    Attributes:
        status: HTTP status code (0 when no answer arrived: timeout or broken connection).
        code: Dataverse error code, e.g. ``"0x80040237"``, when the body carried one.
        message: The service's message, or what went wrong on the way.
        retry_after: Seconds from ``Retry-After``, when present.
    """

    status: int
    code: str | None
    message: str
    retry_after: float | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @override
    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"{self.status}{code}: {self.message}"

    @property
    def is_transient(self) -> bool:
        """Whether the same request may succeed if sent again later."""
        if self.code in PERMANENT_CODES or self.already_exists:
            return False
        if self.code in TRANSIENT_CODES:
            return True
        return self.status == 0 or self.status in TRANSIENT_STATUSES

    @property
    def unavailable(self) -> bool:
        """Whether the service refused the request as a whole or never answered it.

        No answer, 408, 429, 502, 503 or 504: a sign about the service, never about the rows.
        """
        return self.status == 0 or self.status in UNAVAILABLE_STATUSES

    @property
    def already_exists(self) -> bool:
        """Whether a create hit an existing record with the same key (412 / ``0x80040237``)."""
        if self.code == ALREADY_EXISTS_CODE or "duplicate key" in self.message.lower():
            return True
        return self.status == 412 and "already exists" in self.message

    @property
    def not_found(self) -> bool:
        """Whether the addressed record does not exist (404 / ``0x80040217``, ``0x80060891``)."""
        return self.code in NOT_FOUND_CODES or (self.status == 404 and not self.code)


class Throttled(WebApiError):
    """429 from service protection; wait ``retry_after`` seconds before any further request."""
