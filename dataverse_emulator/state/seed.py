"""Seed the store from a snapshot-shaped document (``dataverse-emulator --seed-data FILE``).

The document is what ``GET /_emulator/snapshot`` returns: ``{"<table>": [row, ...], ...}``. Each
row goes through the store's normal create path (values, keys, record rules, uniqueness), so a
seed file obeys the same rules as a client would. Read-only columns the platform stamps
(``createdon``, ``versionnumber``, computed names, ...) are dropped, unknown names refused; a
lookup column with its ``@lookuplogicalname`` becomes an ``@odata.bind``; a row in a
non-default state is created and then moved to its state by an update. Rows whose primary id
is already stored (the start-up organization, business unit, currency and users of the same
``--seed``) are left as they are.
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state.schema import CREATE, Reference
from dataverse_emulator.state.store import TARGET
from dataverse_emulator.state.values import LOOKUP_TYPES

if t.TYPE_CHECKING:
    from dataverse_emulator.state.environment import Environment
    from dataverse_emulator.state.schema import TableSchema

_STATE = ("statecode", "statuscode")


def load_rows(env: Environment, document: t.Any) -> int:
    """Create the document's rows in ``env``, table by table in document order.

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
    created = 0
    for table, rows in document.items():
        if not env.catalog.has_table(table):
            msg = f"unknown table '{table}' (not in the catalog; add it with --entities)"
            raise ValueError(msg)
        schema = env.store.schema(table)
        primary = env.catalog.table(table).primary_id
        for row in rows:
            if row.get(primary) is not None and env.store.find(table, row[primary]) is not None:
                continue
            body, state = _create_body(env, schema, row)
            stored = env.store.create(table, body)
            if state:
                env.store.update(table, stored[primary], state)
            created += 1
    return created


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
