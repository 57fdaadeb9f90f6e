"""Stream planning at SCHEMA time: check a stream against its table, before any write (pure).

Decides which fields map to which columns, which are dropped (with the reason), how records are
matched (primary id, alternate key, a looked-up column, or none) and which lookups bind where;
every problem is reported at once. Every key of a stream's ``columns`` must name a field: a
top-level property (first, even when its name holds a dot), or a dotted path into an object
(``name.first``); below an object whose schema lists no properties the path is resolved per record.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from target_dynamics.associations import AssociationRule, TableRef
from target_dynamics.deadletter import FIELD as DEAD_LETTER_FIELD
from target_dynamics.errors import MetadataError
from target_dynamics.identity import IdMode
from target_dynamics.mapping import (
    JSON_TYPES_FOR,
    TEXT_TYPES,
    LookupRule,
    LookupTarget,
    RecordMapper,
    RecordRejected,
    nested_value,
)
from target_dynamics.metadata import close_names
from target_dynamics.plans import Operation, WritePlan

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from target_dynamics.metadata import ColumnInfo, TableInfo
    from target_dynamics.settings import StreamSettings

WRITABLE = frozenset(JSON_TYPES_FOR)
DELETED_AT = "_sdc_deleted_at"
"""The Singer field that marks a record deleted at the source (set: a timestamp; else null)."""
JSON_TEXT_TYPES = frozenset({"StringType", "MemoType"})
"""Columns that take objects and arrays as JSON text (``json_text_fields``)."""


@dataclass(frozen=True)
class _Field:
    """One field a stream may write: its name, the record keys to its value, its schema."""

    name: str
    path: tuple[str, ...]
    prop: Mapping[str, t.Any]
    open: bool = False
    """The path goes below an object whose schema lists no properties (keys known per record)."""


@dataclass
class StreamPlan:
    """What setup decided for one stream: mapper, write plan, settings, what was dropped."""

    mapper: RecordMapper
    plan: WritePlan
    settings: StreamSettings
    dropped: dict[str, str] = field(default_factory=dict)
    open_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Written fields whose path goes below an object without declared properties."""


def json_types(prop: Mapping[str, t.Any]) -> set[str] | None:
    """The non-null JSON types a property schema allows, or None when it does not say."""
    found: set[str] = set()
    declared = prop.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(declared)
    for option in [*prop.get("anyOf", []), *prop.get("oneOf", [])]:
        more = json_types(option)
        if more is None:
            return None
        found |= more
    found.discard("null")
    return found or None


def field_column(table: TableInfo, field_name: str, columns: Mapping[str, str]) -> str:
    """The column a stream field writes: mapped by ``columns``, else by (lower-cased) name.

    A stream with a ``columns`` mapping sends only the fields it names (the origin's data
    template): a tap's ``company`` must never land in ``contact.company`` (a phone number column)
    just because the names match.
    """
    if field_name in columns:
        return columns[field_name]
    return field_name if field_name in table.columns else field_name.lower()


def field_path(
    properties: Mapping[str, t.Any], name: str
) -> tuple[tuple[str, ...], Mapping[str, t.Any], bool] | str:
    """The record keys leading to field ``name``, its schema and whether the path is open.

    A property named ``name`` wins; else each dot steps into an object's ``properties``
    (longest matching name first). Below an object without ``properties`` the rest of the path
    is taken as it is, its schema is ``{}`` and the path is open (only records can tell whether
    it names anything). A string tells why there is no such field.
    """
    path: list[str] = []
    prop: Mapping[str, t.Any] = {}
    level: Mapping[str, t.Any] | None = properties
    rest = name.split(".")
    while rest:
        if level is None:
            return (*path, *rest), {}, True
        cut = next((i for i in range(len(rest), 0, -1) if ".".join(rest[:i]) in level), 0)
        if not cut:
            missing = ".".join(rest)
            close = close_names(missing, level)
            hint = f" (did you mean: {', '.join(close)}?)" if close else ""
            if not path:
                shown = ", ".join(f for f in level if not _internal(f)) or "none"
                return f"names no field of the stream{hint}; fields: {shown}"
            return f"names no field: '{'.'.join(path)}' has no property '{missing}'{hint}"
        path.append(".".join(rest[:cut]))
        rest = rest[cut:]
        prop = level[path[-1]] or {}
        types = json_types(prop)
        if rest and types is not None and "object" not in types:
            return (
                f"names no field: '{'.'.join(path)}' is JSON {'/'.join(sorted(types))}, not an "
                "object (with flattening_enabled, objects without declared properties arrive "
                "as JSON text)"
            )
        level = prop.get("properties")
    return tuple(path), prop, False


