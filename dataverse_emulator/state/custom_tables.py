"""The ``--entities FILE`` format: custom tables, extra keys, bulk switches.

The format is documented in ``docs/emulator-entities.md``.

Every custom table gets the system columns Dataverse adds to a new table (primary id and name,
created/modified on and by, state and status, owner, version number...) and the relationships
behind its lookups, named the way Dataverse names them for custom tables.
"""

from __future__ import annotations

import json
import typing as t
import uuid
from dataclasses import replace
from pathlib import Path

from dataverse_emulator.state.catalog import (
    Catalog,
    Column,
    ManyToMany,
    Option,
    Relationship,
    Table,
)
from dataverse_emulator.state.errors import DataverseFault

_NAMESPACE = uuid.UUID("4c1f7d9a-2e6b-5f03-8a41-9b7c2d5e6f10")
_INT32 = (-2_147_483_648, 2_147_483_647)
_BIGINT = (-9_223_372_036_854_775_808, 9_223_372_036_854_775_807)
_MONEY = (-922_337_203_685_477, 922_337_203_685_477)
_DECIMAL = (-100_000_000_000, 100_000_000_000)


class _ReadOnly(t.TypedDict):
    """Column flags of a system column that neither create nor update may set."""

    is_valid_for_create: bool
    is_valid_for_update: bool


_RO: _ReadOnly = {"is_valid_for_create": False, "is_valid_for_update": False}

COLUMN_DEFAULTS: dict[str, dict[str, t.Any]] = {
    "String": {"max_length": 100, "format_name": "Text"},
    "Memo": {"max_length": 2000, "format": "TextArea"},
    "Integer": {"min_value": _INT32[0], "max_value": _INT32[1], "format": "None"},
    "BigInt": {"min_value": _BIGINT[0], "max_value": _BIGINT[1]},
    "Decimal": {"min_value": _DECIMAL[0], "max_value": _DECIMAL[1], "precision": 2},
    "Double": {"min_value": _DECIMAL[0], "max_value": _DECIMAL[1], "precision": 2},
    "Money": {
        "min_value": _MONEY[0],
        "max_value": _MONEY[1],
        "precision": 2,
        "precision_source": 2,
    },
    "DateTime": {"format": "DateAndTime", "datetime_behavior": "UserLocal"},
    "Boolean": {"default_value": False},
    "Picklist": {},
    "MultiSelectPicklist": {},
    "Lookup": {},
    "Customer": {},
    "Uniqueidentifier": {},
}
"""Column types a custom table may declare, with Dataverse's defaults for new columns."""

_COLUMN_FIELDS = frozenset(
    {
        "logical_name",
        "schema_name",
        "type",
        "display_name",
        "required_level",
        "max_length",
        "min_value",
        "max_value",
        "precision",
        "format",
        "format_name",
        "datetime_behavior",
        "targets",
        "options",
        "default_value",
        "relationships",
    }
)
_TABLE_FIELDS = frozenset(
    {
        "logical_name",
        "schema_name",
        "entity_set_name",
        "display_name",
        "display_collection_name",
        "ownership_type",
        "primary_id",
        "primary_name",
        "columns",
        "keys",
        "supports_bulk",
        "many_to_many",
    }
)
_MANY_TO_MANY_FIELDS = frozenset({"target", "schema_name", "intersect_entity", "navigation"})
_REQUIRED_LEVELS = frozenset({"None", "SystemRequired", "ApplicationRequired", "Recommended"})


class EntitiesFileError(ValueError):
    """The entities file is malformed; the message names the file, the place and the fix."""


def load_catalog(entities_file: Path | None = None) -> Catalog:
    """Return the default environment's catalog, plus the tables and keys of ``entities_file``.

    Raises:
        EntitiesFileError: The entities file is invalid.
    """
    catalog = Catalog.load()
    if entities_file is not None:
        apply_entities_file(catalog, entities_file)
    return catalog


