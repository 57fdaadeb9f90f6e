"""Metadata endpoints: EntityDefinitions, RelationshipDefinitions, GlobalOptionSetDefinitions.

Served (§3.1-§3.9), always as JSON with ``@odata.context`` built from the request's base URL:

- ``GET EntityDefinitions`` with ``$select``, ``$filter`` and ``$expand`` of ``Attributes``,
  ``Keys``, ``ManyToOneRelationships``, ``OneToManyRelationships``, ``ManyToManyRelationships``
  (nested ``$select`` / ``$filter``); no paging, as in Dataverse.
- ``GET EntityDefinitions(LogicalName='x')`` / ``EntityDefinitions(<MetadataId>)``.
- ``.../Attributes``, ``.../Attributes(LogicalName='y')`` or ``(<MetadataId>)``, and casts
  ``.../Attributes/Microsoft.Dynamics.CRM.<Type>AttributeMetadata`` (collection or single) with
  ``$expand=OptionSet,GlobalOptionSet`` (a global choice fills ``GlobalOptionSet``, a choice
  of its own ``OptionSet``). Items without ``$select`` carry their derived type's properties
  (§11 #5); ``$select`` / ``$filter`` on a list name only the properties of its type. Items of
  the base type (Uniqueidentifier, Virtual) carry no ``@odata.type``.
- ``.../Keys`` and ``.../Keys(LogicalName='k')``; ``POST .../Keys`` creates a key (204 +
  ``OData-EntityId``), ``Pending`` until its index job ends (``state/key_jobs.py``; Active at
  once for a catalog served without jobs).
- ``.../ManyToOneRelationships``, ``OneToManyRelationships``, ``ManyToManyRelationships``.
- ``RelationshipDefinitions``, ``(SchemaName='x')``, ``(<MetadataId>)`` and the casts to
  ``OneToManyRelationshipMetadata`` / ``ManyToManyRelationshipMetadata``.
- ``GlobalOptionSetDefinitions``, ``(Name='x')``, ``(<MetadataId>)``: the global choices the
  tables' columns use (items typed ``OptionSetMetadata``).

Not supported: creating, updating or deleting tables, columns or relationships; property paths
(``.../Attributes(LogicalName='y')/MetadataId``); ``$orderby``/``$top`` on metadata (ignored);
``Consistency: Strong`` (metadata changes are visible at once). Unsupported methods answer 405.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

import orjson

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.catalog import ManyToMany
from dataverse_emulator.state.error_catalogue import (
    attribute_not_found,
    key_definition_incomplete,
    metadata_address,
    metadata_body_invalid_json,
    metadata_body_not_object,
    metadata_key_not_found,
    method_not_allowed,
    option_set_not_found,
    property_not_found,
    segment_not_found,
    unparsable_request,
)
from dataverse_emulator.state.errors import DataverseFault
from dataverse_emulator.wire import metadata_json as mj
from dataverse_emulator.wire.errors import (
    JSON_CONTENT_TYPE,
    ParseError,
    fault_response,
)
from dataverse_emulator.wire.query_options import QueryOptions, parse_query
from dataverse_emulator.wire.segments import Segment, crm_name, split_path

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import Catalog, Column, Relationship, Table
    from dataverse_emulator.state.key_jobs import KeyIndexJobs

Json: t.TypeAlias = dict[str, t.Any]

_VERSION = re.compile(r"/api/data/(v\d+\.\d+)/")
_ENTITY_TYPE = "EntityMetadata"
_ATTRIBUTE_TYPE = "AttributeMetadata"
_COLLECTIONS = (
    "Attributes",
    "Keys",
    "ManyToOneRelationships",
    "OneToManyRelationships",
    "ManyToManyRelationships",
)
_CAST_TYPES: dict[str, frozenset[str]] = {}
for _kind, _cast in mj.DERIVED_TYPES.items():
    _CAST_TYPES[_cast] = _CAST_TYPES.get(_cast, frozenset()) | {_kind}
_OPTION_NAVIGATIONS = ("OptionSet", "GlobalOptionSet")
_OPTION_SET_TYPE = "OptionSetMetadataBase"
_RELATIONSHIP_CASTS = {
    "OneToManyRelationshipMetadata": False,
    "ManyToManyRelationshipMetadata": True,
}


@dataclass(slots=True)
class _Context:
    """What a response needs besides the items: where it came from and its options."""

    root: str
    options: QueryOptions


def handle(
    request: Request, path: str, catalog: Catalog, key_jobs: KeyIndexJobs | None = None
) -> Response:
    """Serve one metadata request; ``path`` is the part after ``/api/data/v9.2/``.

    ``key_jobs`` builds the index of a key created here (§3.6).

    Returns:
        The JSON response, or a Dataverse error response (§4.8).
    """
    try:
        segments = split_path(path)
        if request.method == "POST":
            return _post(request, segments, catalog, key_jobs)
        if request.method != "GET":
            return fault_response(method_not_allowed(request.method))
        options = parse_query(request.query)
        version = _VERSION.search(request.path)
        root = f"{request.base_url}/api/data/{version[1] if version else 'v9.2'}/$metadata#"
        return _get(segments, catalog, _Context(root, options))
    except DataverseFault as fault:
        return fault_response(fault)
    except ParseError as exc:
        return fault_response(unparsable_request(exc.message))


# ----------------------------------------------------------------------------- routing


def _get(segments: list[Segment], catalog: Catalog, ctx: _Context) -> Response:
    name = segments[0].name
    if name == "EntityDefinitions":
        return _entity_definitions(segments, catalog, ctx)
    if name == "RelationshipDefinitions":
        return _relationship_definitions(segments, catalog, ctx)
    if name == "GlobalOptionSetDefinitions":
        return _global_option_sets(segments, catalog, ctx)
    raise segment_not_found(name)


def _global_option_sets(segments: list[Segment], catalog: Catalog, ctx: _Context) -> Response:
    """``GlobalOptionSetDefinitions``, ``(Name='x')`` or ``(<MetadataId>)`` (§3.1)."""
    if len(segments) > 1:
        raise segment_not_found(segments[1].name)
    items = mj.global_option_sets(catalog.tables())
    base = ctx.root + "GlobalOptionSetDefinitions"
    key = segments[0].key
    if key is None:
        return _list(base, ctx.options, items, _OPTION_SET_TYPE)
    if isinstance(key, dict) and set(key) != {"Name"}:
        raise segment_not_found(next(iter(key)))
    wanted = key["Name"] if isinstance(key, dict) else key
    found = [
        item
        for item in items
        if (item["Name"] if isinstance(key, dict) else str(item["MetadataId"]).lower()) == wanted
    ]
    if not found:
        raise option_set_not_found(wanted)
    return _single(base, ctx.options, found[0], _OPTION_SET_TYPE)


def _entity_definitions(segments: list[Segment], catalog: Catalog, ctx: _Context) -> Response:
    head = segments[0]
    if head.key is None:
        if len(segments) > 1:
            raise segment_not_found(segments[1].name)
        return _entity_list(catalog, ctx)
    table, address = _table(catalog, head.key)
    if len(segments) == 1:
        context = f"{ctx.root}EntityDefinitions{_clause(ctx.options)}/$entity"
        return _ok({"@odata.context": context} | _entity_item(catalog, table, ctx.options))
    collection = segments[1]
    if collection.name not in _COLLECTIONS:
        raise segment_not_found(collection.name)
    base = f"{ctx.root}EntityDefinitions({address})/{collection.name}"
    if collection.name == "Attributes":
        return _attributes(table, segments[1:], ctx, base)
    if len(segments) > 2:
        raise segment_not_found(segments[2].name)
    items = _collection_items(catalog, table, collection.name)
    type_name = _collection_type(collection.name)
    if collection.key is None:
        return _list(base, ctx.options, items, type_name)
    name_property = "SchemaName" if "Relationship" in collection.name else None
    return _single(base, ctx.options, _find(items, collection.key, name_property), type_name)


def _post(
    request: Request, segments: list[Segment], catalog: Catalog, key_jobs: KeyIndexJobs | None
) -> Response:
    keyed = (
        len(segments) == 2
        and segments[0].name == "EntityDefinitions"
        and segments[0].key is not None
        and segments[1].name == "Keys"
        and segments[1].key is None
    )
    if not keyed:
        return fault_response(method_not_allowed("POST"))
    table, address = _table(catalog, segments[0].key)
    body = _json_body(request)
    schema_name = body.get("SchemaName")
    attributes = body.get("KeyAttributes")
    if not isinstance(schema_name, str) or not isinstance(attributes, list):
        raise key_definition_incomplete()
    key = catalog.add_key(
        table.logical_name, schema_name, [str(a) for a in attributes], _label_text(body)
    )
    if key_jobs is not None:
        key_jobs.submit(table.logical_name, key.logical_name)
    version = _VERSION.search(request.path)
    entity_id = (
        f"{request.base_url}/api/data/{version[1] if version else 'v9.2'}/"
        f"EntityDefinitions({address})/Keys({key.metadata_id})"
    )
    return Response(204, [("OData-Version", "4.0"), ("OData-EntityId", entity_id)])


def _relationship_definitions(segments: list[Segment], catalog: Catalog, ctx: _Context) -> Response:
    head = segments[0]
    cast = _relationship_cast(segments[1]) if len(segments) > 1 else None
    if len(segments) > 2:
        raise segment_not_found(segments[2].name)
    base = ctx.root + "RelationshipDefinitions"
    if cast is not None:
        base += f"/{mj.NS}{cast}"
    wanted_m2m = _RELATIONSHIP_CASTS.get(cast) if cast else None
    if head.key is None:
        rels = [
            r
            for r in catalog.relationships()
            if wanted_m2m is None or isinstance(r, ManyToMany) == wanted_m2m
        ]
        items = [_relationship_json(catalog, r, typed=cast is None) for r in rels]
        return _list(base, ctx.options, items, cast or "RelationshipMetadataBase")
    rel = _relationship_by_key(catalog, head.key)
    if wanted_m2m is not None and isinstance(rel, ManyToMany) != wanted_m2m:
        raise segment_not_found(segments[1].name)
    item = _relationship_json(catalog, rel, typed=cast is None)
    return _single(base, ctx.options, item, cast or "RelationshipMetadataBase")


# ----------------------------------------------------------------------------- entities


def _entity_list(catalog: Catalog, ctx: _Context) -> Response:
    options = ctx.options
    items = []
    for table in catalog.tables():
        full = mj.entity(table)
        if options.filter is not None:
            _check_properties(options.filter.properties(), full, _ENTITY_TYPE)
            if not options.filter.matches(full):
                continue
        items.append(_entity_item(catalog, table, options, full))
    return _ok({"@odata.context": f"{ctx.root}EntityDefinitions{_clause(options)}", "value": items})


def _entity_item(
    catalog: Catalog, table: Table, options: QueryOptions, full: Json | None = None
) -> Json:
    full = full if full is not None else mj.entity(table)
    out = _select(full, options.select, _ENTITY_TYPE, navigations=_COLLECTIONS)
    for name, sub in options.expand.items():
        if name not in _COLLECTIONS:
            raise property_not_found(name, _ENTITY_TYPE)
        if name == "Attributes":
            out[name] = _attribute_values(table, _listed_attributes(table), sub, _ATTRIBUTE_TYPE)
            continue
        children = _collection_items(catalog, table, name)
        out[name] = _apply(children, sub, _collection_type(name))
    return out


def _table(catalog: Catalog, key: str | dict[str, t.Any] | None) -> tuple[Table, str]:
    """Resolve an EntityDefinitions key; return the table and its address for contexts."""
    if isinstance(key, str):
        return catalog.table_by_id(key), key
    if (
        isinstance(key, dict)
        and set(key) == {"LogicalName"}
        and isinstance(key["LogicalName"], str)
    ):
        name = key["LogicalName"]
        return catalog.table(name), f"'{name}'"
    raise metadata_address("EntityDefinitions", "MetadataId or LogicalName")


def _collection_items(catalog: Catalog, table: Table, name: str) -> list[Json]:
    if name == "Keys":
        return [mj.key(table, k) for k in table.keys]
    if name == "ManyToOneRelationships":
        return [mj.one_to_many(r, custom=_is_custom(catalog, r)) for r in table.many_to_one]
    if name == "OneToManyRelationships":
        return [mj.one_to_many(r, custom=_is_custom(catalog, r)) for r in table.one_to_many]
    return [mj.many_to_many(r, custom=table.is_custom) for r in table.many_to_many]


def _collection_type(name: str) -> str:
    return {
        "Attributes": _ATTRIBUTE_TYPE,
        "Keys": "EntityKeyMetadata",
        "ManyToManyRelationships": "ManyToManyRelationshipMetadata",
    }.get(name, "OneToManyRelationshipMetadata")


# ----------------------------------------------------------------------------- attributes


def _attributes(table: Table, segments: list[Segment], ctx: _Context, base: str) -> Response:
    collection = segments[0]
    cast = _attribute_cast(segments[1]) if len(segments) > 1 else None
    if len(segments) > 2:
        raise segment_not_found(segments[2].name)
    numbered = _numbered(table)
    if collection.key is not None:
        number, column = _find_column(table, numbered, collection.key)
        if cast is not None and column.type not in _CAST_TYPES[cast]:
            raise segment_not_found(f"{mj.NS}{cast}")
        type_name = cast or mj.DERIVED_TYPES.get(column.type, _ATTRIBUTE_TYPE)
        # One attribute answers with its own type's properties, cast or not.
        full = _attribute_item(table, column, number, declared_as=cast).full
        context = f"{base}/{mj.NS}{cast}" if cast else base
        head = {"@odata.context": f"{context}{_clause(ctx.options)}/$entity"}
        item = _Attribute(column, full, full)
        return _ok(head | _attribute_out(item, ctx.options, type_name, table))
    if cast is None:
        items, type_name = _listed_attributes(table), _ATTRIBUTE_TYPE
    else:
        items = [
            _attribute_item(table, c, n, declared_as=cast)
            for n, c in numbered
            if c.type in _CAST_TYPES[cast]
        ]
        type_name, base = cast, f"{base}/{mj.NS}{cast}"
    values = _attribute_values(table, items, ctx.options, type_name)
    return _ok({"@odata.context": f"{base}{_clause(ctx.options)}", "value": values})


@dataclass(frozen=True, slots=True)
class _Attribute:
    """One attribute as served.

    ``declared`` holds what ``$select`` / ``$filter`` may name (the properties of the
    collection's type); ``full`` what an item without ``$select`` shows (the derived type's
    properties too, as the service serialises derived items).
    """

    column: Column
    declared: Json
    full: Json


def _attribute_item(
    table: Table, column: Column, number: int, *, declared_as: str | None = None
) -> _Attribute:
    """An attribute in a collection of ``declared_as`` (None: of the base AttributeMetadata).

    An item whose type is not the collection's carries ``@odata.type``; Uniqueidentifier and
    Virtual columns are listed as the base type, so in a base collection they carry none.
    """
    common = mj.attribute(table, column, number)
    full = common | mj.attribute_specific(column)
    if declared_as is not None:
        return _Attribute(column, full, full)
    listed = _listed(column)
    if listed != _ATTRIBUTE_TYPE:
        full = {"@odata.type": f"#{mj.NS}{listed}"} | full
    return _Attribute(column, common, full)


def _listed_attributes(table: Table) -> list[_Attribute]:
    return [_attribute_item(table, c, n) for n, c in _numbered(table)]


def _attribute_values(
    table: Table, items: list[_Attribute], options: QueryOptions, type_name: str
) -> list[Json]:
    values = []
    for item in items:
        if options.filter is not None:
            _check_properties(options.filter.properties(), item.declared, type_name)
            if not options.filter.matches(item.full):
                continue
        values.append(_attribute_out(item, options, type_name, table))
    return values


def _attribute_out(item: _Attribute, options: QueryOptions, type_name: str, table: Table) -> Json:
    full, column = item.full, item.column
    if options.select is None:
        out = dict(full)
    else:
        out = _select(item.declared, options.select, type_name, navigations=_OPTION_NAVIGATIONS)
        if "@odata.type" in full:
            out = {"@odata.type": full["@odata.type"]} | out
    for name, sub in options.expand.items():
        navigable = type_name != _ATTRIBUTE_TYPE and column.type in mj.OPTION_SET_TYPES
        if name not in _OPTION_NAVIGATIONS or not navigable:
            raise property_not_found(name, type_name)
        option_set = mj.expanded_option_set(table, column, global_navigation=name != "OptionSet")
        out[name] = (
            None
            if option_set is None
            else _select(option_set, sub.select, "OptionSetMetadataBase", navigations=())
        )
    return out


def _numbered(table: Table) -> list[tuple[int, Column]]:
    return list(enumerate(table.columns.values(), start=1))


def _listed(column: Column) -> str:
    return mj.LISTED_TYPES.get(column.type, _ATTRIBUTE_TYPE)


def _find_column(
    table: Table, numbered: list[tuple[int, Column]], key: str | dict[str, t.Any]
) -> tuple[int, Column]:
    if isinstance(key, dict):
        if set(key) != {"LogicalName"}:
            raise segment_not_found("Attributes")
        wanted = str(key["LogicalName"])
        found = [(n, c) for n, c in numbered if c.logical_name == wanted]
    else:
        wanted = key
        found = [(n, c) for n, c in numbered if c.metadata_id.lower() == key]
    if not found:
        raise attribute_not_found(wanted, table)
    return found[0]


def _attribute_cast(segment: Segment) -> str:
    cast = crm_name(segment.name)
    if cast is None or cast not in _CAST_TYPES or segment.key is not None:
        raise segment_not_found(segment.name)
    return cast


# ----------------------------------------------------------------------------- relationships


def _relationship_cast(segment: Segment) -> str:
    cast = crm_name(segment.name)
    if cast not in _RELATIONSHIP_CASTS or segment.key is not None:
        raise segment_not_found(segment.name)
    return cast


def _relationship_by_key(
    catalog: Catalog, key: str | dict[str, t.Any]
) -> Relationship | ManyToMany:
    if isinstance(key, str):
        return catalog.relationship_by_id(key)
    if set(key) == {"SchemaName"}:
        return catalog.relationship(str(key["SchemaName"]))
    raise metadata_address("RelationshipDefinitions", "MetadataId or SchemaName")


def _relationship_json(catalog: Catalog, rel: Relationship | ManyToMany, *, typed: bool) -> Json:
    if isinstance(rel, ManyToMany):
        custom = any(_table_is_custom(catalog, n) for n in (rel.entity1, rel.entity2))
        body, type_name = mj.many_to_many(rel, custom=custom), "ManyToManyRelationshipMetadata"
    else:
        body = mj.one_to_many(rel, custom=_is_custom(catalog, rel))
        type_name = "OneToManyRelationshipMetadata"
    return {"@odata.type": f"#{mj.NS}{type_name}"} | body if typed else body


def _is_custom(catalog: Catalog, rel: Relationship) -> bool:
    return _table_is_custom(catalog, rel.referencing_entity)


def _table_is_custom(catalog: Catalog, name: str) -> bool:
    return catalog.has_table(name) and catalog.table(name).is_custom


# ----------------------------------------------------------------------------- generic items


def _list(base: str, options: QueryOptions, items: list[Json], type_name: str) -> Response:
    values = _apply(items, options, type_name)
    return _ok({"@odata.context": f"{base}{_clause(options)}", "value": values})


def _single(base: str, options: QueryOptions, item: Json, type_name: str) -> Response:
    if options.expand:
        raise property_not_found(next(iter(options.expand)), type_name)
    body = _keep_type(item, _select(item, options.select, type_name, navigations=()))
    return _ok({"@odata.context": f"{base}{_clause(options)}/$entity"} | body)


def _keep_type(full: Json, out: Json) -> Json:
    if "@odata.type" in full and "@odata.type" not in out:
        return {"@odata.type": full["@odata.type"]} | out
    return out


def _find(items: list[Json], key: str | dict[str, t.Any], name_property: str | None) -> Json:
    if isinstance(key, str):
        found = [i for i in items if str(i["MetadataId"]).lower() == key]
    else:
        (prop, value), *rest = key.items()
        if rest or prop not in {"LogicalName", name_property}:
            raise segment_not_found(prop)
        found = [i for i in items if i.get(prop) == value]
    if not found:
        raise metadata_key_not_found(key)
    return found[0]


def _apply(children: list[Json], options: QueryOptions, type_name: str) -> list[Json]:
    if options.expand:
        raise property_not_found(next(iter(options.expand)), type_name)
    out = []
    for child in children:
        if options.filter is not None:
            _check_properties(options.filter.properties(), child, type_name)
            if not options.filter.matches(child):
                continue
        out.append(_keep_type(child, _select(child, options.select, type_name, navigations=())))
    return out


def _select(
    full: Json, select: list[str] | None, type_name: str, *, navigations: t.Iterable[str]
) -> Json:
    """Apply ``$select``: the named properties, then MetadataId (always returned, §3.1)."""
    if select is None:
        return dict(full)
    allowed = set(navigations)
    out: Json = {}
    for name in select:
        if name in full:
            out[name] = full[name]
        elif name not in allowed:
            raise property_not_found(name, type_name)
    if "MetadataId" in full and "MetadataId" not in out:
        out["MetadataId"] = full["MetadataId"]
    return out


def _check_properties(names: set[str], full: Json, type_name: str) -> None:
    for name in names:
        if name not in full:
            raise property_not_found(name, type_name)


def _clause(options: QueryOptions) -> str:
    """The ``(select,Nav(nested))`` part of ``@odata.context`` (§3.4, §3.8)."""
    parts = list(options.select or [])
    parts += [f"{name}{_clause(sub) or '()'}" for name, sub in options.expand.items()]
    return f"({','.join(parts)})" if parts else ""


# ----------------------------------------------------------------------------- responses


def _ok(body: Json) -> Response:
    headers = [("Content-Type", JSON_CONTENT_TYPE), ("OData-Version", "4.0")]
    return Response(200, headers, orjson.dumps(body))


def _json_body(request: Request) -> Json:
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise metadata_body_invalid_json(exc) from exc
    if not isinstance(body, dict):
        raise metadata_body_not_object()

    return body


def _label_text(body: Json) -> str | None:
    display = body.get("DisplayName")
    if isinstance(display, str):
        return display
    if isinstance(display, dict):
        labels = display.get("LocalizedLabels") or []
        if labels and isinstance(labels[0], dict):
            return labels[0].get("Label")
    return None