def _stream_fields(
    schema: Mapping[str, t.Any], settings: StreamSettings, problems: list[str], where: str
) -> list[_Field]:
    """The fields the stream may write: each ``columns`` key, else every top-level property."""
    properties = schema.get("properties") or {}
    if not settings.columns:
        return [_Field(name, (name,), prop or {}) for name, prop in properties.items()]
    fields = []
    for name in settings.columns:
        found = field_path(properties, name)
        if isinstance(found, str):
            problems.append(
                f"{where}: columns key '{name}' {found}; fix the key in "
                "`streams.<stream>.columns` (a nested property is reached with a dotted path "
                "such as 'name.first')"
            )
            continue
        fields.append(_Field(name, *found))
    return fields


def lookup_tables(
    schema: Mapping[str, t.Any], settings: StreamSettings, table: TableInfo
) -> list[tuple[str, str]]:
    """``(lookup column, target table)`` for each lookup column a field of ``schema`` writes.

    The caller reads these tables' metadata before :func:`plan_stream` binds the lookups.
    """
    pairs: list[tuple[str, str]] = []
    for found in _stream_fields(schema, settings, [], ""):
        column = table.columns.get(field_column(table, found.name, settings.columns))
        if column is not None and column.is_lookup:
            pairs.extend((column.name, target) for target, _ in table.lookups.get(column.name, []))
    return pairs


def _invalid_reason(column: ColumnInfo, operation: Operation) -> str | None:
    if column.attribute_of:
        return f"internal shadow of '{column.attribute_of}' (AttributeOf)"
    if column.type_name not in WRITABLE:
        return f"cannot be written ({column.type_name})"
    # A create or upsert sets the state by an update once the row exists (§4.10).
    create_ok = column.valid_for_create or column.type_name == "StateType"
    update_ok = column.valid_for_update
    if operation is Operation.CREATE and not create_ok:
        return "read-only on create (IsValidForCreate false)"
    if operation is Operation.UPDATE and not update_ok:
        return "read-only on update (IsValidForUpdate false)"
    if operation is Operation.UPSERT and not (create_ok and update_ok):
        return "not valid for upsert (IsValidForCreate/IsValidForUpdate false)"
    return None


def _id_mode(
    table: TableInfo, settings: StreamSettings, problems: list[str], where: str
) -> IdMode | None:
    ids = settings.id_field
    unknown = [c for c in ids if c not in table.columns]
    origin = "id_field" if settings.id_from_config else "key property"
    for name in unknown:
        hint = close_names(name, table.columns)
        problems.append(
            f"{where}: {origin} '{name}' is not a column of {table.logical_name}"
            + (f" (close: {', '.join(hint)})" if hint else "")
            + "; set id_field or map the field with `streams.<stream>.columns`"
        )
    if unknown:
        return None
    if not ids:
        return IdMode.NONE
    if ids == (table.primary_id,):
        return IdMode.PRIMARY
    if table.key_for(ids):
        return IdMode.ALTERNATE
    inactive = _inactive_key(table, ids)
    if inactive:
        problems.append(f"{where}: id_field {list(ids)} {inactive}")
    elif len(ids) == 1:
        return IdMode.MATCH
    else:
        keys = "; ".join(f"{k}: {', '.join(v)}" for k, v in table.keys.items()) or "none"
        problems.append(
            f"{where}: id_field {list(ids)} is not an alternate key of {table.logical_name} "
            f"(active keys: {keys}); use one column, or the columns of one key"
        )
    return None


def _inactive_key(table: TableInfo, ids: tuple[str, ...]) -> str | None:
    """Why the alternate key made of ``ids`` cannot be used yet (§3.6), if it is not active."""
    wanted = frozenset(ids)
    for name, (columns, status) in table.inactive_keys.items():
        if frozenset(columns) != wanted:
            continue
        if status == "Failed":
            todo = (
                "its index could not be built (often rows holding duplicate values): remove the "
                "duplicates, reactivate the key (Power Apps > Tables > Keys) and run again"
            )
        else:
            todo = (
                "Dataverse is still building its index (a system job): wait until the key's "
                "status is Active (Power Apps > Tables > Keys) and run again"
            )
        key = f"alternate key {name} of {table.logical_name}"
        return f"is {key}, which is {status}, not Active: {todo}"
    return None


