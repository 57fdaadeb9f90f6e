"""What every Web API handler receives: the request, the environment and derived facts."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from dataverse_emulator.http import Response
from dataverse_emulator.wire.codec import dumps
from dataverse_emulator.wire.errors import JSON_CONTENT_TYPE
from dataverse_emulator.wire.query_options import Prefer
from dataverse_emulator.wire.rows import Annotations

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Request
    from dataverse_emulator.state.environment import Environment
    from dataverse_emulator.state.privileges import Caller


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
    _annotations: tuple[Annotations | None] | None = field(default=None, init=False, repr=False)

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

    def wants(self, annotation: str) -> bool:
        """Whether ``Prefer: odata.include-annotations`` asks for ``annotation`` (§2.2).

        The preference lists names, ``namespace.*`` patterns or ``*``; ``-`` excludes.
        """
        wanted = self.prefer.include_annotations
        if not wanted:
            return False
        included = False
        for raw in wanted.split(","):
            pattern = raw.strip()
            excluded = pattern.startswith("-")
            pattern = pattern.removeprefix("-")
            if pattern in {"*", annotation} or (
                pattern.endswith(".*") and annotation.startswith(pattern[:-1])
            ):
                if excluded:
                    return False
                included = True
        return included

    @property
    def annotations(self) -> Annotations | None:
        """The row annotations the request asks for, or None (§2.2); computed once."""
        if self._annotations is None:
            self._annotations = (self._build_annotations(),)
        return self._annotations[0]

    def _build_annotations(self) -> Annotations | None:
        if not self.prefer.include_annotations:
            return None
        env = self.env
        catalog, store = env.catalog, env.store

        def name_of(table: str, record_id: str) -> str | None:
            if not catalog.has_table(table):
                return None
            primary_name = catalog.table(table).primary_name
            row = store.find(table, record_id)
            return row.get(primary_name) if row is not None and primary_name else None

        def symbol_of(currency_id: str | None) -> str:
            row = store.find("transactioncurrency", currency_id) if currency_id else None
            return (row or {}).get("currencysymbol") or "$"

        return Annotations(
            lookup_table=self.wants("Microsoft.Dynamics.CRM.lookuplogicalname"),
            navigation=self.wants("Microsoft.Dynamics.CRM.associatednavigationproperty"),
            formatted=self.wants("OData.Community.Display.V1.FormattedValue"),
            name_of=name_of,
            symbol_of=symbol_of,
        )

    def preference_applied(self) -> list[tuple[str, str]]:
        """``Preference-Applied`` echoing ``odata.include-annotations`` when sent (§2.2)."""
        wanted = self.prefer.include_annotations
        if wanted is None:
            return []
        return [("Preference-Applied", f'odata.include-annotations="{wanted}"')]


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
