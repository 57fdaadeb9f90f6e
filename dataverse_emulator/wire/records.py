"""Record endpoints: create, retrieve, update / upsert, delete, single properties (§4.1-§4.5).

Unsupported: deep insert, ``$expand``, navigation-property reads and ``$ref`` writes, change
tracking, FetchXML (``fetchXml=``), formatted-value annotations, ``If-None-Match`` on collections.
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.state.store import etag
from dataverse_emulator.wire.call import Call, empty_response, json_response
from dataverse_emulator.wire.query_options import next_link_query, order, page, parse_query, top
from dataverse_emulator.wire.rows import load_object, renderer

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dataverse_emulator.http import Response
    from dataverse_emulator.state.catalog import Table

Locator = t.Union[str, "Mapping[str, t.Any]"]


def entity_context(call: Call, table: Table, select: Sequence[str] | None) -> str:
    """``{root}/$metadata#{set}/$entity``, with ``({select})`` when projected (§4.1)."""
    chosen = f"({','.join(select)})" if select else ""
    return f"{call.root}/$metadata#{table.entity_set_name}{chosen}/$entity"


def entity_id(call: Call, table: Table, record_id: str) -> str:
    """``OData-EntityId`` of a record addressed by GUID (§4.1)."""
    return f"{call.root}/{table.entity_set_name}({record_id})"


def representation(
    call: Call, table: Table, row: Mapping[str, t.Any], select: Sequence[str] | None
) -> dict[str, t.Any]:
    """The JSON of one record as returned with ``return=representation`` or by GET."""
    render = renderer(table)
    body = render.project(render.full(row, annotate=call.annotate), select)
    return {"@odata.context": entity_context(call, table, select), **body}


def create(call: Call, table: Table, select: Sequence[str] | None) -> Response:
    """``POST /{set}``: 204 + ``OData-EntityId``, or 201 + body with ``return=representation``."""
    if select:
        renderer(table).check_select(select)
    body = load_object(call.request.body, table)
    row = call.env.store.create(table.logical_name, body, caller=call.caller)
    call.request.context["operation_count"] = 1
    if call.representation:
        return json_response(
            201,
            representation(call, table, row, select),
            [("Preference-Applied", "return=representation")],
        )
    return empty_response(204, [("OData-EntityId", entity_id(call, table, row[table.primary_id]))])


def query(call: Call, table: Table) -> Response:
    """``GET /{set}``: ``$select``, ``$filter``, ``$orderby``, ``$top``, ``$count``, paging.

    Paging follows ``Prefer: odata.maxpagesize`` (default 5,000): ``@odata.nextLink`` carries a
    ``$skiptoken`` and ``Preference-Applied`` echoes the size (§2.2). ``$count=true`` adds
    ``@odata.count``, the number of matching rows.
    """
    options = parse_query(call.request.query)
    render = renderer(table)
    select = options.select
    if select:
        render.check_select(select)
    if options.filter is not None:
        render.check_select(sorted(options.filter.properties()))
    render.check_select([path for path, _ in options.orderby if "/" not in path])
    stored = call.env.store.rows(table.logical_name)
    if options.filter is not None:
        matches = render.matcher(options.filter.matches)
        stored = [row for row in stored if matches(row)]
    annotate = call.annotate
    if options.orderby:
        # $orderby may name unselected properties: render whole rows, then sort.
        rows = [render.full(row, annotate=annotate) for row in stored]
        rows = top(order(rows, options.orderby), options.top)
        chosen, token = page(rows, call.prefer.maxpagesize, options.skiptoken)
        value = [render.project(row, select) for row in chosen]
    else:
        rows = top(stored, options.top)
        chosen, token = page(rows, call.prefer.maxpagesize, options.skiptoken)
        value = [render.selected(row, select, annotate=annotate) for row in chosen]
    projection = f"({','.join(select)})" if select else ""
    body: dict[str, t.Any] = {
        "@odata.context": f"{call.root}/$metadata#{table.entity_set_name}{projection}"
    }
    if options.count:
        body["@odata.count"] = len(rows)
    body["value"] = value
    if token is not None:
        next_query = next_link_query(call.request.query, token)
        body["@odata.nextLink"] = f"{call.root}/{table.entity_set_name}?{next_query}"
    applied = []
    if call.prefer.maxpagesize is not None:
        applied.append(f"odata.maxpagesize={call.prefer.maxpagesize}")
    if call.prefer.include_annotations is not None:
        applied.append(f'odata.include-annotations="{call.prefer.include_annotations}"')
    headers = [("Preference-Applied", ",".join(applied))] if applied else []
    return json_response(200, body, headers)


def retrieve(call: Call, table: Table, locator: Locator, select: Sequence[str] | None) -> Response:
    """``GET /{set}(key)``: 200 with the row; 304 when ``If-None-Match`` holds its ETag (§4.4)."""
    if select:
        renderer(table).check_select(select)
    row = call.env.store.retrieve(table.logical_name, locator)
    tag = etag(row)
    if call.header("if-none-match") == tag and call.prefer.include_annotations is None:
        return empty_response(304, [("ETag", tag)])
    return json_response(200, representation(call, table, row, select), [("ETag", tag)])


def upsert(
    call: Call, table: Table, locator: Locator, address: str, select: Sequence[str] | None
) -> Response:
    """``PATCH /{set}(key)``: update or create (§4.2, §4.3) under ``If-Match`` / ``If-None-Match``.

    Args:
        call: The call.
        table: The table.
        locator: GUID or alternate-key values.
        address: The entity segment as the client wrote it, echoed in ``OData-EntityId``.
        select: ``$select`` for ``return=representation``.
    """
    if select:
        renderer(table).check_select(select)
    body = load_object(call.request.body, table)
    outcome = call.env.store.upsert(
        table.logical_name,
        locator,
        body,
        if_match=call.header("if-match"),
        if_none_match=call.header("if-none-match"),
        caller=call.caller,
    )
    call.request.context["operation_count"] = 1
    if call.representation:
        return json_response(
            201 if outcome.created else 200,
            representation(call, table, outcome.row, select),
            [("Preference-Applied", "return=representation")],
        )
    return empty_response(204, [("OData-EntityId", f"{call.root}/{address}")])


def delete(call: Call, table: Table, locator: Locator) -> Response:
    """``DELETE /{set}(key)``: 204; 404 when missing (§4.5)."""
    call.env.store.delete(table.logical_name, locator, if_match=call.header("if-match"))
    call.request.context["operation_count"] = 1
    return empty_response(204)


def property_value(call: Call, table: Table, locator: Locator, name: str) -> Response:
    """``GET /{set}(key)/{property}`` → ``{"value": ...}``."""
    render = renderer(table)
    render.check_select([name])
    row = call.env.store.retrieve(table.logical_name, locator)
    full = render.full(row)
    context = f"{call.root}/$metadata#{table.entity_set_name}({row[table.primary_id]})/{name}"
    return json_response(200, {"@odata.context": context, "value": full.get(name)})


def write_property(call: Call, table: Table, locator: Locator, name: str) -> Response:
    """``PUT /{set}(key)/{property}`` with ``{"value": v}``, or ``DELETE`` to clear it (§4.2)."""
    if call.request.method == "DELETE":
        value = None
    else:
        body = load_object(call.request.body, table)
        if "value" not in body:
            raise DataverseFault(
                Kind.BAD_REQUEST, "0x80048d19", "The request body must contain a 'value' member."
            )
        value = body["value"]
    call.env.store.update(table.logical_name, locator, {name: value}, caller=call.caller)
    call.request.context["operation_count"] = 1
    return empty_response(204)