def _internal(name: str) -> bool:
    """SDK metadata and the dead-letter reason: never written, never reported as dropped."""
    return name.startswith("_sdc_") or name == DEAD_LETTER_FIELD


def _type_problem(found: _Field, column: ColumnInfo, *, json_text: bool) -> str | None:
    """Why the field's declared JSON types can never reach ``column``, with the fix.

    ``json_text``: the field is listed in ``json_text_fields`` (objects and arrays then reach
    text columns as JSON text).
    """
    allowed = JSON_TYPES_FOR.get(column.type_name, frozenset())
    if json_text and column.type_name in JSON_TEXT_TYPES:
        allowed |= {"object", "array"}
    declared = json_types(found.prop)
    if not declared or declared <= allowed:
        return None
    said = (
        f"field '{found.name}' is JSON {'/'.join(sorted(declared))} but column "
        f"'{column.name}' is {column.type_name}, which takes {'/'.join(sorted(allowed))}"
    )
    if column.type_name in JSON_TEXT_TYPES and declared & {"object", "array"}:
        return (
            f"{said}; write it as JSON text by listing it in "
            f"`streams.<stream>.json_text_fields`, or map its properties with dotted paths in "
            f'`streams.<stream>.columns` (e.g. "{found.name}.<property>": "<column>"; '
            "flattening_enabled splits only objects whose schema declares properties), "
            f'or drop it (`"{found.name}": "__NULL__"`)'
        )
    return f'{said}; convert it with a stream map or drop it (`"{found.name}": "__NULL__"`)'


def _choose_fields(  # noqa: PLR0913, PLR0917 - one call site, all context
    schema: Mapping[str, t.Any],
    settings: StreamSettings,
    table: TableInfo,
    operation: Operation,
    where: str,
    problems: list[str],
) -> tuple[list[_Field], dict[str, str], dict[str, str]]:
    """The fields written, field -> column for them, and those dropped (field -> reason)."""
    chosen: list[_Field] = []
    fields: dict[str, str] = {}
    seen: dict[str, str] = {}
    candidates = _stream_fields(schema, settings, problems, where)
    dropped = _unmapped(schema, candidates)
    for found in candidates:
        name = found.name
        if _internal(name) or name == settings.operation_field:
            continue
        column_name = field_column(table, name, settings.columns)
        column = table.columns.get(column_name)
        is_id = column_name in settings.id_field
        if column is None or "@odata." in name:
            dropped[name] = _no_such_column(column_name, table)
            continue
        if column_name in seen:
            problems.append(
                f"{where}: fields '{seen[column_name]}' and '{name}' both write {column_name}"
            )
            continue
        if operation.removes and not is_id:
            continue
        reason = None if is_id else _invalid_reason(column, operation)
        if reason:
            dropped[name] = reason
            continue
        problem = _type_problem(found, column, json_text=name in settings.json_text_fields)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        seen[column_name] = name
        fields[name] = column_name
        chosen.append(found)
    return chosen, fields, dropped


def _unmapped(schema: Mapping[str, t.Any], candidates: Sequence[_Field]) -> dict[str, str]:
    """Top-level properties that no candidate field reads, each with the reason it is dropped."""
    used = {found.path[0] for found in candidates}
    return {
        name: "not in the stream's `columns` mapping"
        for name in schema.get("properties") or {}
        if name not in used
    }


def _no_such_column(column_name: str, table: TableInfo) -> str:
    """Why a field is dropped when ``table`` has no column ``column_name``, with close names."""
    hint = close_names(column_name, table.columns)
    return "no such column" + (f" (close: {', '.join(hint)})" if hint else "")


def _check_json_text(
    schema: Mapping[str, t.Any],
    settings: StreamSettings,
    table: TableInfo,
    problems: list[str],
    where: str,
) -> None:
    """Each ``json_text_fields`` entry names a field of the stream whose column holds text."""
    names = [found.name for found in _stream_fields(schema, settings, [], where)]
    for name in settings.json_text_fields:
        column = table.columns.get(field_column(table, name, settings.columns))
        if name not in names:
            close = close_names(name, names)
            problems.append(
                f"{where}: json_text_fields names '{name}', which is no field of the stream"
                + (f" (did you mean: {', '.join(close)}?)" if close else "")
            )
        elif column is not None and column.type_name not in JSON_TEXT_TYPES:
            problems.append(
                f"{where}: json_text_fields names '{name}', but its column '{column.name}' is "
                f"{column.type_name}; JSON text goes only into text (String, Memo) columns"
            )


