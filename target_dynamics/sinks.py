"""One sink per stream: checks the stream against the table at SCHEMA, then writes batches.

The sink knows Singer and the failure policy; conversion lives in :mod:`mapping`, HTTP in the
writer. ``process_batch`` returns only when every record of the batch landed or was rejected, so
the STATE the SDK emits after a drain is never ahead of the data.
"""

from __future__ import annotations

import json
import typing as t
import uuid
from collections import Counter
from dataclasses import dataclass, field

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import JSONSchemaValidator

from target_dynamics.deadletter import FIELD as DEAD_LETTER_FIELD
from target_dynamics.deadletter import DeadLetter
from target_dynamics.errors import MetadataError, WebApiError
from target_dynamics.mapping import (
    JSON_TYPES_FOR,
    IdMode,
    LookupRule,
    LookupTarget,
    RecordMapper,
    RecordRejected,
    deterministic_id,
)
from target_dynamics.metadata import close_names
from target_dynamics.writer import Operation, Row, WritePlan

if t.TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from target_dynamics.metadata import ColumnInfo, TableInfo
    from target_dynamics.settings import StreamSettings
    from target_dynamics.target import TargetDynamics

CODE_NOT_FOUND = "0x80040217"
WRITABLE = frozenset(JSON_TYPES_FOR)
_SHOWN_REASONS = 5


@dataclass
class StreamPlan:
    """What setup decided for one stream: the mapper, the write plan, what was dropped."""

    mapper: RecordMapper
    plan: WritePlan
    dropped: dict[str, str] = field(default_factory=dict)


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


def _column_name(table: TableInfo, field_name: str, columns: Mapping[str, str]) -> str:
    if field_name in columns:
        return columns[field_name]
    return field_name if field_name in table.columns else field_name.lower()


def _invalid_reason(column: ColumnInfo, operation: Operation) -> str | None:
    if column.attribute_of:
        return f"internal shadow of '{column.attribute_of}' (AttributeOf)"
    if column.type_name not in WRITABLE:
        return f"cannot be written ({column.type_name})"
    create_ok = column.valid_for_create
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
    if len(ids) == 1:
        return IdMode.MATCH
    keys = "; ".join(f"{k}: {', '.join(v)}" for k, v in table.keys.items()) or "none"
    problems.append(
        f"{where}: id_field {list(ids)} is not an alternate key of {table.logical_name} "
        f"(active keys: {keys}); use one column, or the columns of one key"
    )
    return None


