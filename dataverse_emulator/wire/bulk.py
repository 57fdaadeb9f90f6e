"""Bulk messages: CreateMultiple, UpdateMultiple, UpsertMultiple on standard tables (§6).

Every request runs in one store transaction: one bad target fails the whole request with that
target's error and rolls back the others (§6.5, standard tables). DeleteMultiple answers, as on
every standard table, "DeleteMultiple has not yet been implemented." (§6.4).

Unsupported: elastic tables (DeleteMultiple, partial success; §6.4, §6.5).
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state import collation
from dataverse_emulator.state.error_catalogue import (
    NAMESPACE,
    OBJECT_DOES_NOT_EXIST,
    bulk_not_supported,
    bulk_target_type_mismatch,
    bulk_update_needs_id,
    delete_multiple_not_implemented,
    duplicate_record,
    parameter_missing,
    payload_error,
    rows_not_found,
    syntax_error,
    unexpected_error,
    unresolved_type,
    untyped_resource,
)
from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.wire.call import Call, empty_response, json_response
from dataverse_emulator.wire.codec import InvalidJsonError, loads
from dataverse_emulator.wire.rows import plain_key, prepare
from dataverse_emulator.wire.segments import PathSyntaxError, parse_bind

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Response
    from dataverse_emulator.state.catalog import Catalog, Table

MESSAGES = frozenset({"CreateMultiple", "UpdateMultiple", "UpsertMultiple", "DeleteMultiple"})
_TYPE = "@odata.type"


def handle(call: Call, table: Table, message: str) -> Response:
    """Run ``POST /{set}/Microsoft.Dynamics.CRM.<message>``.

    Returns:
        CreateMultiple: 200 with ``Ids`` in request order; UpdateMultiple / UpsertMultiple: 204.

    Raises:
        DataverseFault: the first failing target's error (nothing is written), a missing or
            wrong ``@odata.type``, an unsupported table (§6.5), or DeleteMultiple (§6.4).
    """
    if not table.supports_bulk:
        raise bulk_not_supported(message, table)
    if message == "DeleteMultiple":
        raise delete_multiple_not_implemented()
    targets = _targets(call.request.body, table)
    call.request.context["operation_count"] = len(targets)
    store = call.env.store
    catalog = call.env.catalog
    name = table.logical_name
    ids: list[str] = []
    with store.transaction():
        if message == "CreateMultiple":
            for target in targets:
                body = _checked(target, table, catalog)
                ids.append(store.create(name, body, caller=call.caller)[table.primary_id])
        elif message == "UpdateMultiple":
            seen: set[str] = set()
            for target in targets:
                body = _checked(target, table, catalog)
                record_id = _primary_id(body, table)
                if record_id in seen:
                    continue  # §6.2: only the first of duplicate keys is applied
                seen.add(record_id)
                _update(store, table, record_id, body, call)
        else:
            _upsert_all(call, table, targets)
    if message == "CreateMultiple":
        context = f"{call.root}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
        return json_response(200, {"@odata.context": context, "Ids": ids})
    return empty_response(204)


def _targets(body: bytes, table: Table) -> list[t.Any]:
    try:
        data = loads(body)
    except InvalidJsonError as exc:
        raise payload_error(table, f"Microsoft.OData.ODataException: Invalid JSON. {exc}") from None
    targets = data.get("Targets") if isinstance(data, dict) else None
    if not isinstance(targets, list):
        raise parameter_missing("Targets", "Collection")
    return targets


def _checked(target: t.Any, table: Table, catalog: Catalog) -> dict[str, t.Any]:
    """Check ``@odata.type`` (required in bulk, §4.6) and parse the binds of one target."""
    if not isinstance(target, dict):
        raise payload_error(
            table,
            "Microsoft.OData.ODataException: An unexpected 'PrimitiveValue' node was found when "
            "reading from the JSON reader. A 'StartObject' node was expected.",
        )
    type_name = target.get(_TYPE)
    if type_name is None:
        raise untyped_resource()
    logical = str(type_name).removeprefix("#").removeprefix(NAMESPACE)
    if logical != table.logical_name:
        if not str(type_name).removeprefix("#").startswith(NAMESPACE) or not catalog.has_table(
            logical
        ):
            raise unresolved_type(str(type_name))
        raise bulk_target_type_mismatch(str(type_name), table)
    return prepare(target)


def _primary_id(body: dict[str, t.Any], table: Table) -> str:
    record_id = body.get(table.primary_id)
    if not isinstance(record_id, str):
        raise bulk_update_needs_id(table)
    return record_id


def _update(store: t.Any, table: Table, record_id: str, body: dict[str, t.Any], call: Call) -> None:
    try:
        store.update(table.logical_name, record_id, body, caller=call.caller)
    except DataverseFault as fault:
        if fault.code != OBJECT_DOES_NOT_EXIST:
            raise
        label = table.display_name or table.logical_name
        raise rows_not_found(label, record_id) from None


def _upsert_all(call: Call, table: Table, targets: list[t.Any]) -> None:
    store = call.env.store
    name = table.logical_name
    seen: set[t.Any] = set()
    for target in targets:
        body = _checked(target, table, call.env.catalog)
        locator = _locator(body, table)
        if locator is None:
            store.create(name, body, caller=call.caller)
            continue
        marker = (
            locator
            if isinstance(locator, str)
            else tuple(sorted((k, collation.key_value(v)) for k, v in locator.items()))
        )
        if marker in seen:
            raise duplicate_record()
        seen.add(marker)
        if not isinstance(locator, str) and any(column in body for column in locator):
            # §6.3 pitfall: key columns repeated in the body fail the create path only.
            try:
                store.retrieve(name, locator)
            except DataverseFault as fault:
                if fault.kind is not Kind.NOT_FOUND:
                    raise
                raise unexpected_error() from None

        store.upsert(name, locator, body, caller=call.caller)


def _locator(body: dict[str, t.Any], table: Table) -> str | dict[str, t.Any] | None:
    """The record an UpsertMultiple target addresses: ``@odata.id``, else its primary key."""
    address = body.pop("@odata.id", None)
    if address is not None:
        try:
            entity_set, key = parse_bind(str(address))
        except PathSyntaxError:
            raise syntax_error() from None
        if entity_set != table.entity_set_name or key is None:
            raise syntax_error()
        return key if isinstance(key, str) else plain_key(key)
    record_id = body.get(table.primary_id)
    return record_id if isinstance(record_id, str) else None
