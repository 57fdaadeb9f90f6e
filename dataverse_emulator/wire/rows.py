"""Shared serialisation for record handlers: JSON bodies in, OData rows out (§4.6, §2.3).

Stored rows hold a lookup under its logical name; OData shows it as ``_<lookup>_value``. Money is
written exactly, with four decimals (``5000000.0000``). When ``Prefer: odata.include-annotations``
asks (§2.2), rows carry ``Microsoft.Dynamics.CRM.lookuplogicalname`` and
``associatednavigationproperty`` on lookups and ``OData.Community.Display.V1.FormattedValue`` on
choices, booleans, lookups (the target's primary name), money and dates.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from dataverse_emulator.state import values
from dataverse_emulator.state.error_catalogue import (
    content_id_missing,
    payload_error,
    property_not_found,
    syntax_error,
)
from dataverse_emulator.state.schema import BIND, Reference
from dataverse_emulator.state.store import TARGET, etag
from dataverse_emulator.wire.codec import InvalidJsonError, loads
from dataverse_emulator.wire.segments import PathSyntaxError, parse_bind

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from dataverse_emulator.state.catalog import Column, Table

Row = dict[str, t.Any]
LOOKUP_ANNOTATION = "@Microsoft.Dynamics.CRM.lookuplogicalname"
NAVIGATION_ANNOTATION = "@Microsoft.Dynamics.CRM.associatednavigationproperty"
FORMATTED_ANNOTATION = "@OData.Community.Display.V1.FormattedValue"
_CHOICE_TYPES = frozenset({"Picklist", "State", "Status", "Boolean"})


@dataclass(frozen=True, slots=True)
class Annotations:
    """Which row annotations a response carries, and how to name a lookup's target (§2.2).

    Attributes:
        lookup_table: ``Microsoft.Dynamics.CRM.lookuplogicalname`` on lookups.
        navigation: ``Microsoft.Dynamics.CRM.associatednavigationproperty`` on lookups.
        formatted: ``OData.Community.Display.V1.FormattedValue``.
        name_of: ``(table, id)`` -> the target row's primary name (formatted lookups).
        symbol_of: Currency id -> its symbol (formatted money).
    """

    lookup_table: bool = False
    navigation: bool = False
    formatted: bool = False
    name_of: t.Callable[[str, str], str | None] = lambda _table, _id: None
    symbol_of: t.Callable[[str | None], str] = lambda _currency: "$"


_MONEY_PLACES = Decimal("0.0001")


def money(value: t.Any) -> t.Any:
    """Money as it comes back: an exact number with four decimals (§4.6), ``5000000.0000``.

    Stored money is already rounded to the column's precision, at most 4
    (``MoneyAttributeMetadata.MaxSupportedPrecision``), so this only pads.
    """
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    return number.quantize(_MONEY_PLACES)


def _formatted_datetime(value: str, *, date_only: bool) -> str:
    moment = datetime.fromisoformat(value)
    day = f"{moment.month}/{moment.day}/{moment.year}"
    if date_only:
        return day
    hour = moment.hour % 12 or 12
    return f"{day} {hour}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"


def plain(value: t.Any) -> t.Any:
    """Turn a typed OData literal into the stored form (GUID str, ISO date; numbers as they are).

    A decimal literal stays a ``Decimal``, exact as stored Decimal columns are (§4.6); it equals
    (and hashes as) an ``int`` of the same value, so it finds an integer key too.
    """
    if isinstance(value, UUID):
        return str(value)
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
        data = loads(body)
    except InvalidJsonError as exc:
        raise payload_error(table, f"Microsoft.OData.ODataException: Invalid JSON. {exc}") from None
    if not isinstance(data, dict):
        raise payload_error(
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
        self.lookups = {name: f"_{name}_value" for name, _ in _of_types(table, values.LOOKUP_TYPES)}
        self.properties: list[tuple[str, str]] = [
            (name, self.lookups.get(name, name))
            for name, column in table.columns.items()
            if column.is_valid_for_read and values.is_property(column)
        ]
        self.by_property = {prop: name for name, prop in self.properties}
        self.readable = set(self.by_property)
        readable = {name for name, _ in self.properties}
        self.money = [
            (name, self.lookups.get(name, name))
            for name, _ in _readable_of_types(table, readable, {"Money"})
        ]
        self.labels = {
            name: _labels(column) or {True: "Yes", False: "No"}
            for name, column in _readable_of_types(table, readable, _CHOICE_TYPES)
        }
        self.multi_labels = {
            name: _labels(column)
            for name, column in _readable_of_types(table, readable, {"MultiSelectPicklist"})
        }
        self.dates = {
            name: column.format == "DateOnly"
            for name, column in _readable_of_types(table, readable, {"DateTime"})
        }
        self.navigation_of = _navigations(table)

    def check_select(self, select: t.Sequence[str]) -> None:
        """Reject ``$select`` names the entity type does not declare (§4.9).

        Raises:
            DataverseFault: 400 ``0x0`` "Could not find a property named ...".
        """
        for name in select:
            if name not in self.readable and name not in self.by_property:
                raise property_not_found(name, self.table.logical_name)

    def full(self, row: Mapping[str, t.Any]) -> Row:
        """Every property as stored (null when unset; lookups as ``_x_value``), ``@odata.etag``.

        For sorting and single values; :meth:`finish` turns it into the JSON form.
        """
        out: Row = {"@odata.etag": etag(row)}
        get = row.get
        for name, prop in self.properties:
            out[prop] = get(name)
        return out

    def selected(
        self,
        row: Mapping[str, t.Any],
        select: t.Sequence[str] | None,
        annotations: Annotations | None = None,
    ) -> Row:
        """Render the selected properties (all when None) of a stored row, in JSON form."""
        if select is None:
            return self.finish(self.full(row), row, annotations)
        get = row.get
        by_property = self.by_property
        out: Row = {"@odata.etag": etag(row)}
        for prop in select:
            out[prop] = get(by_property[prop])
        primary = self.table.primary_id
        out[primary] = get(primary)
        return self.finish(out, row, annotations)

    def finish(
        self, out: Row, row: Mapping[str, t.Any], annotations: Annotations | None = None
    ) -> Row:
        """Encode money (§4.6) and add the requested annotations (§2.2) to rendered ``out``."""
        for _, prop in self.money:
            if out.get(prop) is not None:
                out[prop] = money(out[prop])
        if annotations is not None:
            self._annotate(out, row, annotations)
        return out

    def _annotate(self, out: Row, row: Mapping[str, t.Any], annotations: Annotations) -> None:
        get = row.get
        formatted = annotations.formatted
        for name, prop in self.lookups.items():
            value = get(name)
            if prop not in out or value is None:
                continue
            target: str | None = get(name + TARGET)
            if annotations.lookup_table and target is not None:
                out[prop + LOOKUP_ANNOTATION] = target
            navigation = self.navigation_of.get((name, target)) or self.navigation_of.get(
                (name, "owner")
            )
            if annotations.navigation and navigation is not None:
                out[prop + NAVIGATION_ANNOTATION] = navigation
            if formatted and target is not None:
                label = annotations.name_of(target, value)
                if label is not None:
                    out[prop + FORMATTED_ANNOTATION] = label
        if formatted:
            self._format(out, row, annotations)

    def _format(self, out: Row, row: Mapping[str, t.Any], annotations: Annotations) -> None:
        """Add ``FormattedValue`` to choices, booleans, dates and money present in ``out``."""
        get = row.get
        for name, labels in self.labels.items():
            value = get(name)
            if value is not None and name in out and value in labels:
                out[name + FORMATTED_ANNOTATION] = labels[value]
        for name, labels in self.multi_labels.items():
            value = get(name)
            if value and name in out:
                chosen = (labels.get(int(v), v) for v in str(value).split(","))
                out[name + FORMATTED_ANNOTATION] = "; ".join(chosen)
        for name, date_only in self.dates.items():
            value = get(name)
            if value and name in out:
                out[name + FORMATTED_ANNOTATION] = _formatted_datetime(value, date_only=date_only)
        for name, prop in self.money:
            value = get(name)
            if value is not None and prop in out:
                symbol = annotations.symbol_of(get("transactioncurrencyid"))
                out[prop + FORMATTED_ANNOTATION] = f"{symbol}{value:,.2f}"

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


def _of_types(table: Table, types: t.Container[str]) -> Iterator[tuple[str, Column]]:
    """The columns of ``table`` whose type is one of ``types``, in order."""
    return ((name, column) for name, column in table.columns.items() if column.type in types)


def _readable_of_types(
    table: Table, readable: t.Container[str], types: t.Container[str]
) -> Iterator[tuple[str, Column]]:
    """The columns of ``table`` named in ``readable`` whose type is one of ``types``, in order."""
    return ((name, column) for name, column in _of_types(table, types) if name in readable)


def _labels(column: Column) -> dict[int, str]:
    """Option value -> label of a choice column (empty for a boolean without options)."""
    return {option.value: option.label for option in column.options}


def _navigations(table: Table) -> dict[tuple[str, str | None], str]:
    """(lookup column, target table) -> the lookup's navigation property."""
    return {
        (rel.referencing_attribute, rel.referenced_entity): rel.referencing_navigation
        for rel in table.many_to_one
        if rel.referencing_navigation
    }


class _StoredView:
    """A read-only ``get`` over a stored row using OData property names."""

    __slots__ = ("aliases", "row")

    def __init__(self, aliases: Mapping[str, str]) -> None:
        self.aliases = aliases
        self.row: Mapping[str, t.Any] = {}

    def get(self, name: str, default: t.Any = None) -> t.Any:
        return self.row.get(self.aliases.get(name, name), default)


def renderer(table: Table) -> Renderer:
    """Return the renderer of a table, kept on the table; rebuilt when its columns change."""
    built = table.views.get("renderer")
    if built is None or built[0] != len(table.columns):
        built = table.views["renderer"] = (len(table.columns), Renderer(table))
    return built[1]