def apply_entities_file(catalog: Catalog, path: Path) -> None:
    """Add the custom tables, keys and bulk switches of ``path`` to ``catalog``.

    Raises:
        EntitiesFileError: The file cannot be read or is invalid.
    """
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise EntitiesFileError(f"{path}: cannot read entities file: {exc}") from exc
    where = str(path)
    _expect(isinstance(doc, dict), where, "the top level must be a JSON object")
    unknown = set(doc) - {"comment", "tables", "keys", "supports_bulk"}
    _expect(not unknown, where, f"unknown top-level members {sorted(unknown)}")
    tables = doc.get("tables", [])
    _expect(isinstance(tables, list), where, "'tables' must be a list")
    pending_keys: list[tuple[str, dict[str, t.Any], str]] = []
    for i, raw in enumerate(tables):
        here = f"{where}: tables[{i}]"
        table = build_table(raw, here, catalog)
        try:
            catalog.add_table(table)
        except DataverseFault as exc:
            raise EntitiesFileError(f"{here}: {exc.message}") from exc
        pending_keys += [
            (table.logical_name, k, f"{here}.keys[{j}]") for j, k in enumerate(raw.get("keys", []))
        ]
    for i, raw in enumerate(doc.get("keys", [])):
        here = f"{where}: keys[{i}]"
        _expect(isinstance(raw, dict) and "table" in raw, here, "a key needs a 'table'")
        pending_keys.append((raw["table"], raw, here))
    for table_name, raw, here in pending_keys:
        _add_key(catalog, table_name, raw, here)
    bulk = doc.get("supports_bulk", {})
    _expect(isinstance(bulk, dict), where, "'supports_bulk' must map table names to booleans")
    for name, value in bulk.items():
        _expect(isinstance(value, bool), f"{where}: supports_bulk.{name}", "must be true or false")
        _expect(catalog.has_table(name), f"{where}: supports_bulk.{name}", "no such table")
        catalog.set_supports_bulk(name, value)


KEY_STATES = ("Active", "Pending", "InProgress", "Failed")
"""``EntityKeyIndexStatus`` values (§3.6)."""


def _add_key(catalog: Catalog, table: str, raw: dict[str, t.Any], here: str) -> None:
    _expect(isinstance(raw, dict), here, "a key must be an object")
    _expect(catalog.has_table(table), here, f"no table named '{table}'")
    attributes = raw.get("key_attributes")
    if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
        raise EntitiesFileError(f"{here}: 'key_attributes' must be a list of column logical names")
    _expect(isinstance(raw.get("schema_name"), str), here, "'schema_name' is required")
    status = raw.get("index_status", "Active")
    _expect(status in KEY_STATES, here, f"'index_status' must be one of {', '.join(KEY_STATES)}")
    try:
        catalog.add_key(
            table, raw["schema_name"], attributes, raw.get("display_name"), index_status=status
        )
    except DataverseFault as exc:
        raise EntitiesFileError(f"{here}: {exc.message}") from exc


def build_table(raw: t.Any, here: str, catalog: Catalog) -> Table:
    """Build a custom table (with its system columns and relationships) from its file form."""
    _expect(isinstance(raw, dict), here, "a table must be an object")
    unknown = set(raw) - _TABLE_FIELDS
    _expect(not unknown, here, f"unknown members {sorted(unknown)}")
    name = raw.get("logical_name")
    _expect(
        isinstance(name, str) and "_" in name and name == name.lower(),
        here,
        "'logical_name' must be lower case with a publisher prefix, e.g. 'new_membership'",
    )
    ownership = raw.get("ownership_type", "UserOwned")
    _expect(
        ownership in {"UserOwned", "OrganizationOwned"},
        here,
        "'ownership_type' must be UserOwned or OrganizationOwned",
    )
    schema = raw.get("schema_name", name)
    primary_id = raw.get("primary_id", f"{name}id")
    primary = raw.get("primary_name", {})
    _expect(isinstance(primary, dict), here, "'primary_name' must be an object describing it")
    columns = _system_columns(name, schema, primary_id, primary, ownership)
    for j, col_raw in enumerate(raw.get("columns", [])):
        col_here = f"{here}.columns[{j}]"
        column = _column(name, col_raw, col_here, catalog)
        _expect(column.logical_name not in columns, col_here, "duplicate column")
        columns[column.logical_name] = column
    _add_money_companions(name, columns)
    display = raw.get("display_name", schema)
    table = Table(
        logical_name=name,
        schema_name=schema,
        entity_set_name=raw.get("entity_set_name", f"{name}s"),
        primary_id=primary_id,
        primary_name=primary.get("logical_name", f"{name.split('_', 1)[0]}_name"),
        columns=columns,
        metadata_id=_id(name),
        display_name=display,
        display_collection_name=raw.get("display_collection_name", f"{display}s"),
        logical_collection_name=raw.get("entity_set_name", f"{name}s"),
        collection_schema_name=f"{schema}s",
        ownership_type=ownership,
        is_custom=True,
        supports_bulk=raw.get("supports_bulk", True),
    )
    _expect(isinstance(table.supports_bulk, bool), here, "'supports_bulk' must be true or false")
    primary_ids = {target: _primary_id(catalog, table, target) for target in _targets(table)}
    table.many_to_one = _relationships(table, raw.get("columns", []), primary_ids)
    table.many_to_many = _many_to_many(table, raw.get("many_to_many", []), here, catalog)
    return table