def plan_stream(  # noqa: C901, PLR0912, PLR0913, PLR0915
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
    dropped: dict[str, str] = {}
    mode = _id_mode(table, settings, problems, where)
    operation = settings.operation
    if mode is IdMode.NONE and operation in {Operation.UPDATE, Operation.DELETE}:
        problems.append(
            f"{where}: {operation} needs id_field (or key_properties) naming the rows to change"
        )
    if mode is IdMode.NONE and operation is Operation.UPSERT:
        operation = Operation.CREATE  # nothing to match on: every record is a new row
    fields: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if name.startswith("_sdc_") or name == DEAD_LETTER_FIELD:
            continue
        column_name = _column_name(table, name, settings.columns)
        column = table.columns.get(column_name)
        is_id = column_name in settings.id_field
        if column is None or "@odata." in name:
            hint = close_names(column_name, table.columns)
            dropped[name] = "no such column" + (f" (close: {', '.join(hint)})" if hint else "")
            continue
        if column_name in seen:
            problems.append(
                f"{where}: fields '{seen[column_name]}' and '{name}' both write {column_name}"
            )
            continue
        if operation is Operation.DELETE and not is_id:
            continue
        reason = None if is_id else _invalid_reason(column, operation)
        if reason:
            dropped[name] = reason
            continue
        allowed = JSON_TYPES_FOR.get(column.type_name, frozenset())
        declared = json_types(prop)
        if declared and not declared <= allowed:
            problems.append(
                f"{where}: field '{name}' is JSON {'/'.join(sorted(declared))} but column "
                f"'{column_name}' is {column.type_name}, which takes "
                f"{'/'.join(sorted(allowed))}; convert it with a stream map or drop it "
                f'(`"{name}": "__NULL__"`)'
            )
            continue
        seen[column_name] = name
        fields[name] = column_name
    missing_ids = [c for c in settings.id_field if c not in seen and c in table.columns]
    if missing_ids and mode is not None:
        problems.append(
            f"{where}: id_field {', '.join(missing_ids)} is not a field of the stream "
            f"(fields: {', '.join(schema.get('properties') or {})}); map it with "
            "`streams.<stream>.columns` or set id_field"
        )
    lookups: dict[str, LookupRule] = {}
    for name, column_name in fields.items():
        column = table.columns[column_name]
        if not column.is_lookup:
            continue
        rule = _lookup_rule(column_name, name, settings, table, targets, problems, where)
        if rule:
            lookups[column_name] = rule
    if dropped and extra_fields == "error":
        problems.extend(f"{where}: field '{f}': {why}" for f, why in sorted(dropped.items()))
    if problems:
        raise MetadataError(
            f"Stream '{stream}' cannot be written:\n" + "\n".join(f"- {p}" for p in problems)
        )
    key_columns: tuple[str, ...] = ()
    if operation is not Operation.CREATE:
        key_columns = settings.id_field if mode is IdMode.ALTERNATE else (table.primary_id,)
    mapper = RecordMapper(
        table=table,
        operation=operation.value,
        fields=fields,
        id_columns=settings.id_field,
        id_mode=mode or IdMode.NONE,
        lookups=lookups,
    )
    plan = WritePlan(
        entity_set=table.entity_set,
        logical_name=table.logical_name,
        primary_id=table.primary_id,
        operation=operation,
        key_columns=key_columns,
        supports_bulk=table.supports_bulk,
    )
    return StreamPlan(mapper, plan, dropped)


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
        name: LookupTarget(name, info.entity_set, nav, tuple(info.keys.values()))
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


@dataclass
class _Pending:
    record: dict
    raw: Mapping[str, t.Any]
    raw_stream: str
    fallback_id: str | None
    invalid: str | None = None


class _RecordChecker(JSONSchemaValidator):
    """Schema validation that rejects the one record instead of failing the run."""

    def __init__(self, schema: dict, failures: dict[int, str]) -> None:
        super().__init__(schema)
        self._failures = failures

    def validate(self, record: dict) -> None:
        """Note why ``record`` does not match the stream's schema (keyed by its id)."""
        try:
            super().validate(record)
        except InvalidRecord as exc:
            detail = str(exc).removeprefix("Record Message Validation Error: ")
            self._failures[id(record)] = f"record does not match the stream's schema: {detail}"


class DataverseSink(BatchSink):
    """Writes one stream's records to one Dataverse table."""

    MAX_SIZE_DEFAULT = 1000

    def __init__(self, target: TargetDynamics, **kwargs: t.Any) -> None:
        self._target = target
        self._stream_plan: StreamPlan | None = None
        self._invalid: dict[int, str] = {}
        super().__init__(target=target, **kwargs)

    def get_validator(self) -> JSONSchemaValidator | None:
        """Validate records against the stream's schema unless ``validate_records`` is off.

        A record that fails is rejected; the run goes on.
        """
        return _RecordChecker(self.schema, self._invalid) if self.validate_schema else None

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        # The SDK raises on an unparseable date-time, ending the run; reject the record instead.
        try:
            super()._parse_timestamps_in_record(record, schema, treatment)
        except ValueError as exc:
            self._invalid.setdefault(id(record), f"unparseable date or time: {exc}")

    @property
    def stream_plan(self) -> StreamPlan:
        """What :meth:`setup` decided."""
        if self._stream_plan is None:
            msg = f"sink for '{self.stream_name}' used before setup()"
            raise RuntimeError(msg)
        return self._stream_plan

    def setup(self) -> None:
        """Read the table's metadata and check the stream against it (once per SCHEMA)."""
        target = self._target
        settings = target.settings
        stream = settings.for_stream(self.stream_name, list(self.key_properties))
        table = target.metadata.table(stream.entity)
        targets: dict[str, TableInfo] = {}
        for name, prop in (self.schema.get("properties") or {}).items():
            column = table.columns.get(_column_name(table, name, stream.columns))
            if column is None or not column.is_lookup or prop is None:
                continue
            for target_table, _ in table.lookups.get(column.name, []):
                try:
                    targets[target_table] = target.metadata.table(target_table)
                except MetadataError:
                    self.logger.info(
                        "Lookup %s: table %s has no metadata", column.name, target_table
                    )
        self._stream_plan = plan_stream(
            self.stream_name,
            self.schema,
            stream,
            table,
            targets,
            extra_fields=settings.extra_fields,
        )
        plan = self._stream_plan
        if plan.dropped:
            self.logger.warning(
                "Stream '%s' -> %s: dropping fields the table cannot take for %s: %s",
                self.stream_name,
                table.logical_name,
                plan.plan.operation,
                "; ".join(f"{f} ({why})" for f, why in sorted(plan.dropped.items())),
            )
        if plan.plan.operation is not stream.operation:
            self.logger.warning(
                "Stream '%s' has no id_field or key_properties: upsert creates every record",
                self.stream_name,
            )

    def process_record(self, record: dict, context: dict) -> None:
        """Queue ``record`` with the message it came from and, for keyless creates, its GUID."""
        raw_stream, raw = self._target.current_raw or (self.stream_name, record)
        keyless = self.stream_plan.mapper.id_mode is IdMode.NONE
        pending = _Pending(
            record,
            raw,
            raw_stream,
            str(uuid.uuid4()) if keyless else None,
            self._invalid.pop(id(record), None),
        )
        context.setdefault("records", []).append(pending)
        self._target.report.add(self.stream_name, received=1)

    def process_batch(self, context: dict) -> None:
        """Write the batch; return only when every record landed or was rejected."""
        pending: Sequence[_Pending] = context.get("records", [])
        if not pending:
            return
        with self._target.writing():
            self._write(pending)

    def _write(self, pending: Sequence[_Pending]) -> None:
        plan = self.stream_plan
        rejected: dict[int, DeadLetter] = {}
        rows: dict[int, Row] = {}
        matches: dict[int, t.Any] = {}
        for index, item in enumerate(pending):
            if item.invalid:
                rejected[index] = self._letter(item.invalid, None, None)
                continue
            try:
                mapped = plan.mapper.map(item.record, fallback_id=item.fallback_id)
            except RecordRejected as exc:
                rejected[index] = self._letter(exc.reason, exc.code, None)
                continue
            if mapped.match is not None:
                matches[index] = mapped.match
            rows[index] = Row(index=index, payload=mapped.payload, key=mapped.key)
        if self._target.settings.dry_run:
            self._settle(pending, list(rows), rejected, lost=set())
            return
        done: list[int] = []
        if matches:
            self._resolve_matches(rows, matches, rejected, done)
        survivors, followers = _coalesce(
            sorted(rows.values(), key=lambda r: r.index), plan.plan.primary_id
        )
        result = self._target.writer.write(plan.plan, survivors)
        lost: set[int] = set()
        for index, error in result.rejected:
            for member in followers.get(index, [index]):
                rejected[member] = self._letter(error.message, error.code, error.status)
                if error.is_transient:
                    lost.add(member)
        landed = [m for index in result.landed for m in followers.get(index, [index])]
        self._target.report.add(
            self.stream_name,
            created=result.created,
            updated=result.updated,
            deleted=result.deleted,
            upserted=getattr(result, "upserted", 0),
        )
        self._settle(pending, landed + done, rejected, lost)

    def _resolve_matches(
        self,
        rows: dict[int, Row],
        matches: dict[int, t.Any],
        rejected: dict[int, DeadLetter],
        done: list[int],
    ) -> None:
        plan = self.stream_plan.plan
        column = self.stream_plan.mapper.id_columns[0]
        values = list(dict.fromkeys(matches.values()))
        try:
            found = self._target.writer.lookup_ids(plan.entity_set, plan.primary_id, column, values)
        except WebApiError as exc:
            for index in matches:
                rows.pop(index)
                rejected[index] = self._letter(
                    f"matching by {column}: {exc.message}", exc.code, exc.status
                )
            return
        for index, value in matches.items():
            row = rows.pop(index)
            guid = found.get(value)
            if guid is None and plan.operation is Operation.DELETE:
                done.append(index)  # nothing to delete
                continue
            if guid is None and plan.operation is Operation.UPDATE:
                rejected[index] = self._letter(
                    f"no {plan.logical_name} row has this {column} "
                    "(update changes existing rows only)",
                    CODE_NOT_FOUND,
                    404,
                )
                continue
            guid = guid or deterministic_id(plan.logical_name, [value])
            rows[index] = Row(index=index, payload=row.payload, key={plan.primary_id: guid})

    def _letter(self, reason: str, code: str | None, status: int | None) -> DeadLetter:
        plan = self.stream_plan.plan
        return DeadLetter(reason, code, status, plan.operation.value, plan.logical_name)

    def _settle(
        self,
        pending: Sequence[_Pending],
        landed: list[int],
        rejected: dict[int, DeadLetter],
        lost: set[int],
    ) -> None:
        report = self._target.report
        report.add(
            self.stream_name,
            landed=len(landed),
            rejected=len(rejected) - len(lost),
            lost=len(lost),
        )
        if lost:
            self._target.unsettled = True
        if not rejected:
            return
        counts = Counter(letter.code or "" for letter in rejected.values())
        examples = list(dict.fromkeys(letter.error for letter in rejected.values()))
        self.logger.warning(
            "Stream '%s': %d records rejected (%s); for example: %s",
            self.stream_name,
            len(rejected),
            ", ".join(f"{code or 'no code'} x{n}" for code, n in counts.most_common()),
            " | ".join(examples[:_SHOWN_REASONS]),
        )
        by_stream: dict[str, list[tuple[Mapping[str, t.Any], DeadLetter]]] = {}
        for index, letter in sorted(rejected.items()):
            item = pending[index]
            by_stream.setdefault(item.raw_stream, []).append((item.raw, letter))
        for raw_stream, items in by_stream.items():
            schema = self._target.raw_schema(raw_stream) or {
                "type": "SCHEMA",
                "stream": raw_stream,
                "schema": self.original_schema,
                "key_properties": list(self.key_properties),
            }
            self._target.dead_letter.write(raw_stream, schema, items)

    def clean_up(self) -> None:
        """Emit the SDK's record-count metric."""
        super().clean_up()


def _identity(row: Row, primary_id: str) -> str:
    if row.key is not None:
        return json.dumps(row.key, sort_keys=True, default=str)
    return json.dumps({primary_id: row.payload.get(primary_id) or f"#{row.index}"}, default=str)


def _coalesce(rows: t.Iterable[Row], primary_id: str) -> tuple[list[Row], dict[int, list[int]]]:
    """Merge rows that address the same record (later values win), keeping the first's index.

    Returns:
        The rows to write, and for each written index every record index it stands for.
    """
    merged: dict[str, Row] = {}
    members: dict[int, list[int]] = {}
    for row in rows:
        identity = _identity(row, primary_id)
        first = merged.get(identity)
        if first is None:
            merged[identity] = row
            members[row.index] = [row.index]
            continue
        merged[identity] = Row(first.index, {**first.payload, **row.payload}, first.key)
        members[first.index].append(row.index)
    return list(merged.values()), members
