"""What every Web API handler receives: the request, the environment and derived facts."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from dataverse_emulator.http import Response
from dataverse_emulator.wire.errors import JSON_CONTENT_TYPE
from dataverse_emulator.wire.query_options import Prefer
from dataverse_emulator.wire.rows import dumps

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Request
    from dataverse_emulator.state.environment import Environment
    from dataverse_emulator.state.store import Caller


@dataclass(slots=True)
class Call:
    """One Web API call (top-level or inside ``$batch``).

    Attributes:
        request: The HTTP request (for a batch operation: a request built from the part).
        env: The environment.
        root: The service root, e.g. ``https://127.0.0.1:8443/api/data/v9.2``.
        caller: Who writes (ownerid, createdby).
        prefer: The parsed ``Prefer`` header.
    """

    request: Request
    env: Environment
    root: str
    caller: Caller | None
    prefer: Prefer = field(default_factory=Prefer)

    def header(self, name: str) -> str | None:
        """Return a request header (lower-case name); ``null`` counts as absent (§2.2)."""
        value = self.request.headers.get(name)
        if value is None or value.strip().lower() == "null":
            return None
        return value.strip()

    @property
    def representation(self) -> bool:
        """Whether ``Prefer: return=representation`` was sent."""
        return self.prefer.return_representation

    @property
    def annotate(self) -> bool:
        """Whether ``Prefer: odata.include-annotations`` asks for lookup annotations."""
        wanted = self.prefer.include_annotations or ""
        return (
            wanted == "*" or "lookuplogicalname" in wanted or "Microsoft.Dynamics.CRM.*" in wanted
        )


def json_response(status: int, data: t.Any, headers: t.Sequence[tuple[str, str]] = ()) -> Response:
    """A JSON response with ``Content-Type`` and ``OData-Version`` (§2.3)."""
    return Response(
        status=status,
        headers=[("Content-Type", JSON_CONTENT_TYPE), ("OData-Version", "4.0"), *headers],
        body=dumps(data),
    )


def empty_response(status: int = 204, headers: t.Sequence[tuple[str, str]] = ()) -> Response:
    """A response without a body (204)."""
    return Response(status=status, headers=[("OData-Version", "4.0"), *headers])
