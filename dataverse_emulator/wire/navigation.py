"""Navigation properties: ``$expand``, related-row paths and deep insert (§4.1, §4.4, §5.1).

Single-valued navigation properties are the lookups' ``referencing_navigation`` names
(``parentcustomerid_account``); collection-valued ones are the one-to-many relationships'
``referenced_navigation`` names (``contact_customer_accounts``) whose table the catalog holds,
and the many-to-many relationships' navigation names (``listcontact_association``,
:mod:`~dataverse_emulator.state.associations`).

``$orderby`` may name ``<single-valued navigation>/<column>``.

Unsupported: paging inside expanded collections, single-valued navigation paths
(``contacts(id)/parentcustomerid_account``), deep insert through many-to-many properties.
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state import associations
from dataverse_emulator.state.error_catalogue import (
    payload_error,
    property_not_found,
    unknown_property,
)
from dataverse_emulator.state.schema import BIND, Reference
from dataverse_emulator.state.store import TARGET
from dataverse_emulator.wire.query_options import order, top
from dataverse_emulator.wire.rows import prepare, renderer

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from dataverse_emulator.state.catalog import Relationship, Table
    from dataverse_emulator.wire.call import Call
    from dataverse_emulator.wire.query_options import QueryOptions

    Collection = Relationship | associations.Navigation
    """What backs a collection-valued navigation property."""

Row = dict[str, t.Any]
_TYPE = "@odata.type"
_NAMESPACE = "Microsoft.Dynamics.CRM."


def single_valued(call: Call, table: Table) -> Mapping[str, tuple[t.Any, tuple[str, ...]]]:
    """Single-valued navigation property -> (lookup column, target tables)."""
    return call.env.store.schema(table.logical_name).navigations


def collection_valued(call: Call, table: Table) -> dict[str, Relationship]:
    """Collection-valued navigation property -> its one-to-many relationship."""
    catalog = call.env.catalog
    return {
        rel.referenced_navigation: rel
        for rel in table.one_to_many
        if rel.referenced_navigation and catalog.has_table(rel.referencing_entity)
    }


def many_to_many(call: Call, table: Table) -> dict[str, associations.Navigation]:
    """Collection-valued navigation property -> its many-to-many relationship side."""
    return associations.navigations(call.env.catalog, table)


def _target_of(call: Call, table: Table, name: str) -> tuple[Table, Collection | None]:
    """The table a navigation property leads to, and what backs it when collection-valued."""
    single = single_valued(call, table).get(name)
    catalog = call.env.catalog
    if single is not None and catalog.has_table(single[1][0]):
        return catalog.table(single[1][0]), None
    rel = collection_valued(call, table).get(name)
    if rel is not None:
        return catalog.table(rel.referencing_entity), rel
    nav = many_to_many(call, table).get(name)
    if nav is None:
        raise property_not_found(name, table.logical_name)
    return catalog.table(nav.target), nav


def check_expand(call: Call, table: Table, expand: Mapping[str, QueryOptions]) -> None:
    """Validate ``$expand`` names and their nested ``$select`` / ``$filter`` / ``$orderby``.

    Raises:
        DataverseFault: 400 for an unknown navigation or nested property (§4.9).
    """
    for name, options in expand.items():
        target, _ = _target_of(call, table, name)
        render = renderer(target)
        if options.select:
            render.check_select(options.select)
        if options.filter is not None:
            render.check_select(sorted(options.filter.properties()))
        sort_view(call, target, [path for path, _ in options.orderby])
        check_expand(call, target, options.expand)


def projection(select: t.Sequence[str] | None, expand: Mapping[str, QueryOptions]) -> str:
    """The ``(…)`` of ``@odata.context`` for ``$select`` and ``$expand`` (empty when neither)."""
    items = list(select or [])
    items += [f"{name}({projection(o.select, o.expand)[1:-1]})" for name, o in expand.items()]
    return f"({','.join(items)})" if items else ""


def expand_row(
    call: Call,
    table: Table,
    row: Mapping[str, t.Any],
    out: Row,
    expand: Mapping[str, QueryOptions],
) -> Row:
    """Add each expanded navigation property of stored ``row`` to rendered ``out``."""
    expand_rows(call, table, [row], [out], expand)
    return out


def expand_rows(
    call: Call,
    table: Table,
    rows: t.Sequence[Mapping[str, t.Any]],
    outs: t.Sequence[Row],
    expand: Mapping[str, QueryOptions],
) -> None:
    """Add each expanded navigation property of stored ``rows`` to their rendered ``outs``.

    A collection-valued property reads the related table once for all ``rows``.
    """
    for name, options in expand.items():
        target, rel = _target_of(call, table, name)
        if rel is None:
            for row, out in zip(rows, outs, strict=True):
                out[name] = _single(call, table, row, name, options)
            continue
        if isinstance(rel, associations.Navigation):
            for row, out in zip(rows, outs, strict=True):
                related = related_rows(call, table, row[table.primary_id], rel)
                out[name] = render_rows(call, target, related, options)
            continue
        by_parent = _related_by_parent(call, table, rel)
        for row, out in zip(rows, outs, strict=True):
            related = by_parent.get(row[table.primary_id], [])
            out[name] = render_rows(call, target, related, options)


def _single(
    call: Call,
    table: Table,
    row: Mapping[str, t.Any],
    name: str,
    options: QueryOptions,
) -> Row | None:
    found = related_record(call, table, row, name)
    if found is None:
        return None
    target, stored = found
    out = renderer(target).selected(stored, options.select, call.annotations)
    return expand_row(call, target, stored, out, options.expand)


def related_record(
    call: Call, table: Table, row: Mapping[str, t.Any], name: str
) -> tuple[Table, Row] | None:
    """The table and stored row a single-valued navigation property of ``row`` points at."""
    column, targets = single_valued(call, table)[name]
    record_id = row.get(column.logical_name)
    target_name = row.get(column.logical_name + TARGET)
    if record_id is None or target_name not in targets:
        return None
    stored = call.env.store.find(target_name, record_id)
    return None if stored is None else (call.env.catalog.table(target_name), stored)


def sort_view(call: Call, table: Table, paths: t.Iterable[str]) -> t.Callable[[Row], Row]:
    """What ``$orderby`` reads of a stored row: its properties, and the related row's.

    ``nav/column`` paths name a single-valued navigation property; unknown names are rejected
    like ``$select`` ones (§4.9).

    Raises:
        DataverseFault: 400 for an unknown property or single-valued navigation property.
    """
    render = renderer(table)
    navigations: list[str] = []
    for path in paths:
        name, _, rest = path.partition("/")
        if not rest:
            render.check_select([name])
            continue
        if name not in single_valued(call, table) or "/" in rest:
            raise property_not_found(name, table.logical_name)
        target, _ = _target_of(call, table, name)
        renderer(target).check_select([rest])
        navigations.append(name)
    if not navigations:
        return render.full

    def view(row: Row) -> Row:
        full = render.full(row)
        for name in navigations:
            found = related_record(call, table, row, name)
            full[name] = None if found is None else renderer(found[0]).full(found[1])
        return full

    return view


def related_rows(call: Call, table: Table, record_id: str, rel: Collection) -> list[Row]:
    """Stored rows related to ``record_id`` through a collection-valued navigation property.

    One-to-many: the referencing rows whose lookup points at it; many-to-many: the associated
    rows, in the order they were associated.
    """
    if isinstance(rel, associations.Navigation):
        store = call.env.store
        found = (store.find(rel.target, i) for i in associations.related_ids(store, rel, record_id))
        return [row for row in found if row is not None]
    return _related_by_parent(call, table, rel).get(record_id, [])


def _related_by_parent(call: Call, table: Table, rel: Relationship) -> dict[str, list[Row]]:
    """Stored rows of ``rel``'s referencing table that point at a ``table`` row, by its id."""
    column = rel.referencing_attribute
    target_key = column + TARGET
    name = table.logical_name
    by_parent: dict[str, list[Row]] = {}
    for row in call.env.store.rows(rel.referencing_entity):
        parent = row.get(column)
        if parent is not None and row.get(target_key) == name:
            by_parent.setdefault(parent, []).append(row)
    return by_parent


