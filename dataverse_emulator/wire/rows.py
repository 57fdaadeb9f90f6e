"""Shared serialisation for record handlers: JSON bodies in, OData rows out (§4.6, §2.3).

Stored rows hold a lookup under its logical name; OData shows it as ``_<lookup>_value``, with the
target table as the ``Microsoft.Dynamics.CRM.lookuplogicalname`` annotation when asked for.
"""

from __future__ import annotations

import typing as t
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import orjson

from dataverse_emulator.state import values
from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.state.schema import BIND, Reference
from dataverse_emulator.state.store import TARGET, etag
from dataverse_emulator.wire.errors import JSON_CONTENT_TYPE
from dataverse_emulator.wire.segments import PathSyntaxError, parse_bind

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from dataverse_emulator.state.catalog import Table

Row = dict[str, t.Any]
LOOKUP_ANNOTATION = "@Microsoft.Dynamics.CRM.lookuplogicalname"
JSON_HEADERS = (("Content-Type", JSON_CONTENT_TYPE), ("OData-Version", "4.0"))


def syntax_error() -> DataverseFault:
    """400 ``0x8006088a`` "Bad Request - Error in query syntax." (§4.3)."""
    return DataverseFault(Kind.BAD_REQUEST, "0x8006088a", "Bad Request - Error in query syntax.")


def content_id_missing(reference: str) -> DataverseFault:
    """400 for a ``$n`` that no earlier change-set operation declared (§5.2)."""
    return DataverseFault(
        Kind.BAD_REQUEST,
        "0x0",
        f"Content-ID Reference: '{reference}' does not exist in the batch context.",
    )


def plain(value: t.Any) -> t.Any:
    """Turn a typed OData literal into the stored JSON form (GUID str, ISO date, number)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return value


def plain_key(key: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Convert a parsed key predicate to stored values."""
    return {name: plain(value) for name, value in key.items()}


def reference(text: str) -> Reference:
    """Parse an ``@odata.bind`` value (§4.6).

    Raises:
        DataverseFault: 400 for a malformed reference or an unresolved ``$n``.
    """
    try:
        entity_set, key = parse_bind(text)
    except PathSyntaxError:
        raise syntax_error() from None
    if entity_set.startswith("$"):
        raise content_id_missing(entity_set)
    if isinstance(key, str):
        return Reference(entity_set, id=key)
    return Reference(entity_set, key=plain_key(key or {}))


def load_object(body: bytes, table: Table) -> dict[str, t.Any]:
    """Parse a JSON object body and turn its ``@odata.bind`` values into references.

    Raises:
        DataverseFault: 400 ``0x80048d19`` for malformed JSON or a non-object body.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise values.payload_error(
            table, f"Microsoft.OData.ODataException: Invalid JSON. {exc}"
        ) from None
    if not isinstance(data, dict):
        raise values.payload_error(
            table,
            "Microsoft.OData.ODataException: An unexpected 'StartArray' node was found when "
            "reading from the JSON reader. A 'StartObject' node was expected.",
        )
    return prepare(data)


def prepare(data: dict[str, t.Any]) -> dict[str, t.Any]:
    """Replace ``<nav>@odata.bind`` strings by :class:`Reference` values, in place."""
    for name, value in data.items():
        if name.endswith(BIND) and isinstance(value, str):
            data[name] = reference(value)
    return data


class Renderer:
    """Renders stored rows of one table as OData JSON objects."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.lookups = {
            name: f"_{name}_value"
            for name, column in table.columns.items()
            if column.type in values.LOOKUP_TYPES
        }
        self.properties: list[tuple[str, str]] = [
            (name, self.lookups.get(name, name))
            for name, column in table.columns.items()
            if column.is_valid_for_read and values.is_property(column)
        ]
        self.by_property = {prop: name for name, prop in self.properties}
        self.readable = set(self.by_property)

    def check_select(self, select: t.Sequence[str]) -> None:
        """Reject ``$select`` names the entity type does not declare (§4.9).

        Raises:
            DataverseFault: 400 ``0x0`` "Could not find a property named ...".
        """
        for name in select:
            if name not in self.readable and name not in self.by_property:
                raise DataverseFault(
                    Kind.BAD_REQUEST,
                    "0x0",
                    f"Could not find a property named '{name}' on type "
                    f"'Microsoft.Dynamics.CRM.{self.table.logical_name}'.",
                )

    def full(self, row: Mapping[str, t.Any], *, annotate: bool = False) -> Row:
        """Render every property (null when unset; lookups as ``_x_value``) and ``@odata.etag``.

        With ``annotate``, set lookups also carry their ``lookuplogicalname`` annotation.
        """
        out: Row = {"@odata.etag": etag(row)}
        get = row.get
        for name, prop in self.properties:
            out[prop] = get(name)
        if annotate:
            for name, prop in self.lookups.items():
                target = get(name + TARGET)
                if target is not None:
                    out[prop + LOOKUP_ANNOTATION] = target
        return out

    def selected(
        self, row: Mapping[str, t.Any], select: t.Sequence[str] | None, *, annotate: bool = False
    ) -> Row:
        """Render only the selected properties (all when None), as :meth:`project` would."""
        if select is None:
            return self.full(row, annotate=annotate)
        get = row.get
        by_property = self.by_property
        out: Row = {"@odata.etag": etag(row)}
        for prop in select:
            name = by_property[prop]
            out[prop] = get(name)
            if annotate and name in self.lookups and get(name + TARGET) is not None:
                out[prop + LOOKUP_ANNOTATION] = get(name + TARGET)
        primary = self.table.primary_id
        out[primary] = get(primary)
        return out

    def matcher(
        self, predicate: t.Callable[[t.Any], bool]
    ) -> t.Callable[[Mapping[str, t.Any]], bool]:
        """Evaluate a filter predicate on stored rows without rendering them.

        The predicate reads top-level properties with ``.get`` (``_x_value`` is mapped to the
        stored lookup column), so only matching rows need :meth:`full`.
        """
        view = _StoredView(self.by_property)

        def matches(row: Mapping[str, t.Any]) -> bool:
            view.row = row
            return predicate(view)

        return matches

    def project(self, full: Row, select: t.Sequence[str] | None) -> Row:
        """Keep ``@odata.etag``, the selected properties (null when unset) and the primary id."""
        if select is None:
            return full
        out: Row = {"@odata.etag": full["@odata.etag"]}
        for name in select:
            out[name] = full.get(name)
            annotation = name + LOOKUP_ANNOTATION
            if annotation in full:
                out[annotation] = full[annotation]
        primary = self.table.primary_id
        out[primary] = full.get(primary)
        return out


class _StoredView:
    """A read-only ``get`` over a stored row using OData property names."""

    __slots__ = ("aliases", "row")

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.aliases = aliases
        self.row: Mapping[str, t.Any] = {}

    def get(self, name: str, default: t.Any = None) -> t.Any:
        return self.row.get(self.aliases.get(name, name), default)


_RENDERERS: dict[tuple[int, str, int], Renderer] = {}


def renderer(table: Table) -> Renderer:
    """Return the (cached) renderer of a table; rebuilt when its columns change."""
    cache_key = (id(table), table.logical_name, len(table.columns))
    found = _RENDERERS.get(cache_key)
    if found is None:
        found = _RENDERERS[cache_key] = Renderer(table)
    return found


def dumps(data: t.Any) -> bytes:
    """Encode JSON (orjson)."""
    return orjson.dumps(data)