def plan_stream(  # noqa: PLR0913
    stream: str,
    schema: Mapping[str, t.Any],
    settings: StreamSettings,
    table: TableInfo,
    targets: Mapping[str, TableInfo],
    *,
    extra_fields: str = "drop",
) -> StreamPlan:
    """Check ``stream`` against ``table`` and build its mapper and write plan.

    Args:
        stream: Stream name (after stream maps).
        schema: The stream's JSON schema.
        settings: The stream's effective settings.
        table: Metadata of the stream's table.
        targets: Metadata of the tables its lookups may point to (missing ones are skipped).
        extra_fields: ``drop`` or ``error`` for fields the table cannot take.

    Raises:
        MetadataError: Every problem at once (unknown ID field, type mismatches, bad lookups,
            and dropped fields when ``extra_fields`` is ``error``).
    """
    where = f"stream '{stream}' -> table '{table.logical_name}'"
    problems: list[str] = []
    mode = _id_mode(table, settings, problems, where)
    operation = _effective_operation(mode, settings.operation, problems, where)
    deactivation = _deactivation(settings, table, problems, where)
    _check_removals(schema, settings, table, deactivation, operation, problems, where)
    # Per-record operations: the columns every writing operation can take (upsert's).
    choose = Operation.UPSERT if settings.operation_field else operation
    chosen, fields, dropped = _choose_fields(schema, settings, table, choose, where, problems)
    _check_json_text(schema, settings, table, problems, where)
    if mode is not None:
        _check_ids_written(schema, settings, table, fields, problems, where)
    lookups = _lookup_rules(fields, settings, table, targets, problems, where)
    dropped = _reported_drops(dropped, extra_fields, problems, where)
    if problems:
        raise MetadataError(
            f"Stream '{stream}' cannot be written:\n" + "\n".join(f"- {p}" for p in problems)
        )
    mode = mode or IdMode.NONE
    mapper = RecordMapper(
        table=table,
        operation=operation.value,
        fields=fields,
        paths={f.name: f.path for f in chosen if f.path != (f.name,)},
        json_text=frozenset(settings.json_text_fields) & frozenset(fields),
        id_columns=settings.id_field,
        id_mode=mode,
        lookups=lookups,
        stream=stream,
        content_ids=settings.content_ids,
    )
    plan = WritePlan(
        entity_set=table.entity_set,
        logical_name=table.logical_name,
        primary_id=table.primary_id,
        operation=operation,
        id_mode=mode,
        supports_bulk=table.supports_bulk,
        all_matches=settings.all_matches,
        deactivation=deactivation,
    )
    open_paths = {f.name: f.path for f in chosen if f.open and f.name in fields}
    return StreamPlan(mapper, plan, settings, dropped, open_paths)


def _effective_operation(
    mode: IdMode | None, operation: Operation, problems: list[str], where: str
) -> Operation:
    """The operation the stream runs: an upsert with nothing to match on creates every row."""
    if mode is not IdMode.NONE:
        return operation
    if operation is Operation.UPDATE or operation.removes:
        problems.append(
            f"{where}: {operation} needs id_field (or key_properties) naming the rows to change"
        )
    return Operation.CREATE if operation is Operation.UPSERT else operation


def _check_ids_written(  # noqa: PLR0913, PLR0917 - one call site, all context
    schema: Mapping[str, t.Any],
    settings: StreamSettings,
    table: TableInfo,
    fields: Mapping[str, str],
    problems: list[str],
    where: str,
) -> None:
    """Each ``id_field`` column of the table is written by some field of the stream."""
    written = set(fields.values())
    missing_ids = [c for c in settings.id_field if c not in written and c in table.columns]
    if missing_ids:
        problems.append(
            f"{where}: id_field {', '.join(missing_ids)} is not a field of the stream "
            f"(fields: {', '.join(schema.get('properties') or {})}); map it with "
            "`streams.<stream>.columns` or set id_field"
        )