def _many_to_many(table: Table, raw: t.Any, here: str, catalog: Catalog) -> list[ManyToMany]:
    """Build the table's many-to-many relationships (the table is Entity1, the target Entity2)."""
    _expect(isinstance(raw, list), here, "'many_to_many' must be a list")
    found = []
    for i, item in enumerate(raw):
        where = f"{here}.many_to_many[{i}]"
        _expect(isinstance(item, dict), where, "a many-to-many relationship must be an object")
        unknown = set(item) - _MANY_TO_MANY_FIELDS
        _expect(not unknown, where, f"unknown members {sorted(unknown)}")
        target = item.get("target")
        _expect(
            isinstance(target, str) and catalog.has_table(target) and target != table.logical_name,
            where,
            "'target' must name another table already loaded (standard or earlier in the file)",
        )
        schema = item.get("schema_name") or f"{table.logical_name}_{target}"
        navigation = item.get("navigation") or schema
        found.append(
            ManyToMany(
                schema_name=schema,
                intersect_entity=item.get("intersect_entity") or schema.lower(),
                entity1=table.logical_name,
                entity1_intersect_attribute=table.primary_id,
                entity1_navigation=navigation,
                entity2=target,
                entity2_intersect_attribute=catalog.table(target).primary_id,
                entity2_navigation=navigation,
                metadata_id=_id(f"relationship/{schema}"),
            )
        )
    return found


def _column(table: str, raw: t.Any, here: str, catalog: Catalog) -> Column:
    _expect(isinstance(raw, dict), here, "a column must be an object")
    unknown = set(raw) - _COLUMN_FIELDS
    _expect(not unknown, here, f"unknown members {sorted(unknown)}")
    name = raw.get("logical_name")
    _expect(isinstance(name, str) and name == name.lower(), here, "'logical_name' (lower case)")
    kind = raw.get("type")
    _expect(kind in COLUMN_DEFAULTS, here, f"'type' must be one of {sorted(COLUMN_DEFAULTS)}")
    level = raw.get("required_level", "None")
    _expect(
        level in _REQUIRED_LEVELS,
        here,
        f"'required_level' must be one of {sorted(_REQUIRED_LEVELS)}",
    )
    fields = {**COLUMN_DEFAULTS[kind], **{k: v for k, v in raw.items() if k != "relationships"}}
    fields["schema_name"] = raw.get("schema_name", name)
    fields["targets"] = tuple(raw.get("targets", ()))
    if kind in {"Lookup", "Customer"}:
        _expect(bool(fields["targets"]), here, "a lookup needs 'targets'")
        _expect(
            kind == "Customer" or len(fields["targets"]) == 1,
            here,
            "a Lookup has exactly one target (use type Customer for account + contact)",
        )
        for target in fields["targets"]:
            _expect(catalog.has_table(target) or target == table, here, f"no table '{target}'")
    if kind in {"Picklist", "MultiSelectPicklist"}:
        options = raw.get("options")
        _expect(isinstance(options, list) and options, here, "a choice column needs 'options'")
    try:
        fields["options"] = tuple(Option(**o) for o in raw.get("options", ()))
        if kind == "Boolean" and not fields["options"]:
            fields["options"] = (Option(1, "Yes"), Option(0, "No"))
        return Column(**fields, metadata_id=_id(f"{table}/{name}"), is_custom=True)
    except TypeError as exc:
        raise EntitiesFileError(f"{here}: {exc}") from exc


