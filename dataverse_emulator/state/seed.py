"""Seed the store from a snapshot-shaped document (``dataverse-emulator --seed-data FILE``).

The document is what ``GET /_emulator/snapshot`` returns: ``{"<table>": [row, ...], ...}``. Each
row goes through the store's normal create path (values, keys, record rules, uniqueness), so a
seed file obeys the same rules as a client would. Read-only columns the platform stamps
(``createdon``, ``versionnumber``, computed names, ...) are dropped, unknown names refused; a
lookup column with its ``@lookuplogicalname`` becomes an ``@odata.bind``; a row in a
non-default state is created and then moved to its state by an update. Rows whose primary id
is already stored (the start-up organization, business unit, currency and users of the same
``--seed``) are left as they are.

Many-to-many associations load after every table, as the Web API would make them: ``listmember``
rows (``listid``, ``entityid``, ``entitytype``) through AddMemberList, so ``membercount`` follows
(a new ``listmemberid`` is given), and the pairs the snapshot holds under an intersect entity's
name (``"contactleads": [{"contactid": …, "leadid": …}]``) through Associate (`Associate and
disassociate table rows using the Web API
<https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api>`_).
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state import associations, collation, lists
from dataverse_emulator.state.catalog import ManyToMany
from dataverse_emulator.state.schema import CREATE, Reference
from dataverse_emulator.state.store import TARGET
from dataverse_emulator.state.values import LOOKUP_TYPES

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import Catalog
    from dataverse_emulator.state.environment import Environment
    from dataverse_emulator.state.schema import TableSchema

_STATE = ("statecode", "statuscode")


def load_rows(env: Environment, document: t.Any) -> int:
    """Create the document's rows in ``env``, table by table in document order.

    Keys compare as the environment's collation does (§3.10).

    A row's lookups must point at rows stored before it (earlier in the file, or start-up rows).

    Returns:
        How many rows were created.

    Raises:
        ValueError: if the document is not ``{"table": [row, ...]}`` or names an unknown table.
        DataverseFault: if a row is refused, as the Web API would refuse it.
    """
    if not isinstance(document, dict) or not all(
        isinstance(rows, list) and all(isinstance(row, dict) for row in rows)
        for rows in document.values()
    ):
        msg = 'expected {"<table logical name>": [{row}, ...], ...}, as /_emulator/snapshot returns'
        raise ValueError(msg)
    pairs = _intersects(env.catalog)
    for table in document:
        if not env.catalog.has_table(table) and table not in pairs:
            msg = f"unknown table '{table}' (not in the catalog; add it with --entities)"
            raise ValueError(msg)
    with collation.language(env.language_code):
        return _load(env, document, pairs)


def _load(env: Environment, document: dict[str, t.Any], pairs: dict[str, ManyToMany]) -> int:
    created = 0
    for table, rows in document.items():
        if table != lists.LISTMEMBER and table not in pairs:
            created += _load_table(env, table, rows)
    for table, rows in document.items():
        if table == lists.LISTMEMBER:
            created += _load_members(env, rows)
        elif table in pairs:
            created += _load_pairs(env, pairs[table], rows)
    return created


def _load_table(env: Environment, table: str, rows: list[dict[str, t.Any]]) -> int:
    schema = env.store.schema(table)
    primary = env.catalog.table(table).primary_id
    created = 0
    for row in rows:
        if row.get(primary) is not None and env.store.find(table, row[primary]) is not None:
            continue
        body, state = _create_body(env, schema, row)
        stored = env.store.create(table, body)
        if state:
            env.store.update(table, stored[primary], state)
        created += 1
    return created


def _intersects(catalog: Catalog) -> dict[str, ManyToMany]:
    """Many-to-many relationships by intersect entity, where that is no catalog table."""
    return {
        rel.intersect_entity: rel
        for rel in catalog.relationships()
        if isinstance(rel, ManyToMany)
        and rel.intersect_entity != lists.LISTMEMBER
        and not catalog.has_table(rel.intersect_entity)
    }


def _texts(row: dict[str, t.Any], names: t.Sequence[str], what: str) -> list[str]:
    """The string values of ``names`` in ``row``; ValueError naming them when one is not."""
    values = [row.get(name) for name in names]
    texts = [value for value in values if isinstance(value, str)]
    if len(texts) != len(names):
        msg = f"{what} needs {' and '.join(repr(name) for name in names)}"
        raise ValueError(msg)
    return texts


def _load_members(env: Environment, rows: list[dict[str, t.Any]]) -> int:
    """List memberships, as AddMemberList makes them (the list and member must be stored)."""
    for row in rows:
        listid, entitytype, entityid = _texts(
            row, ("listid", "entitytype", "entityid"), "a listmember row"
        )
        lists.add_member(env.store, listid, entitytype, entityid, caller=None)
    return len(rows)


def _load_pairs(env: Environment, m2m: ManyToMany, rows: list[dict[str, t.Any]]) -> int:
    """Associated pairs of one many-to-many relationship, as Associate makes them."""
    navigation = associations.Navigation(m2m, m2m.entity1, m2m.entity2)
    names = (m2m.entity1_intersect_attribute, m2m.entity2_intersect_attribute)
    for row in rows:
        first, second = _texts(row, names, f"a {m2m.intersect_entity} row")
        associations.associate(env.store, navigation, first, second, None)
    return len(rows)


def _create_body(
    env: Environment, schema: TableSchema, row: dict[str, t.Any]
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """Split a stored row into a create body and the state to apply afterwards."""
    columns = schema.table.columns
    writable = schema.writable[CREATE]
    body: dict[str, t.Any] = {}
    for name, value in row.items():
        column = columns.get(name)
        if column is not None and column.type in LOOKUP_TYPES:
            if value is not None and column.is_valid_for_create:
                target = env.catalog.table(row[name + TARGET])
                body[f"{_navigation(schema, name, target.logical_name)}@odata.bind"] = Reference(
                    target.entity_set_name, value
                )
        elif name in writable and name not in _STATE:
            body[name] = value
        elif column is None and not _is_lookup_target(schema, name):
            body[name] = value  # unknown: the create path refuses it, naming it
    default = columns["statecode"].options[0].value if "statecode" in columns else None
    if row.get("statecode", default) != default:
        return body, {name: row[name] for name in _STATE if name in row}
    if row.get("statuscode") is not None:
        body["statuscode"] = row["statuscode"]
    return body, {}


def _is_lookup_target(schema: TableSchema, name: str) -> bool:
    """Whether ``name`` is a lookup column's ``@lookuplogicalname`` annotation."""
    column = schema.table.columns.get(name.removesuffix(TARGET))
    return name.endswith(TARGET) and column is not None and column.type in LOOKUP_TYPES


def _navigation(schema: TableSchema, column: str, target: str) -> str:
    """The single-valued navigation property that binds ``column`` to a ``target`` row."""
    for navigation, (nav_column, targets) in schema.navigations.items():
        if nav_column.logical_name == column and target in targets:
            return navigation
    msg = f"no navigation property binds {schema.table.logical_name}.{column} to {target}"
    raise ValueError(msg)
