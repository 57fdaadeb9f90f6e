"""Record endpoints: create, retrieve, update / upsert, delete, single properties (§4.1-§4.5).

Creates accept deep insert; reads accept ``$expand`` and related-row paths
(:mod:`~dataverse_emulator.wire.navigation`) and the annotations of ``Prefer:
odata.include-annotations`` (§2.2).

``$ref`` writes are :mod:`~dataverse_emulator.wire.references`. Unsupported: deep update,
change tracking, FetchXML (``fetchXml=``), ``If-None-Match`` on collections.
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state.associations import Navigation
from dataverse_emulator.state.error_catalogue import value_member_missing
from dataverse_emulator.state.store import etag
from dataverse_emulator.wire import navigation
from dataverse_emulator.wire.call import Call, empty_response, json_response
from dataverse_emulator.wire.query_options import (
    QueryOptions,
    next_link_query,
    order,
    page,
    parse_query,
    top,
)
from dataverse_emulator.wire.rows import load_object, renderer

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from dataverse_emulator.http import Response
    from dataverse_emulator.state.catalog import Table
    from dataverse_emulator.wire.navigation import Collection

Locator = t.Union[str, "Mapping[str, t.Any]"]


def entity_context(call: Call, table: Table, options: QueryOptions) -> str:
    """``{root}/$metadata#{set}/$entity``, with ``(…)`` when projected or expanded (§4.1)."""
    chosen = navigation.projection(options.select, options.expand)
    return f"{call.root}/$metadata#{table.entity_set_name}{chosen}/$entity"


def entity_id(call: Call, table: Table, record_id: str) -> str:
    """``OData-EntityId`` of a record addressed by GUID (§4.1)."""
    return f"{call.root}/{table.entity_set_name}({record_id})"


def check_options(call: Call, table: Table, options: QueryOptions) -> None:
    """Reject unknown ``$select`` columns and ``$expand`` navigation properties (§4.9)."""
    if options.select:
        renderer(table).check_select(options.select)
    if options.expand:
        navigation.check_expand(call, table, options.expand)


def representation(
    call: Call, table: Table, row: Mapping[str, t.Any], options: QueryOptions
) -> dict[str, t.Any]:
    """The JSON of one record as returned with ``return=representation`` or by GET."""
    annotations = call.annotations
    body = renderer(table).selected(row, options.select, annotations)
    if options.expand:
        navigation.expand_row(call, table, row, body, options.expand)
    return {"@odata.context": entity_context(call, table, options), **body}


def _applied_with_representation(call: Call) -> list[tuple[str, str]]:
    """``Preference-Applied: return=representation`` plus any annotation preference (§2.2)."""
    applied = ["return=representation", *(value for _, value in call.preference_applied())]
    return [("Preference-Applied", ",".join(applied))]


def create(call: Call, table: Table, options: QueryOptions) -> Response:
    """``POST /{set}``: 204 + ``OData-EntityId``, or 201 + body with ``return=representation``.

    Nested records (deep insert) are created in the same transaction (§4.1).
    """
    check_options(call, table, options)
    body = load_object(call.request.body, table)
    store = call.env.store
    if any(isinstance(value, dict | list) for value in body.values()):
        with store.transaction():
            row = dict(navigation.deep_create(call, table, body))
    else:
        row = store.create(table.logical_name, body, caller=call.caller)
    if call.representation:
        return json_response(
            201,
            representation(call, table, row, options),
            _applied_with_representation(call),
        )
    return empty_response(204, [("OData-EntityId", entity_id(call, table, row[table.primary_id]))])


def query(
    call: Call,
    table: Table,
    stored: list[dict[str, t.Any]] | None = None,
    address: str | None = None,
) -> Response:
    """``GET /{set}``: ``$select``, ``$filter``, ``$orderby``, ``$top``, ``$count``, ``$expand``.

    Paging follows ``Prefer: odata.maxpagesize`` (default 5,000): ``@odata.nextLink`` carries a
    ``$skiptoken`` holding Dataverse's paging cookie (§2.7) and ``Preference-Applied`` echoes
    the size (§2.2). ``$count=true`` adds
    ``@odata.count``, the number of matching rows up to 5,000 (see ``_counts``).

    Args:
        call: The call.
        table: The table of the rows.
        stored: The rows to query (a related-row path); every row of ``table`` when None.
        address: The path the ``@odata.nextLink`` repeats (the entity set when None).
    """
    options = parse_query(call.request.query)
    render = renderer(table)
    check_options(call, table, options)
    if options.filter is not None:
        render.check_select(sorted(options.filter.properties()))
    view = navigation.sort_view(call, table, [path for path, _ in options.orderby])
    if stored is None:
        stored = call.env.store.rows(table.logical_name)
    if options.filter is not None:
        matches = render.matcher(options.filter.matches)
        stored = [row for row in stored if matches(row)]
    if options.orderby:
        # $orderby may name unselected properties and related rows' columns.
        stored = order(stored, options.orderby, view)
    rows = top(stored, options.top)
    chosen, token = page(rows, call.prefer.maxpagesize, options.skiptoken, table.primary_id)
    annotations = call.annotations
    select = options.select
    value = [render.selected(row, select, annotations) for row in chosen]
    navigation.expand_rows(call, table, chosen, value, options.expand)
    projection = navigation.projection(select, options.expand)
    body: dict[str, t.Any] = {
        "@odata.context": f"{call.root}/$metadata#{table.entity_set_name}{projection}"
    }
    body.update(_counts(call, len(rows), counted=options.count))
    body["value"] = value
    if token is not None:
        next_query = next_link_query(call.request.query, token)
        body["@odata.nextLink"] = f"{call.root}/{address or table.entity_set_name}?{next_query}"
    applied = []
    if call.prefer.maxpagesize is not None:
        applied.append(f"odata.maxpagesize={call.prefer.maxpagesize}")
    applied += [value for _, value in call.preference_applied()]
    headers = [("Preference-Applied", ",".join(applied))] if applied else []
    return json_response(200, body, headers)