def _lookup_rules(  # noqa: PLR0913, PLR0917 - one call site, all context
    fields: Mapping[str, str],
    settings: StreamSettings,
    table: TableInfo,
    targets: Mapping[str, TableInfo],
    problems: list[str],
    where: str,
) -> dict[str, LookupRule]:
    """Lookup column -> how its field's values bind, for each lookup column written."""
    lookups: dict[str, LookupRule] = {}
    for name, column_name in fields.items():
        if not table.columns[column_name].is_lookup:
            continue
        rule = _lookup_rule(column_name, name, settings, table, targets, problems, where)
        if rule:
            lookups[column_name] = rule
    return lookups


def _reported_drops(
    dropped: Mapping[str, str], extra_fields: str, problems: list[str], where: str
) -> dict[str, str]:
    """The dropped fields worth reporting (no internal ones); problems when they are errors."""
    reported = {f: why for f, why in dropped.items() if not _internal(f)}
    if reported and extra_fields == "error":
        problems.extend(f"{where}: field '{f}': {why}" for f, why in sorted(reported.items()))
    return reported


def unmatched_paths(
    stream: str, open_paths: Mapping[str, tuple[str, ...]], records: Sequence[Mapping[str, t.Any]]
) -> list[str]:
    """A warning for each open path (see :class:`StreamPlan`) that no record of ``records`` holds.

    Such a ``columns`` key is most likely a typo below an object whose schema does not list its
    properties; the warning names the keys the objects held instead and the closest of them.
    """
    warnings = []
    for name, path in open_paths.items():
        held: set[str] = set()
        for record in records:
            try:
                parent = nested_value(path[:-1], name, record)
            except RecordRejected:
                continue
            if not isinstance(parent, dict):
                continue
            if path[-1] in parent:
                break
            held.update(parent)
        else:
            if not held:
                continue
            where = ".".join(path[:-1])
            close = close_names(path[-1], held)
            hint = f"; did you mean {where}.{close[0]}?" if close else ""
            warnings.append(
                f"Stream '{stream}': columns key '{name}' matched no value in the first "
                f"{len(records)} records ('{where}' held: {', '.join(sorted(held)[:20])}{hint}); "
                f"its column is not written. Fix the key in `streams.{stream}.columns`."
            )
    return warnings


def _deactivation(
    settings: StreamSettings, table: TableInfo, problems: list[str], where: str
) -> dict[str, int] | None:
    """The pair that deactivates a row (§4.10); None when there is none.

    ``inactive_status`` with the state it belongs to, else the table's inactive state with its
    default status.
    """
    wanted = settings.inactive_status
    if wanted is None:
        return table.deactivation
    status = table.columns.get("statuscode")
    if status is None or "statecode" not in table.columns:
        problems.append(f"{where}: inactive_status: table {table.logical_name} has no state")
        return None
    text = str(wanted).strip().casefold()
    value = next(
        (v for v, label in status.options.items() if text in {str(v), label.casefold()}), None
    )
    state = status.status_state.get(value) if value is not None else None
    if value is None or not state:
        choices = ", ".join(
            f"'{label}' ({v})" for v, label in status.options.items() if status.status_state.get(v)
        )
        why = "belongs to the active state" if value is not None else "is no status of the table"
        problems.append(
            f"{where}: inactive_status {wanted!r} {why}; use a status of an inactive state: "
            f"{choices}"
        )
        return None
    return {"statecode": state, "statuscode": value}


def _check_removals(  # noqa: PLR0913, PLR0917 - one call site, all context
    schema: Mapping[str, t.Any],
    settings: StreamSettings,
    table: TableInfo,
    deactivation: Mapping[str, int] | None,
    operation: Operation,
    problems: list[str],
    where: str,
) -> None:
    """A deactivation needs a pair to set; ``operation_field`` must name a field."""
    fields = schema.get("properties") or {}
    name = settings.operation_field
    if name and name not in fields:
        close = close_names(name, fields)
        problems.append(
            f"{where}: operation_field '{name}' is not a field of the stream"
            + (f" (did you mean: {', '.join(close)}?)" if close else "")
        )
    if deactivation is not None or settings.inactive_status is not None:
        return
    why = f"table {table.logical_name} has no inactive state (statecode) to deactivate rows with"
    pick = ""
    if "statecode" in table.columns:
        why = f"table {table.logical_name} has several inactive states"
        pick = "set `streams.<stream>.inactive_status` to the status to deactivate with, "
    if operation is Operation.DEACTIVATE:
        problems.append(f"{where}: operation deactivate: {why}; {pick}or use operation delete")
    elif DELETED_AT in fields and not settings.hard_delete:
        problems.append(
            f"{where}: records with {DELETED_AT} set (deleted at the source) are deactivated "
            f"unless hard_delete is true, but {why}: {pick}set hard_delete to true to delete "
            f"them, or drop {DELETED_AT} with a stream map to write them as they are"
        )