def _system_columns(
    table: str, schema: str, primary_id: str, primary: dict[str, t.Any], ownership: str
) -> dict[str, Column]:
    prefix = table.split("_", 1)[0]
    name = primary.get("logical_name", f"{prefix}_name")
    read_only = _RO
    cols = [
        Column(primary_id, f"{schema}Id", "Uniqueidentifier", display_name=schema,
               required_level="SystemRequired", is_valid_for_update=False, is_primary_id=True),
        Column(name, primary.get("schema_name", name), "String",
               display_name=primary.get("display_name", "Name"),
               required_level=primary.get("required_level", "None"),
               max_length=primary.get("max_length", 100), format_name="Text",
               is_primary_name=True, is_custom=True),
        Column("createdon", "CreatedOn", "DateTime", "Created On", format="DateAndTime",
               datetime_behavior="UserLocal", **read_only),
        Column("modifiedon", "ModifiedOn", "DateTime", "Modified On", format="DateAndTime",
               datetime_behavior="UserLocal", **read_only),
        Column("overriddencreatedon", "OverriddenCreatedOn", "DateTime", "Record Created On",
               format="DateOnly", datetime_behavior="UserLocal", is_valid_for_update=False),
        Column("createdby", "CreatedBy", "Lookup", "Created By", targets=("systemuser",),
               **read_only),
        Column("modifiedby", "ModifiedBy", "Lookup", "Modified By", targets=("systemuser",),
               **read_only),
        Column("createdonbehalfby", "CreatedOnBehalfBy", "Lookup", "Created By (Delegate)",
               targets=("systemuser",), **read_only),
        Column("modifiedonbehalfby", "ModifiedOnBehalfBy", "Lookup", "Modified By (Delegate)",
               targets=("systemuser",), **read_only),
        Column("statecode", "statecode", "State", "Status", required_level="SystemRequired",
               is_valid_for_create=False,
               options=(Option(0, "Active", default_status=1, invariant_name="Active"),
                        Option(1, "Inactive", default_status=2, invariant_name="Inactive"))),
        Column("statuscode", "statuscode", "Status", "Status Reason",
               options=(Option(1, "Active", state=0), Option(2, "Inactive", state=1))),
        Column("versionnumber", "VersionNumber", "BigInt", "Version Number",
               min_value=_BIGINT[0], max_value=_BIGINT[1], **read_only),
        Column("importsequencenumber", "ImportSequenceNumber", "Integer", "Import Sequence Number",
               min_value=_INT32[0], max_value=_INT32[1], format="None", is_valid_for_update=False),
        Column("timezoneruleversionnumber", "TimeZoneRuleVersionNumber", "Integer",
               "Time Zone Rule Version Number", min_value=-1, max_value=_INT32[1], format="None"),
        Column("utcconversiontimezonecode", "UTCConversionTimeZoneCode", "Integer",
               "UTC Conversion Time Zone Code", min_value=-1, max_value=_INT32[1], format="None"),
    ]  # fmt: skip
    if ownership == "UserOwned":
        cols += [
            Column("ownerid", "OwnerId", "Owner", "Owner", required_level="SystemRequired",
                   targets=("systemuser", "team")),
            Column("owneridtype", "OwnerIdType", "EntityName", required_level="SystemRequired",
                   attribute_of="ownerid"),
            Column("owningbusinessunit", "OwningBusinessUnit", "Lookup", "Owning Business Unit",
                   targets=("businessunit",), **read_only),
            Column("owninguser", "OwningUser", "Lookup", "Owning User", targets=("systemuser",),
                   **read_only),
            Column("owningteam", "OwningTeam", "Lookup", "Owning Team", targets=("team",),
                   **read_only),
        ]  # fmt: skip
    else:
        cols.append(
            Column("organizationid", "OrganizationId", "Lookup", "Organization Id",
                   targets=("organization",), **read_only)
        )  # fmt: skip
    return {c.logical_name: replace(c, metadata_id=_id(f"{table}/{c.logical_name}")) for c in cols}


