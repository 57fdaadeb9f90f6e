"""One table's write schema: how a JSON body becomes column values and lookup references.

Built once per table (and rebuilt when the table's columns change) so that a record costs one
dict lookup and one converter call per member (reference §4.6, §4.7).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from dataverse_emulator.state import values
from dataverse_emulator.state.error_catalogue import (
    lookup_value_written,
    navigation_value_invalid,
    not_valid_for,
    required_cleared,
    undeclared_annotation,
    unknown_property,
)

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import Column, Table

CREATE = "create"
UPDATE = "update"

BIND = "@odata.bind"


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed ``@odata.bind`` value: ``/{entity_set}({id})`` or ``/{entity_set}({key})``.

    Attributes:
        entity_set: The entity set named in the reference.
        id: The primary id, when addressed by GUID.
        key: Alternate-key values by column logical name, when addressed by key.
    """

    entity_set: str
    id: str | None = None
    key: t.Mapping[str, t.Any] | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A lookup to set: the column, the navigation property used and the reference."""

    column: Column
    navigation: str
    targets: tuple[str, ...]
    """Logical names of the tables the navigation property may point to."""
    reference: Reference | None


@dataclass(frozen=True, slots=True)
class Parsed:
    """A request body split into converted column values and lookup links."""

    values: dict[str, t.Any]
    links: list[Link]


class TableSchema:
    """The converters and navigation properties of one table."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.size = len(table.columns)
        self.converters: dict[str, tuple[Column, values.Converter]] = {}
        self.lookup_values: frozenset[str] = frozenset(
            f"_{c.logical_name}_value"
            for c in table.columns.values()
            if c.type in values.LOOKUP_TYPES
        )
        self.writable: dict[str, dict[str, values.Converter]] = {CREATE: {}, UPDATE: {}}
        for column in table.columns.values():
            if column.type in values.LOOKUP_TYPES or not values.is_property(column):
                continue
            convert = _column_converter(table, column)
            name = column.logical_name
            self.converters[name] = (column, convert)
            for operation in _operations(table, column):
                self.writable[operation][name] = convert
        self.money: frozenset[str] = frozenset(
            c.logical_name for c in table.columns.values() if c.type == "Money"
        )
        self.navigations = _navigations(table)

    def parse(self, body: t.Mapping[str, t.Any], operation: str) -> Parsed:
        """Validate and convert a request body.

        Args:
            body: The JSON object; ``@odata.bind`` values already parsed into
                :class:`Reference` (or ``None`` to clear the lookup).
            operation: :data:`CREATE` or :data:`UPDATE`.

        Returns:
            The converted values and the lookup links to resolve.

        Raises:
            DataverseFault: for the first invalid member, as Dataverse reports it.
        """
        table = self.table
        writable = self.writable[operation]
        out: dict[str, t.Any] = {}
        links: list[Link] = []
        for name, value in body.items():
            convert = writable.get(name)
            if convert is not None:
                out[name] = convert(value)
            elif name in self.converters:
                raise not_valid_for(table, self.converters[name][0], operation)
            elif name[0] == "@":
                continue
            elif "@" in name:
                self._annotation(name, value, links)
            elif name in self.lookup_values:
                raise lookup_value_written()
            else:
                raise unknown_property(table, name)
        return Parsed(out, links)

    def _annotation(self, name: str, value: t.Any, links: list[Link]) -> None:
        prop, _, annotation = name.partition("@")
        if "@" + annotation != BIND:
            return
        nav = self.navigations.get(prop)
        if nav is None:
            raise undeclared_annotation(prop)
        column, targets = nav
        if value is not None and not isinstance(value, Reference):
            raise navigation_value_invalid(prop)
        links.append(Link(column, prop, targets, value))


def _column_converter(table: Table, column: Column) -> values.Converter:
    """The converter of a (non-lookup) column; SystemRequired ones refuse null (§4.6)."""
    convert = values.converter(table, column)
    if column.required_level == "SystemRequired" and not column.is_primary_id:
        return _not_null(table, column, convert)
    return convert


def _operations(table: Table, column: Column) -> tuple[str, ...]:
    """The operations (:data:`CREATE`, :data:`UPDATE`) whose bodies may set ``column``.

    statecode is not valid for create, yet a create carrying it is not refused: the store starts
    the row in the default state and checks statuscode against it (§4.10).
    """
    primary = column.logical_name == table.primary_id
    create = column.is_valid_for_create or primary or column.type == "State"
    update = column.is_valid_for_update or primary
    return tuple(operation for operation, ok in ((CREATE, create), (UPDATE, update)) if ok)


def _navigations(table: Table) -> dict[str, tuple[Column, tuple[str, ...]]]:
    """Navigation property -> its lookup column and the tables it may point to."""
    navigations: dict[str, tuple[Column, tuple[str, ...]]] = {}
    for rel in table.many_to_one:
        lookup = table.columns.get(rel.referencing_attribute)
        if rel.referencing_navigation and lookup is not None:
            targets: tuple[str, ...] = (rel.referenced_entity,)
            if rel.referenced_entity == "owner":
                targets = lookup.targets or ("systemuser", "team")
            navigations.setdefault(rel.referencing_navigation, (lookup, targets))
    return navigations


def _not_null(table: Table, column: Column, convert: values.Converter) -> values.Converter:
    """Wrap a converter so that ``null`` is refused (SystemRequired, §4.6)."""

    def checked(value: t.Any) -> t.Any:
        converted = convert(value)
        if converted is None:
            raise required_cleared(table, column)
        return converted

    return checked