def render_rows(
    call: Call,
    table: Table,
    stored: list[Row],
    options: QueryOptions,
) -> list[Row]:
    """Filter, order, cut and render rows of an expanded collection."""
    render = renderer(table)
    annotations = call.annotations
    if options.filter is not None:
        matches = render.matcher(options.filter.matches)
        stored = [row for row in stored if matches(row)]
    if options.orderby:
        view = sort_view(call, table, [path for path, _ in options.orderby])
        stored = order(stored, options.orderby, view)
    chosen = top(stored, options.top)
    outs = [render.selected(row, options.select, annotations) for row in chosen]
    expand_rows(call, table, chosen, outs, options.expand)
    return outs


def deep_create(call: Call, table: Table, body: dict[str, t.Any]) -> Row:
    """Create a record and the related records nested in its body (deep insert, §4.1).

    Nested objects under single-valued navigation properties are created first and bound;
    arrays under collection-valued ones are created after the parent, bound to it. The caller
    runs this inside a store transaction so that a failure writes nothing.

    Raises:
        DataverseFault: the first invalid record, as a plain create reports it.
    """
    singles = single_valued(call, table)
    collections: dict[str, Relationship] | None = None
    children: list[tuple[Relationship, list[t.Any]]] = []
    for name, value in list(body.items()):
        if isinstance(value, dict) and name in singles:
            target = _nested_table(call, table, value, singles[name][1])
            child = deep_create(call, target, prepare(dict(value)))
            del body[name]
            body[name + BIND] = Reference(target.entity_set_name, id=child[target.primary_id])
        elif isinstance(value, list):
            if collections is None:
                collections = collection_valued(call, table)
            rel = collections.get(name)
            if rel is None or rel.referencing_navigation is None:
                raise unknown_property(table, name)
            children.append((rel, value))
            del body[name]
    row = call.env.store.create(table.logical_name, body, caller=call.caller)
    parent = Reference(table.entity_set_name, id=row[table.primary_id])
    for rel, items in children:
        child_table = call.env.catalog.table(rel.referencing_entity)
        for item in items:
            if not isinstance(item, dict):
                raise payload_error(
                    child_table,
                    "Microsoft.OData.ODataException: An unexpected 'PrimitiveValue' node was "
                    "found when reading from the JSON reader. A 'StartObject' node was expected.",
                )
            nested = prepare(dict(item))
            nested[f"{rel.referencing_navigation}{BIND}"] = parent
            deep_create(call, child_table, nested)
    return row


def _nested_table(
    call: Call, table: Table, value: Mapping[str, t.Any], targets: tuple[str, ...]
) -> Table:
    """The table of a nested single-valued record: its ``@odata.type`` or the only target."""
    type_name = str(value.get(_TYPE) or "").removeprefix("#").removeprefix(_NAMESPACE)
    chosen = type_name or targets[0]
    catalog = call.env.catalog
    if chosen not in targets or not catalog.has_table(chosen):
        raise payload_error(
            table,
            f"Microsoft.OData.ODataException: The type '{chosen}' is not a valid target of the "
            "navigation property.",
        )
    return catalog.table(chosen)