COUNT_LIMIT = 5000
"""``@odata.count`` stops here for standard tables (Microsoft Learn, "Count rows using OData")."""
TOTAL = "Microsoft.Dynamics.CRM.totalrecordcount"
EXCEEDED = "Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"


def _counts(call: Call, matched: int, *, counted: bool) -> dict[str, t.Any]:
    """The count annotations of a collection (Microsoft Learn, "Count rows using OData").

    ``$count=true`` gives ``@odata.count``, capped at 5,000. ``Prefer:
    odata.include-annotations`` naming ``totalrecordcount`` / ``totalrecordcountlimitexceeded``
    adds them: the capped count and whether more rows matched; without ``$count=true`` the
    total is -1.
    """
    capped = min(matched, COUNT_LIMIT)
    body: dict[str, t.Any] = {"@odata.count": capped} if counted else {}
    if call.wants(TOTAL):
        body[f"@{TOTAL}"] = capped if counted else -1
    if counted and call.wants(EXCEEDED):
        body[f"@{EXCEEDED}"] = matched > COUNT_LIMIT
    return body


def related(call: Call, table: Table, locator: Locator, rel: Collection, address: str) -> Response:
    """``GET /{set}(key)/{collection-valued navigation}``: the related rows, queried (§5.1).

    One-to-many and many-to-many properties alike (``lists(id)/listcontact_association``).
    """
    parent = call.env.store.retrieve(table.logical_name, locator)
    rows = navigation.related_rows(call, table, parent[table.primary_id], rel)
    target = rel.target if isinstance(rel, Navigation) else rel.referencing_entity
    return query(call, call.env.catalog.table(target), rows, address)


def retrieve(call: Call, table: Table, locator: Locator, options: QueryOptions) -> Response:
    """``GET /{set}(key)``: 200 with the row; 304 when ``If-None-Match`` holds its ETag (§4.4)."""
    check_options(call, table, options)
    row = call.env.store.retrieve(table.logical_name, locator)
    tag = etag(row)
    if call.header("if-none-match") == tag and call.prefer.include_annotations is None:
        return empty_response(304, [("ETag", tag)])
    return json_response(
        200,
        representation(call, table, row, options),
        [("ETag", tag), *call.preference_applied()],
    )


def upsert(
    call: Call, table: Table, locator: Locator, address: str, options: QueryOptions
) -> Response:
    """``PATCH /{set}(key)``: update or create (§4.2, §4.3) under ``If-Match`` / ``If-None-Match``.

    Args:
        call: The call.
        table: The table.
        locator: GUID or alternate-key values.
        address: The entity segment as the client wrote it, echoed in ``OData-EntityId``.
        options: ``$select`` / ``$expand`` for ``return=representation``.
    """
    check_options(call, table, options)
    body = load_object(call.request.body, table)
    outcome = call.env.store.upsert(
        table.logical_name,
        locator,
        body,
        if_match=call.header("if-match"),
        if_none_match=call.header("if-none-match"),
        caller=call.caller,
    )
    if call.representation:
        return json_response(
            201 if outcome.created else 200,
            representation(call, table, outcome.row, options),
            _applied_with_representation(call),
        )
    return empty_response(204, [("OData-EntityId", f"{call.root}/{address}")])


def delete(call: Call, table: Table, locator: Locator) -> Response:
    """``DELETE /{set}(key)``: 204; 404 when missing (§4.5)."""
    call.env.store.delete(
        table.logical_name, locator, if_match=call.header("if-match"), caller=call.caller
    )
    return empty_response(204)


def property_value(call: Call, table: Table, locator: Locator, name: str) -> Response:
    """``GET /{set}(key)/{property}`` → ``{"value": ...}``."""
    render = renderer(table)
    render.check_select([name])
    row = call.env.store.retrieve(table.logical_name, locator)
    value = render.selected(row, [name])[name]
    context = f"{call.root}/$metadata#{table.entity_set_name}({row[table.primary_id]})/{name}"
    return json_response(200, {"@odata.context": context, "value": value})


def write_property(call: Call, table: Table, locator: Locator, name: str) -> Response:
    """``PUT /{set}(key)/{property}`` with ``{"value": v}``, or ``DELETE`` to clear it (§4.2)."""
    if call.request.method == "DELETE":
        value = None
    else:
        body = load_object(call.request.body, table)
        if "value" not in body:
            raise value_member_missing()
        value = body["value"]
    call.env.store.update(table.logical_name, locator, {name: value}, caller=call.caller)
    return empty_response(204)