def _add_money_companions(table: str, columns: dict[str, Column]) -> None:
    money = [c for c in columns.values() if c.type == "Money" and c.is_custom]
    if not money:
        return
    extra = [
        Column("transactioncurrencyid", "TransactionCurrencyId", "Lookup", "Currency",
               targets=("transactioncurrency",)),
        Column("exchangerate", "ExchangeRate", "Decimal", "Exchange Rate", precision=10,
               min_value=0.000000000001, max_value=100_000_000_000, **_RO),
    ]  # fmt: skip
    extra += [
        Column(f"{c.logical_name}_base", f"{c.schema_name}_Base", "Money",
               f"{c.display_name or c.schema_name} (Base)", min_value=_MONEY[0],
               max_value=_MONEY[1], precision=4, precision_source=2,
               attribute_of=c.logical_name, **_RO)
        for c in money
    ]  # fmt: skip
    for column in extra:
        if column.logical_name not in columns:
            columns[column.logical_name] = replace(
                column, metadata_id=_id(f"{table}/{column.logical_name}")
            )


_SYSTEM_RELATIONSHIPS = (
    ("createdby", "systemuser", "systemuserid", "lk_{t}_createdby"),
    ("modifiedby", "systemuser", "systemuserid", "lk_{t}_modifiedby"),
    ("createdonbehalfby", "systemuser", "systemuserid", "lk_{t}_createdonbehalfby"),
    ("modifiedonbehalfby", "systemuser", "systemuserid", "lk_{t}_modifiedonbehalfby"),
    ("owninguser", "systemuser", "systemuserid", "user_{t}"),
    ("owningteam", "team", "teamid", "team_{t}"),
    ("owningbusinessunit", "businessunit", "businessunitid", "business_unit_{t}"),
    ("ownerid", "owner", "ownerid", "owner_{t}"),
    ("organizationid", "organization", "organizationid", "organization_{t}"),
    (
        "transactioncurrencyid",
        "transactioncurrency",
        "transactioncurrencyid",
        "TransactionCurrency_{t}",
    ),
)


def _targets(table: Table) -> set[str]:
    return {target for column in table.columns.values() for target in column.targets}


def _primary_id(catalog: Catalog, table: Table, target: str) -> str:
    if target == table.logical_name:
        return table.primary_id
    return catalog.table(target).primary_id if catalog.has_table(target) else f"{target}id"


def _relationships(
    table: Table, raw_columns: list[dict[str, t.Any]], primary_ids: dict[str, str]
) -> list[Relationship]:
    rels = []
    for attr, target, target_id, pattern in _SYSTEM_RELATIONSHIPS:
        if attr not in table.columns:
            continue
        navigation = "TransactionCurrencyId" if attr == "transactioncurrencyid" else attr
        names = (pattern.format(t=table.logical_name), navigation, None)
        rels.append(_rel(table, attr, (target, target_id), names))
    for raw in raw_columns:
        column = table.columns[raw["logical_name"]]
        if column.type not in {"Lookup", "Customer"}:
            continue
        overrides = {r.get("target"): r for r in raw.get("relationships", [])}
        for target in column.targets:
            given = overrides.get(target, {})
            multi = len(column.targets) > 1
            schema = given.get("schema_name") or (
                f"{table.logical_name}_{column.logical_name}_{target}"
            )
            navigation = given.get("navigation") or (
                f"{column.schema_name}_{target}" if multi else column.schema_name
            )
            names = (schema, navigation, given.get("referenced_navigation"))
            rels.append(_rel(table, column.logical_name, (target, primary_ids[target]), names))
    return rels


def _rel(
    table: Table,
    attr: str,
    referenced: tuple[str, str],
    names: tuple[str, str, str | None],
) -> Relationship:
    """Build a many-to-one relationship; ``names`` = (SchemaName, navigation, referenced nav)."""
    schema, navigation, referenced_navigation = names
    return Relationship(
        schema_name=schema,
        referenced_entity=referenced[0],
        referenced_attribute=referenced[1],
        referencing_entity=table.logical_name,
        referencing_attribute=attr,
        referencing_navigation=navigation,
        referenced_navigation=referenced_navigation or schema,
        metadata_id=_id(f"relationship/{schema}"),
        cascade={
            "Assign": "NoCascade",
            "Delete": "RemoveLink",
            "Merge": "NoCascade",
            "Reparent": "NoCascade",
            "Share": "NoCascade",
            "Unshare": "NoCascade",
        },
    )


def _id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def _expect(condition: object, where: str, message: str) -> None:
    if not condition:
        raise EntitiesFileError(f"{where}: {message}")
