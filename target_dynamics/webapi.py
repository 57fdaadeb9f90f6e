"""Requests and responses of the Dataverse Web API, as plain values (pure: no I/O).

Builders here return a frozen :class:`WebRequest` that the client sends alone or the ``batch``
codec packs into a ``$batch`` body; answers come back as :class:`WebResponse`, whether they
arrived alone or as one part of a ``$batch`` response.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WebRequest:
    """One Web API request.

    Attributes:
        method: HTTP method.
        path: Relative to the service root ``/api/data/v9.2/``, e.g. ``contacts(<guid>)``;
            already percent-encoded.
        body: JSON body, already encoded, or None.
        headers: Extra headers for this request only (``If-Match``, ``Prefer``...).
    """

    method: str
    path: str
    body: bytes | None = None
    headers: t.Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebResponse:
    """One Web API answer (alone, or one part of a ``$batch`` response)."""

    status: int
    headers: t.Mapping[str, str]
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300
