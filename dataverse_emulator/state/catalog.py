"""The metadata model: tables, columns, alternate keys and relationships.

These are the facts that every other room reads. ``wire`` renders them as EntityMetadata /
AttributeMetadata JSON; the record store validates values against them.
"""

from __future__ import annotations

import functools
import json
import typing as t
import uuid
from dataclasses import dataclass, field, replace
from importlib import resources

from dataverse_emulator.state.error_catalogue import (
    invalid_argument,
    relationship_not_found,
    segment_not_found,
    table_exists,
    table_not_found,
    undeclared_annotation,
)


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of a Picklist, State, Status, MultiSelectPicklist or Boolean column."""

    value: int
    label: str
    state: int | None = None
    """For Status options: the statecode value the option belongs to."""
    default_status: int | None = None
    """For State options: the default statuscode of that state."""
    invariant_name: str | None = None
    """For State options: the language-independent name (``Active``)."""


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
    precision_source: int | None = None
    """Money columns: 0 = Precision, 1 = organization pricing precision, 2 = currency precision."""
    is_logical: bool = False
    global_option_set: str | None = None
    """Choice columns: the name of the global choice (OptionSetMetadata) whose options they
    use; None for a choice of their own (Microsoft Learn, "GlobalChoiceName" in the table
    references; the default environment's are in ``data/default-environment.json``)."""


CHOICE_TYPES = frozenset({"Picklist", "State", "Status", "MultiSelectPicklist", "Boolean"})
"""Column types with a Virtual ``<column>name`` label column (:func:`with_name_columns`)."""


def with_name_columns(columns: dict[str, Column], table: str) -> dict[str, Column]:
    """Add the Virtual ``<choice>name`` column of every choice column that lacks one.

    Dataverse lists, after each choice or Yes/No column, a Virtual column holding its label
    (``gendercodename``, ``statecodename``): AttributeOf the choice, never a Web API property,
    read-only. They are appended, so the other columns keep their ColumnNumber.
    """
    out = dict(columns)
    for column in columns.values():
        name = f"{column.logical_name}name"
        if column.type not in CHOICE_TYPES or name in out:
            continue
        out[name] = Column(
            logical_name=name,
            schema_name=f"{column.schema_name}Name",
            type="Virtual",
            metadata_id=str(uuid.uuid5(_NAME_COLUMN_NAMESPACE, f"{table}/{name}")),
            is_valid_for_create=False,
            is_valid_for_update=False,
            is_custom=column.is_custom,
            attribute_of=column.logical_name,
            is_logical=True,
        )
    return out


_NAME_COLUMN_NAMESPACE = uuid.UUID("5c1e0a7d-3f42-5b9e-8d61-4a2f7c9e0b13")


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
    primary_image: str | None = None
    supports_bulk: bool = True
    """Whether CreateMultiple/UpdateMultiple/UpsertMultiple are available on this table."""
    keys: list[AlternateKey] = field(default_factory=list)
    many_to_one: list[Relationship] = field(default_factory=list)
    one_to_many: list[Relationship] = field(default_factory=list)
    many_to_many: list[ManyToMany] = field(default_factory=list)
    views: dict[str, t.Any] = field(default_factory=dict, compare=False, repr=False)
    """Derived views other rooms build from this table (e.g. wire's row renderer), so they live
    and die with the table instead of in a module-level cache."""


KEY_COLUMN_TYPES = frozenset({"Decimal", "Integer", "String", "DateTime", "Lookup", "Picklist"})
"""Column types an alternate key may use (§3.6)."""
MAX_KEY_COLUMNS = 16
MAX_KEYS_PER_TABLE = 10

_DATA = "dataverse_emulator.data"


class Catalog:
    """All tables of one environment, indexed for O(1) lookups.

    Build one with :meth:`load`; tables, keys and relationships are the emulator's metadata.
    Alternate keys added with :meth:`add_key` only change this catalog, never the cached default.
    """

    def __init__(self, tables: t.Iterable[Table]) -> None:
        self._tables: dict[str, Table] = {}
        self._by_set: dict[str, Table] = {}
        self._by_id: dict[str, Table] = {}
        self._bind: dict[tuple[str, str], Relationship] = {}
        self._lookups: dict[tuple[str, str], list[Relationship]] = {}
        self._relationships: dict[str, Relationship | ManyToMany] = {}
        self._relationships_by_id: dict[str, Relationship | ManyToMany] = {}
        for table in tables:
            table.columns = with_name_columns(table.columns, table.logical_name)
            self._tables[table.logical_name] = table
            self._by_set[table.entity_set_name] = table
            self._by_id[table.metadata_id.lower()] = table
        for table in self._tables.values():
            self._index_table(table)

    def _index_table(self, table: Table) -> None:
        for rel in table.many_to_one:
            if rel.referencing_navigation is not None:
                self._bind.setdefault((table.logical_name, rel.referencing_navigation), rel)
            self._lookups.setdefault((table.logical_name, rel.referencing_attribute), []).append(
                rel
            )
        every: list[Relationship | ManyToMany] = [
            *table.many_to_one,
            *table.one_to_many,
            *table.many_to_many,
        ]
        for each in every:
            self._relationships.setdefault(each.schema_name, each)
            if each.metadata_id:
                self._relationships_by_id.setdefault(each.metadata_id.lower(), each)

    @classmethod
    def load(cls) -> Catalog:
        """Return a fresh catalog of the default environment (custom tables: ``load_catalog``).

        The packaged table files are parsed once per process; every call copies the parsed
        tables (cheap), so catalogs never share mutable state.

        Raises:
            EntitiesFileError: The entities file is invalid.
        """
        tables = [_copy(table) for table in _default_tables()]
        choices = _default_environment()["global_choices"]
        for table in tables:
            for column, name in choices.get(table.logical_name, {}).items():
                table.columns[column] = replace(table.columns[column], global_option_set=name)
        catalog = cls(tables)
        for key in _default_environment()["keys"]:
            catalog.add_key(
                key["table"],
                key["schema_name"],
                key["key_attributes"],
                key.get("display_name"),
                metadata_id=key.get("metadata_id"),
            )
        return catalog

    def tables(self) -> list[Table]:
        """Return every table, in load order."""
        return list(self._tables.values())

    def has_table(self, logical_name: str) -> bool:
        """Whether a table with this logical name exists."""
        return logical_name in self._tables

    def table(self, logical_name: str) -> Table:
        """Return the table called ``logical_name``.

        Raises:
            DataverseFault: 404 ``0x80040217`` with the SDK's "Could not find an entity" text,
                the emulator's choice for an unknown ``EntityDefinitions(LogicalName=...)``
                (§3.7, §11 #7).
        """
        try:
            return self._tables[logical_name]
        except KeyError:
            raise table_not_found(logical_name) from None

    def table_by_id(self, metadata_id: str) -> Table:
        """Return the table whose MetadataId is ``metadata_id`` (any case).

        Raises:
            DataverseFault: 404, as :meth:`table`.
        """
        try:
            return self._by_id[metadata_id.lower()]
        except KeyError:
            raise table_not_found(metadata_id, by_id=True) from None

    def table_by_set(self, entity_set: str) -> Table:
        """Return the table whose EntitySetName is ``entity_set`` (case-sensitive, §2.1).

        Raises:
            DataverseFault: 404 ``0x80060888`` "Resource not found for the segment '<x>'." (§4.9).
        """
        try:
            return self._by_set[entity_set]
        except KeyError:
            raise segment_not_found(entity_set) from None

    def bind_target(self, table: str, navigation_property: str) -> Relationship:
        """Return the many-to-one relationship behind ``<navigation_property>@odata.bind``.

        The name is case-sensitive (§0.5). For an Owner column the relationship's
        ``referenced_entity`` is ``owner``; :meth:`targets_of` lists the tables it accepts.

        Raises:
            DataverseFault: 400 ``0x0`` "An undeclared property ..." (§4.7).
        """
        try:
            return self._bind[(table, navigation_property)]
        except KeyError:
            raise undeclared_annotation(navigation_property) from None

    def lookup_column(self, table: str, column: str) -> list[Relationship]:
        """Return the many-to-one relationships of a lookup column (empty if it is none)."""
        return self._lookups.get((table, column), [])

    def targets_of(self, relationship: Relationship) -> tuple[str, ...]:
        """Return the tables a relationship accepts: the column's targets for ``owner``."""
        if relationship.referenced_entity != "owner":
            return (relationship.referenced_entity,)
        table = self._tables.get(relationship.referencing_entity)
        column = table.columns.get(relationship.referencing_attribute) if table else None
        return column.targets if column is not None else ("systemuser", "team")

    def relationship(self, schema_name: str) -> Relationship | ManyToMany:
        """Return a relationship by SchemaName.

        Raises:
            DataverseFault: 404 ``0x80040217`` when there is none.
        """
        try:
            return self._relationships[schema_name]
        except KeyError:
            raise relationship_not_found(schema_name) from None

    def relationship_by_id(self, metadata_id: str) -> Relationship | ManyToMany:
        """Return a relationship by MetadataId (any case).

        Raises:
            DataverseFault: 404 ``0x80040217`` when there is none.
        """
        try:
            return self._relationships_by_id[metadata_id.lower()]
        except KeyError:
            raise relationship_not_found(metadata_id) from None

    def relationships(self) -> list[Relationship | ManyToMany]:
        """Return every relationship once."""
        return list(self._relationships.values())

    def add_table(self, table: Table) -> None:
        """Add a (custom) table and register its relationships on both sides.

        Raises:
            DataverseFault: 400 when the logical or entity set name is taken.
        """
        if table.logical_name in self._tables or table.entity_set_name in self._by_set:
            raise table_exists(table)
        table.columns = with_name_columns(table.columns, table.logical_name)
        self._tables[table.logical_name] = table
        self._by_set[table.entity_set_name] = table
        self._by_id[table.metadata_id.lower()] = table
        for rel in table.many_to_one:
            referenced = self._tables.get(rel.referenced_entity)
            if referenced is not None and referenced is not table:
                referenced.one_to_many.append(rel)
        for m2m in table.many_to_many:
            other = m2m.entity2 if m2m.entity1 == table.logical_name else m2m.entity1
            if other in self._tables and other != table.logical_name:
                self._tables[other].many_to_many.append(m2m)
        self._index_table(table)

    def add_key(  # noqa: PLR0913 - keyword-only options
        self,
        logical_name: str,
        schema_name: str,
        key_attributes: t.Sequence[str],
        display_name: str | None = None,
        *,
        metadata_id: str | None = None,
        index_status: str = "Active",
    ) -> AlternateKey:
        """Define an alternate key (``POST .../Keys``, §3.6); Active at once unless told.

        ``index_status`` holds the key in a state of its lifecycle (``Pending``,
        ``InProgress``, ``Failed``): only an ``Active`` key is enforced and addressable.

        Raises:
            DataverseFault: 404 for an unknown table; 400 ``0x80040203`` when a column is
                unknown or of a type keys cannot use, there are more than 16 columns, the table
                already has 10 keys, or the SchemaName is taken.
        """
        table = self.table(logical_name)
        _check_key(table, schema_name, key_attributes)
        key = AlternateKey(
            logical_name=schema_name.lower(),
            schema_name=schema_name,
            key_attributes=tuple(key_attributes),
            metadata_id=metadata_id
            or str(uuid.uuid5(_KEY_NAMESPACE, f"{logical_name}/{schema_name}")),
            display_name=display_name,
            index_status=index_status,
        )
        table.keys.append(key)
        return key

    def set_supports_bulk(self, logical_name: str, supported: bool) -> None:
        """Switch CreateMultiple/UpdateMultiple/UpsertMultiple on or off for a table."""
        self.table(logical_name).supports_bulk = supported


_KEY_NAMESPACE = uuid.UUID("0f6d3c52-1b8e-5a4f-9d2c-7e5a1b3c9f80")


def _check_key(table: Table, schema_name: str, key_attributes: t.Sequence[str]) -> None:
    if not schema_name:
        raise invalid_argument("The SchemaName of an alternate key must not be empty.")
    if any(k.schema_name.lower() == schema_name.lower() for k in table.keys):
        raise invalid_argument(
            f"An alternate key named '{schema_name}' already exists on '{table.logical_name}'."
        )
    if len(table.keys) >= MAX_KEYS_PER_TABLE:
        raise invalid_argument(
            f"The table '{table.logical_name}' already has {MAX_KEYS_PER_TABLE} alternate keys."
        )
    if not key_attributes or len(key_attributes) > MAX_KEY_COLUMNS:
        raise invalid_argument(f"An alternate key needs 1 to {MAX_KEY_COLUMNS} columns.")
    if len(set(key_attributes)) != len(key_attributes):
        raise invalid_argument("An alternate key cannot name a column twice.")
    for name in key_attributes:
        column = table.columns.get(name)
        if column is None:
            raise invalid_argument(f"The column '{name}' does not exist on '{table.logical_name}'.")
        if column.type not in KEY_COLUMN_TYPES:
            allowed = ", ".join(sorted(KEY_COLUMN_TYPES))
            raise invalid_argument(
                f"The column '{name}' is of type {column.type}; alternate key columns must be "
                f"one of {allowed}."
            )


def _copy(table: Table) -> Table:
    return replace(
        table,
        columns=dict(table.columns),
        keys=list(table.keys),
        many_to_one=list(table.many_to_one),
        one_to_many=list(table.one_to_many),
        many_to_many=list(table.many_to_many),
        views={},
    )


@functools.cache
def _default_environment() -> dict[str, t.Any]:
    text = resources.files(_DATA).joinpath("default-environment.json").read_text("utf-8")
    environment: dict[str, t.Any] = json.loads(text)
    return environment


@functools.cache
def _default_tables() -> tuple[Table, ...]:
    bulk = _default_environment()["supports_bulk"]
    folder = resources.files(_DATA).joinpath("tables")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".json")), key=lambda f: f.name)
    tables = []
    for item in files:
        table = table_from_dict(json.loads(item.read_text("utf-8")))
        table.supports_bulk = bulk.get(table.logical_name, True)
        tables.append(table)
    # The organization table is not built from the table facts (data/organization.json).
    organization = json.loads(resources.files(_DATA).joinpath("organization.json").read_text())
    del organization["comment"]
    table = table_from_dict(organization)
    table.supports_bulk = False
    tables.append(table)
    return tuple(tables)


def table_from_dict(doc: dict[str, t.Any]) -> Table:
    """Build a :class:`Table` from the document format of ``data/tables/*.json``."""
    fields = dict(doc)
    fields["columns"] = {c["logical_name"]: column_from_dict(c) for c in doc["columns"]}
    fields["keys"] = [
        AlternateKey(**{**k, "key_attributes": tuple(k["key_attributes"])})
        for k in doc.get("keys", [])
    ]
    fields["many_to_one"] = [Relationship(**r) for r in doc.get("many_to_one", [])]
    fields["one_to_many"] = [Relationship(**r) for r in doc.get("one_to_many", [])]
    fields["many_to_many"] = [ManyToMany(**r) for r in doc.get("many_to_many", [])]
    return Table(**fields)


def column_from_dict(doc: dict[str, t.Any]) -> Column:
    """Build a :class:`Column` from its document form."""
    fields = dict(doc)
    fields["targets"] = tuple(doc.get("targets", ()))
    fields["options"] = tuple(Option(**o) for o in doc.get("options", ()))
    return Column(**fields)
