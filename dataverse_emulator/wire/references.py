"""``$ref``: associate and disassociate rows through collection-valued navigation properties.

`Associate and disassociate table rows using the Web API
<https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api>`_:

- ``POST /{set}(id)/{nav}/$ref`` with ``{"@odata.id": "<service root>/{set}(id)"}`` (absolute,
  ``/{set}(id)`` or ``{set}(id)``; ``$n`` inside a ``$batch`` change set) → 204.
- ``DELETE /{set}(id)/{nav}({related id})/$ref`` or ``DELETE /{set}(id)/{nav}/$ref?$id=<url>``
  → 204.

Many-to-many properties go through :mod:`~dataverse_emulator.state.associations` (a list
membership adds or removes a ``listmember`` row, like AddMemberList / RemoveMemberList);
one-to-many properties set or clear the related row's lookup ("This is a 1:N relationship but
you can perform the same operation for an N:N relationship").

Unsupported: ``GET …/$ref`` (reading references), ``$ref`` on single-valued navigation
properties (``PUT contacts(id)/parentcustomerid_account/$ref``; bind the lookup with
``@odata.bind`` instead), alternate keys in ``@odata.id``.
"""

from __future__ import annotations

import typing as t
from urllib.parse import unquote

import orjson

from dataverse_emulator.state import associations
from dataverse_emulator.state.error_catalogue import (
    content_id_missing,
    method_not_allowed,
    reference_body_invalid,
    reference_row_missing,
    reference_target_invalid,
    syntax_error,
)
from dataverse_emulator.state.schema import BIND, Reference
from dataverse_emulator.wire.call import Call, empty_response
from dataverse_emulator.wire.segments import PathSyntaxError, parse_bind

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Response
    from dataverse_emulator.state.catalog import Table
    from dataverse_emulator.wire.navigation import Collection

_ID = "@odata.id"


def handle(
    call: Call, table: Table, record_id: str, rel: Collection, related_key: str | None
) -> Response:
    """Answer ``POST`` / ``DELETE`` on ``/{set}(id)/{nav}[(related id)]/$ref``.

    Args:
        call: The call.
        table: The addressed table.
        record_id: The addressed row's id (GUID).
        rel: What backs the navigation property.
        related_key: The related row's id from ``{nav}(<id>)``, if given.

    Raises:
        DataverseFault: 400 a missing or malformed ``@odata.id`` / ``$id``, or one naming a
            table the property does not lead to; 404 a missing row; 405 another method; the
            association's own failures.
    """
    method = call.request.method
    target = _target_table(call, rel)
    if method == "POST" and related_key is None:
        related_id = _related_id(call, target, _body_id(call))
        _associate(call, table, record_id, rel, related_id)
        return empty_response(204)
    if method != "DELETE":
        raise method_not_allowed(method)
    address = related_key or _query_id(call)
    related_id = address if related_key else _related_id(call, target, address)
    _disassociate(call, table, record_id, rel, related_id)
    return empty_response(204)


def _target_table(call: Call, rel: Collection) -> Table:
    name = rel.target if isinstance(rel, associations.Navigation) else rel.referencing_entity
    return call.env.catalog.table(name)


def _body_id(call: Call) -> str:
    try:
        body = orjson.loads(call.request.body)
    except orjson.JSONDecodeError:
        body = None
    value = body.get(_ID) if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise reference_body_invalid()
    return value


def _query_id(call: Call) -> str:
    for pair in call.request.query.split("&"):
        name, _, value = pair.partition("=")
        if unquote(name) == "$id" and value:
            return unquote(value)
    raise reference_row_missing()


def _related_id(call: Call, target: Table, address: str) -> str:
    try:
        entity_set, key = parse_bind(address)
    except PathSyntaxError:
        raise syntax_error() from None
    if entity_set.startswith("$"):
        raise content_id_missing(entity_set)
    if not isinstance(key, str):
        raise syntax_error()
    named = call.env.catalog.table_by_set(entity_set)
    if named.logical_name != target.logical_name:
        raise reference_target_invalid(entity_set, target)
    return key


def _associate(call: Call, table: Table, record_id: str, rel: Collection, related_id: str) -> None:
    store = call.env.store
    if isinstance(rel, associations.Navigation):
        associations.associate(store, rel, record_id, related_id, call.caller)
        return
    parent = store.retrieve(table.logical_name, record_id)
    reference = Reference(table.entity_set_name, id=parent[table.primary_id])
    body = {f"{rel.referencing_navigation}{BIND}": reference}
    store.update(rel.referencing_entity, related_id, body, caller=call.caller)


def _disassociate(
    call: Call, table: Table, record_id: str, rel: Collection, related_id: str
) -> None:
    store = call.env.store
    if isinstance(rel, associations.Navigation):
        associations.disassociate(store, rel, record_id, related_id, call.caller)
        return
    store.retrieve(table.logical_name, record_id)
    child = store.retrieve(rel.referencing_entity, related_id)
    if child.get(rel.referencing_attribute) != record_id:
        return
    body = {f"{rel.referencing_navigation}{BIND}": None}
    store.update(rel.referencing_entity, related_id, body, caller=call.caller)
