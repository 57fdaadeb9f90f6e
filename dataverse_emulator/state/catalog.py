"""The metadata model: tables, columns, alternate keys and relationships.

These are the facts that every other room reads. ``wire`` renders them as EntityMetadata /
AttributeMetadata JSON; the record store validates values against them.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of a Picklist, State, Status, MultiSelectPicklist or Boolean column."""

    value: int
    label: str
    state: int | None = None
    """For Status options: the statecode value the option belongs to."""
    default_status: int | None = None
    """For State options: the default statuscode of that state."""


@dataclass(frozen=True, slots=True)
class Column:
    """One attribute of a table (AttributeMetadata).

    ``type`` is the AttributeType member name (String, Memo, Integer, BigInt, Decimal, Double,
    Money, DateTime, Boolean, Picklist, State, Status, MultiSelectPicklist, Lookup, Customer,
    Owner, PartyList, Uniqueidentifier, EntityName, Image, Virtual).
    """

    logical_name: str
    schema_name: str
    type: str
    display_name: str | None = None
    metadata_id: str = ""
    required_level: str = "None"
    is_valid_for_create: bool = True
    is_valid_for_update: bool = True
    is_valid_for_read: bool = True
    is_primary_id: bool = False
    is_primary_name: bool = False
    is_custom: bool = False
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    format: str | None = None
    format_name: str | None = None
    datetime_behavior: str | None = None
    targets: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    default_value: t.Any = None
    attribute_of: str | None = None


@dataclass(frozen=True, slots=True)
class AlternateKey:
    """An alternate key (EntityKeyMetadata)."""

    logical_name: str
    schema_name: str
    key_attributes: tuple[str, ...]
    metadata_id: str = ""
    index_status: str = "Active"
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Relationship:
    """A one-to-many relationship, seen from either side (RelationshipMetadata)."""

    schema_name: str
    referenced_entity: str
    referenced_attribute: str
    referencing_entity: str
    referencing_attribute: str
    referencing_navigation: str | None
    """The single-valued navigation property on the referencing table (used for ``@odata.bind``)."""
    referenced_navigation: str | None
    metadata_id: str = ""
    is_hierarchical: bool = False
    cascade: t.Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ManyToMany:
    """A many-to-many relationship (ManyToManyRelationshipMetadata)."""

    schema_name: str
    intersect_entity: str
    entity1: str
    entity1_intersect_attribute: str
    entity1_navigation: str | None
    entity2: str
    entity2_intersect_attribute: str
    entity2_navigation: str | None
    metadata_id: str = ""


@dataclass(slots=True)
class Table:
    """One table (EntityMetadata) with everything hanging off it.

    ``keys`` is mutable: alternate keys can be added at run time (``POST .../Keys``).
    """

    logical_name: str
    schema_name: str
    entity_set_name: str
    primary_id: str
    primary_name: str | None
    columns: dict[str, Column]
    metadata_id: str = ""
    display_name: str | None = None
    display_collection_name: str | None = None
    logical_collection_name: str | None = None
    collection_schema_name: str | None = None
    ownership_type: str = "UserOwned"
    object_type_code: int | None = None
    is_custom: bool = False
    is_activity: bool = False
    table_type: str = "Standard"
    supports_bulk: bool = True
    """Whether CreateMultiple/UpdateMultiple/UpsertMultiple are available on this table."""
    keys: list[AlternateKey] = field(default_factory=list)
    many_to_one: list[Relationship] = field(default_factory=list)
    one_to_many: list[Relationship] = field(default_factory=list)
    many_to_many: list[ManyToMany] = field(default_factory=list)
