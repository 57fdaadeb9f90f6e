"""The one seam between the HTTP server and the emulator: a request in, a response out.

Every room of the emulator (control, faults, authority, budget, wire) is an async callable
``Handler`` taking a :class:`Request` and returning a :class:`Response`, so the whole chain can be
tested without sockets and served by :mod:`dataverse_emulator.server` over loopback HTTPS.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from enum import StrEnum


class Abort(StrEnum):
    """How the server breaks a connection instead of answering normally."""

    RESET = "reset"
    """Send the status line, headers and half of the body, then close the connection."""


@dataclass(slots=True)
class Request:
    """One HTTP request as the emulator sees it.

    Attributes:
        method: Upper-case HTTP method.
        path: The raw (still percent-encoded) path, e.g.
            ``/api/data/v9.2/contacts(emailaddress1='a%40b.c')``.
        query: The raw query string without ``?``.
        headers: Header names lower-cased; repeated headers joined with ``", "``.
        body: The request body.
        base_url: ``https://host:port`` as the client addressed the server.
        context: Facts earlier handlers established, e.g. ``"client_id"`` of the caller;
            the server sets ``"connection"`` (the client's address and port).
    """

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    base_url: str = "https://127.0.0.1"
    context: dict[str, t.Any] = field(default_factory=dict)


@dataclass(slots=True)
class Response:
    """One HTTP response.

    Attributes:
        status: HTTP status code.
        headers: Header pairs in order; names in the casing Dataverse uses.
        body: The encoded body.
        abort: Break the connection instead of delivering the whole response.
    """

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    abort: Abort | None = None

    def header(self, name: str) -> str | None:
        """Return the first header called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


Handler = t.Callable[[Request], t.Awaitable[Response]]