def _lookup_rule(  # noqa: PLR0913, PLR0917 - one call site, all context
    column: str,
    field_name: str,
    settings: StreamSettings,
    table: TableInfo,
    targets: Mapping[str, TableInfo],
    problems: list[str],
    where: str,
) -> LookupRule | None:
    pairs = table.lookups.get(column, [])
    if not pairs:
        problems.append(f"{where}: lookup '{column}' has no many-to-one relationship in metadata")
        return None
    config = settings.lookups.get(column) or settings.lookups.get(field_name)
    found = {
        name: LookupTarget(
            name,
            info.entity_set,
            nav,
            tuple(info.keys.values()),
            frozenset(c for c, col in info.columns.items() if col.type_name in TEXT_TYPES),
            info.primary_id,
        )
        for name, nav in pairs
        if (info := targets.get(name)) is not None
    }
    if config is None:
        return LookupRule(column, found)
    if config.table and config.table not in found:
        problems.append(
            f"{where}: lookups.{column}.table '{config.table}' is not a target of {column} "
            f"(targets: {', '.join(name for name, _ in pairs)})"
        )
        return None
    if config.key:
        target = targets[config.table or ""]
        if not target.key_for(config.key):
            keys = "; ".join(", ".join(v) for v in target.keys.values()) or "none"
            problems.append(
                f"{where}: lookups.{column}.key {list(config.key)} is not an alternate key of "
                f"{config.table} (active keys: {keys})"
            )
            return None
    return LookupRule(column, found, config.table, config.key, config.table_field)


def association_tables(settings: StreamSettings, table: TableInfo) -> list[str]:
    """The related tables of the N:N relationships the stream's ``associations`` name.

    The caller reads their metadata before :func:`plan_associations`.
    """
    names = (table.many_to_many.get(spec.relationship) for spec in settings.associations.values())
    return sorted({found[0] for found in names if found is not None})


def plan_associations(
    stream: str,
    schema: Mapping[str, t.Any],
    settings: StreamSettings,
    table: TableInfo,
    related: Mapping[str, TableInfo],
) -> list[AssociationRule]:
    """Check each of the stream's associations against the table's N:N relationships.

    Raises:
        MetadataError: every problem at once (a field the stream lacks, an unknown relationship
            or key column, a delete stream), with close names.
    """
    where = f"stream '{stream}' -> table '{table.logical_name}'"
    problems: list[str] = []
    rules: list[AssociationRule] = []
    if settings.operation.removes:
        problems.append(f"{where}: associations need rows that land, not {settings.operation}s")
    fields = schema.get("properties") or {}
    for name, spec in settings.associations.items():
        if name not in fields:
            problems.append(f"{where}: associations.{name} names no field of the stream")
        found = table.many_to_many.get(spec.relationship)
        if found is None:
            close = close_names(spec.relationship, table.many_to_many)
            problems.append(
                f"{where}: associations.{name}: '{spec.relationship}' is not an N:N "
                f"relationship of {table.logical_name}"
                + (f" (close: {', '.join(close)})" if close else "")
            )
            continue
        other = related[found[0]]
        if spec.key and spec.key not in other.columns:
            close = close_names(spec.key, other.columns)
            problems.append(
                f"{where}: associations.{name}.key '{spec.key}' is not a column of "
                f"{other.logical_name}" + (f" (close: {', '.join(close)})" if close else "")
            )
            continue
        ref = TableRef(other.logical_name, other.entity_set, other.primary_id)
        rules.append(
            AssociationRule(
                name, spec.relationship, found[1], ref, spec.key, sync=spec.mode == "sync"
            )
        )
    if problems:
        raise MetadataError(
            f"Stream '{stream}' cannot be written:\n" + "\n".join(f"- {p}" for p in problems)
        )
    return rules
