"""One sink per stream: checks the stream against the table at SCHEMA, then writes batches.

The sink knows Singer and the failure policy; conversion lives in :mod:`mapping`, HTTP in the
writer. ``process_batch`` maps the batch and hands its write to the :mod:`pipeline`; the target
emits a STATE only once every write before it settled its records (landed or rejected), so
STATE is never ahead of the data.
"""

from __future__ import annotations

import dataclasses
import typing as t
from collections import Counter
from dataclasses import dataclass
from functools import cached_property

from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord
from singer_sdk.helpers._typing import get_datelike_property_type
from singer_sdk.sinks import BatchSink
from singer_sdk.sinks.core import JSONSchemaValidator
from typing_extensions import override

from target_dynamics import binds
from target_dynamics.associations import StreamAssociations, TableRef
from target_dynamics.changes import record_operation, write_phases
from target_dynamics.deadletter import DeadLetter
from target_dynamics.errors import MetadataError, WebApiError
from target_dynamics.identity import IdMode
from target_dynamics.mapping import RecordRejected
from target_dynamics.membership import StreamLists
from target_dynamics.mirror import Mirror
from target_dynamics.pipeline import Claims
from target_dynamics.planning import (
    DELETED_AT,
    StreamPlan,
    association_tables,
    lookup_tables,
    plan_associations,
    plan_stream,
    unmatched_paths,
)
from target_dynamics.plans import Operation, Row, WritePlan, WriteResult
from target_dynamics.schemacheck import compile_check
from target_dynamics.settings_schema import BATCH_SIZE_ROWS

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from target_dynamics.metadata import TableInfo
    from target_dynamics.run import RunContext
    from target_dynamics.settings import StreamSettings
    from target_dynamics.target import TargetDynamics

_SHOWN_REASONS = 5
_OPERATION_VALUES = {operation: operation.value for operation in Operation}
"""Each operation's name (``Enum.value`` is a Python-level property, read for every record)."""
_SDC_COLUMNS = frozenset(
    (
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_sequence",
        "_sdc_table_version",
        "_sdc_sync_started_at",
    )
)
"""The SDK's record metadata columns a record loses (``_sdc_deleted_at`` stays: a deletion)."""


class Received(t.NamedTuple):
    """A RECORD message as it arrived (before stream maps) and where it came from.

    Dead letters replay its record; ``source`` names the input line or the batch file's line.
    """

    message: dict[str, t.Any]
    origin: str | int
    """Where the message came from: the input line's number (0: unknown), or a description."""

    @property
    def source(self) -> str:
        """Where the message came from, for a dead letter: ``input line 7``."""
        origin = self.origin
        if isinstance(origin, str):
            return origin
        return f"input line {origin}" if origin else "input"

    @property
    def stream(self) -> str:
        """The stream the tap sent the record on."""
        return str(self.message["stream"])

    @property
    def record(self) -> dict[str, t.Any]:
        """The record as the tap sent it."""
        return t.cast("dict[str, t.Any]", self.message["record"])

    @property
    def version(self) -> int | None:
        """The message's table version (a full-table sync), if it has one."""
        version = self.message.get("version")
        return version if isinstance(version, int) else None


@dataclass(slots=True)
class _Pending:
    record: dict[str, t.Any]
    received: Received
    invalid: str | None = None


class _RecordChecker(JSONSchemaValidator):
    """Schema validation that rejects the one record instead of failing the run.

    A compiled check (:mod:`schemacheck`) passes valid records; ``jsonschema`` names the problem
    of the others.
    """

    def __init__(self, schema: dict[str, t.Any]) -> None:
        try:
            super().__init__(schema)
        except InvalidJSONSchema as exc:
            error = exc.__cause__  # jsonschema's SchemaError
            where = "/".join(str(p) for p in getattr(error, "absolute_path", ()))
            msg = (
                f"the stream's JSON Schema is invalid at '{where}': "
                f"{getattr(error, 'message', exc)}; fix the schema the tap sends"
            )
            raise InvalidJSONSchema(msg) from None
        self.fits = compile_check(schema)
        """The compiled check (:mod:`schemacheck`); None when the schema needs ``jsonschema``."""

    def problem(self, record: dict[str, t.Any]) -> str | None:
        """Why ``record`` does not match the stream's schema, or None when it does."""
        if self.fits is not None and self.fits(record):
            return None
        try:
            self.validate(record)
        except InvalidRecord as exc:
            path = getattr(exc.__cause__, "absolute_path", ())  # jsonschema's ValidationError
            where = f"field '{_field_path(path)}': " if path else ""
            return f"record does not match the stream's schema: {where}{exc.error_message}"
        return None


def _field_path(path: Iterable[str | int]) -> str:
    """``address.lines[0]`` for the JSON path ``["address", "lines", 0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


class DataverseSink(BatchSink):
    """Writes one stream's records to one Dataverse table."""

    MAX_SIZE_DEFAULT = BATCH_SIZE_ROWS

    def __init__(self, target: TargetDynamics, **kwargs: t.Any) -> None:
        self._run: RunContext = target
        self._stream_plan: StreamPlan | None = None
        self._lists: StreamLists | None = None
        self._list_field: str | None = None
        self._associations: StreamAssociations | None = None
        self._mirror: Mirror | None = None
        self._mirror_warned = False
        self._invalid: dict[int, str] = {}
        self._paths_checked = False
        super().__init__(target=target, **kwargs)

    @override
    def get_validator(self) -> JSONSchemaValidator | None:
        """Validate records against the stream's schema unless ``validate_records`` is off.

        A record that fails is rejected; the run goes on.
        """
        return _RecordChecker(self.schema) if self.validate_schema else None

    def receive(self, record: dict[str, t.Any], received: Received) -> None:
        """Check ``record`` (``received`` after stream maps) and queue it for the next batch.

        The SDK's per-record steps: metadata columns, the schema check, dates and the key
        properties. A record that fails a check is queued with its problem, to be rejected
        with a dead letter when its batch is written; the run goes on.
        """
        context = self._pending_batch or self._get_context(record)
        if self._with_metadata:
            self._add_sdc_metadata_to_record(record, received.message, context)
        elif not record.keys().isdisjoint(_SDC_COLUMNS):
            self._remove_sdc_metadata_from_record(record)
        fits = self._fits
        invalid = None if fits is not None and fits(record) else self._problem(record)
        if not invalid and not record.keys() <= self._undated:
            invalid = self._parse_dates(record)
        if not invalid and not self._keys <= record.keys():
            invalid = self._missing_keys(record)
        # The SDK's tally_record_read (final), inline: it runs for every record.
        self._total_records_read += 1
        self._batch_records_read += 1
        if self._mirror is not None:
            self._mirror.receive(received.version)
        context.setdefault("records", []).append(_Pending(record, received, invalid))

    @property
    @override
    def is_full(self) -> bool:
        # Private SDK override: the SDK's test (asked after every record) through three
        # properties; the batch size is fixed when the sink is made.
        return self._batch_records_read >= self._full_at

    @cached_property
    def _full_at(self) -> int:
        return self.max_size

    @cached_property
    def _keys(self) -> frozenset[str]:
        """The stream's key properties (a SCHEMA that changes them makes a new sink)."""
        return frozenset(self.key_properties)

    @cached_property
    def _with_metadata(self) -> bool:
        """Whether records get the SDK's ``_sdc_`` metadata columns (``add_record_metadata``)."""
        return self.include_sdc_metadata_properties

    def _missing_keys(self, record: dict[str, t.Any]) -> str:
        """Why a record without a key property is rejected (the SDK would end the run)."""
        missing = [key for key in self.key_properties if key not in record]
        return (
            f"key property {', '.join(repr(k) for k in missing)} is missing from the record "
            "(the stream's SCHEMA names it in key_properties)"
        )

    @override
    def _remove_sdc_metadata_from_schema(self) -> None:
        # Private SDK override: keep _sdc_deleted_at, the mark of a row deleted at the source.
        kept = (self.schema.get("properties") or {}).get(DELETED_AT)
        super()._remove_sdc_metadata_from_schema()
        if kept is not None:
            self.schema["properties"][DELETED_AT] = kept

    @override
    def _remove_sdc_metadata_from_record(self, record: dict[str, t.Any]) -> None:
        # Private SDK override: as above; mapping never sends it.
        marked = DELETED_AT in record
        deleted = record.get(DELETED_AT)
        super()._remove_sdc_metadata_from_record(record)
        if marked:
            record[DELETED_AT] = deleted

    @cached_property
    def _fits(self) -> Callable[[t.Any], bool] | None:
        """The compiled schema check (:mod:`schemacheck`), if records are checked and it can."""
        checker = self._validator
        return checker.fits if isinstance(checker, _RecordChecker) else None

    def _problem(self, record: dict[str, t.Any]) -> str | None:
        """Why ``record`` does not match the stream's schema (None: it does, or is not checked)."""
        checker = self._validator
        return checker.problem(record) if isinstance(checker, _RecordChecker) else None

    @cached_property
    def _undated(self) -> frozenset[str]:
        """The fields the schema gives no date or time: a record of only these has none."""
        properties = self.schema.get("properties") or {}
        return frozenset(n for n, p in properties.items() if not get_datelike_property_type(p))

    def _parse_dates(self, record: dict[str, t.Any]) -> str | None:
        """Parse the record's dates and times as the SDK does; the problem of one that fails."""
        schema = self.schema
        try:  # the SDK raises on an unparseable date-time, ending the run
            self._parse_timestamps_in_record(record, schema, self.datetime_error_treatment)
        except ValueError as exc:
            return f"unparseable date or time: {exc}"
        return None

    @property
    def stream_plan(self) -> StreamPlan:
        """What :meth:`setup` decided."""
        if self._stream_plan is None:
            msg = f"sink for '{self.stream_name}' used before setup()"
            raise RuntimeError(msg)
        return self._stream_plan

    @override
    def setup(self) -> None:
        """Read the table's metadata and check the stream against it (once per SCHEMA)."""
        run = self._run
        settings = run.settings
        stream = settings.for_stream(self.stream_name, list(self.key_properties))
        table = run.metadata.table(stream.entity)
        targets: dict[str, TableInfo] = {}
        for column, name in lookup_tables(self.schema, stream, table):
            try:
                targets[name] = run.metadata.table(name)
            except MetadataError:
                self.logger.info("Lookup %s: table %s has no metadata", column, name)
        self._reads = frozenset(targets)
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
        if stream.fills_lists:
            self._lists = self._stream_lists(stream, table)
        if stream.associations:
            self._associations = self._stream_associations(stream, table)
        if stream.mirror_scope:
            self._mirror = Mirror(
                run.users,
                plan.plan,
                stream.mirror_scope,
                list(stream.id_field),
                hard_delete=stream.hard_delete,
                collation=run.writer.collation,
            )
            self._mirror.check(f"stream '{self.stream_name}'")

    @property
    def _in_order(self) -> bool:
        """Whether the stream's writes run one after the other (lists, associations, mirror)."""
        return not (self._lists is None and self._associations is None and self._mirror is None)

    def _stream_associations(self, stream: StreamSettings, table: TableInfo) -> StreamAssociations:
        """The stream's N:N associations, checked against the metadata before any write."""
        related: dict[str, TableInfo] = {}
        for name in association_tables(stream, table):
            related[name] = self._run.metadata.table(name)
        self._reads |= related.keys()
        rules = plan_associations(self.stream_name, self.schema, stream, table, related)
        own = TableRef(table.logical_name, table.entity_set, table.primary_id)
        return StreamAssociations(self._run.users, self._run.writer, own, rules)

    def _stream_lists(self, stream: StreamSettings, table: TableInfo) -> StreamLists:
        """The stream's marketing lists, found or created before any write.

        Raises:
            MetadataError: a delete stream, a field the stream lacks, or a list it cannot fill.
        """
        where = f"stream '{self.stream_name}'"
        if stream.operation.removes:
            msg = f"{where}: marketing_list needs rows that land; a {stream.operation} stream "
            msg += "cannot fill one"
            raise MetadataError(msg)
        field = stream.marketing_list_field
        if field and field not in (self.schema.get("properties") or {}):
            msg = (
                f"{where}: marketing_list_field '{field}' is not a field of the stream "
                f"(fields: {', '.join(self.schema.get('properties') or {})})"
            )
            raise MetadataError(msg)
        self._list_field = field
        report = self._run.report
        return StreamLists(
            self._run.lists,
            table.logical_name,
            stream.marketing_list,
            sync=stream.marketing_list_mode == "sync",
            report=report.add_list,
        )

    @override
    def process_batch(self, context: dict[str, t.Any]) -> None:
        """Map the batch, then hand its write to the pipeline (:mod:`pipeline`).

        The records are settled (landed or rejected) by the time any STATE that followed them
        goes out; a dry run checks and counts them here.
        """
        pending: Sequence[_Pending] = context.get("records", [])
        if not pending:
            return
        self._run.report.add(self.stream_name, received=len(pending))
        self.record_counter_metric.increment(len(pending))  # once a batch, not a record
        if not self._paths_checked:  # open paths are checked on the stream's first batch
            self._paths_checked = True
            records = [item.record for item in pending]
            for warning in unmatched_paths(self.stream_name, self.stream_plan.open_paths, records):
                self.logger.warning(warning)
        with self._run.writing():
            rejected: dict[int, DeadLetter] = {}
            states: dict[int, dict[str, int]] = {}
            rows = self._rows(pending, rejected, states)
            if self._run.settings.dry_run:
                self._dry_run(pending, rows, rejected)
                return
            plan = self.stream_plan.plan
            claims = Claims(
                plan.logical_name,
                frozenset(row.ident for _, row in rows if row.ident is not None),
                self._reads,
                self.stream_name if self._in_order else None,
            )
            self._run.pipeline.submit(
                claims, len(pending), lambda: self._write(pending, rows, rejected, states)
            )

    def _write(
        self,
        pending: Sequence[_Pending],
        rows: Sequence[tuple[Operation, Row]],
        rejected: dict[int, DeadLetter],
        states: dict[int, dict[str, int]],
    ) -> None:
        """Write the mapped rows (a pipeline job); the records are settled when it returns."""
        try:
            result = WriteResult([], [])
            for phase in write_phases(self._bound(rows, result)):
                for operation, group in phase.items():
                    result.merge(self._write_group(pending, operation, group, states))
        except BaseException:
            self._run.unsettle()
            raise
        lost: set[int] = set()
        operations = {row.index: operation for operation, row in rows}
        for index, error in result.rejected:
            rejected[index] = self._letter(
                error.message, error.code, error.status, operations[index]
            )
            if error.is_transient:
                lost.add(index)
        self._report(result)
        self._hold(pending, rows, rejected)
        self._settle(pending, result.landed, rejected, lost)

    def _bound(
        self, rows: Sequence[tuple[Operation, Row]], result: WriteResult
    ) -> Sequence[tuple[Operation, Row]]:
        """``rows`` with their lookups by keys a URL cannot carry bound by GUID (:mod:`binds`).

        The records whose lookup finds no row go to ``result.rejected``.
        """
        if not self.stream_plan.mapper.lookups:  # no lookup, no bind to resolve
            return rows
        bound, refused = binds.resolve(self._run.writer, [row for _, row in rows])
        if not bound and not refused:
            return rows
        result.rejected += refused
        dropped = {index for index, _ in refused}
        return [(op, bound.get(row.index, row)) for op, row in rows if row.index not in dropped]

    def _hold(
        self,
        pending: Sequence[_Pending],
        rows: Sequence[tuple[Operation, Row]],
        rejected: Mapping[int, DeadLetter],
    ) -> None:
        """A mirror keeps the rows of rejected records: the source still has them."""
        if self._mirror is None or not rejected:
            return
        keys = {row.index: row.key for _, row in rows}
        stream = self.stream_plan.settings
        fields = {column: name for name, column in stream.columns.items()}
        for index in rejected:
            key = keys.get(index)
            if key is None:  # rejected before it had a row: its ID field values as sent
                record = pending[index].record
                key = {c: record.get(fields.get(c, c)) for c in stream.id_field}
            self._mirror.held(pending[index].received.version, key)

    def _rows(
        self,
        pending: Sequence[_Pending],
        rejected: dict[int, DeadLetter],
        states: dict[int, dict[str, int]],
    ) -> list[tuple[Operation, Row]]:
        """Each record's operation and row; rejections and states to set go to the dicts."""
        plan = self.stream_plan
        keyless = plan.plan.id_mode is IdMode.NONE
        collation = self._run.writer.collation
        rows: list[tuple[Operation, Row]] = []
        for index, item in enumerate(pending):
            if item.invalid:
                rejected[index] = self._letter(item.invalid, None, None)
                continue
            try:
                operation = record_operation(
                    item.record, plan.settings, plan.plan.operation, keyless=keyless
                )
                mapped = plan.mapper.map(item.record, _OPERATION_VALUES[operation])
            except RecordRejected as exc:
                rejected[index] = self._letter(exc.reason, exc.code, None)
                continue
            rows.append((operation, Row(index, mapped.payload, mapped.key, collation)))
            if mapped.state:
                states[index] = mapped.state
        return rows

    def _report(self, result: WriteResult) -> None:
        """Add what ``result`` says was done to the stream's counters."""
        self._run.report.add(
            self.stream_name,
            created=result.created,
            updated=result.updated,
            upserted=result.upserted,
            deleted=result.deleted,
            deactivated=result.deactivated,
            gone=result.gone,
        )

    def _dry_run(
        self,
        pending: Sequence[_Pending],
        rows: Sequence[tuple[Operation, Row]],
        rejected: dict[int, DeadLetter],
    ) -> None:
        """Count what each row would do, preview its lists; write nothing."""
        if self._lists is not None or self._mirror is not None:
            kept = [row for operation, row in rows if not operation.removes]
            ids = self._run.writer.existing_ids(self.stream_plan.plan, kept)
            if self._lists is not None:
                self._lists.preview(ids, self._named_lists(pending, list(ids)))
            self._note_sent(pending, ids)
        self._hold(pending, rows, rejected)
        would = WriteResult([], [])
        for operation, _ in rows:
            would.count(operation, 1)
        self._report(would)
        self._settle(pending, [row.index for _, row in rows], rejected, lost=set())

    def _write_group(
        self,
        pending: Sequence[_Pending],
        operation: Operation,
        rows: list[Row],
        states: Mapping[int, dict[str, int]],
    ) -> WriteResult:
        """Write rows of one operation, then set their states, then relate them."""
        plan = dataclasses.replace(self.stream_plan.plan, operation=operation)
        relates = not operation.removes and (
            self._lists is not None or self._associations is not None
        )
        settable = {row.index: states[row.index] for row in rows if row.index in states}
        mirrored = self._mirror is not None and not operation.removes
        result = self._run.writer.write(plan, rows, ids=relates or mirrored or bool(settable))
        if mirrored:
            self._note_sent(pending, {i: result.ids.get(i, []) for i in result.landed})
        failed: dict[int, WebApiError] = {}
        if settable:
            failed.update(self._set_states(plan, settable, result))
        if relates:
            ids = {i: result.ids.get(i, []) for i in result.landed if i not in failed}
            failed.update(self._relate(pending, ids))
        result.rejected += failed.items()
        result.landed = [i for i in result.landed if i not in failed]
        return result

    def _set_states(
        self, plan: WritePlan, states: Mapping[int, dict[str, int]], written: WriteResult
    ) -> dict[int, WebApiError]:
        """Set the state and status of created or upserted rows by an update (§4.10).

        Returns:
            The records whose row landed but whose state could not be set.
        """
        landed = set(written.landed)
        rows = [
            Row(index, pair, {plan.primary_id: guid}, self._run.writer.collation)
            for index, pair in states.items()
            if index in landed
            for guid in written.ids.get(index, [])
        ]
        update = dataclasses.replace(plan, operation=Operation.UPDATE, id_mode=IdMode.PRIMARY)
        result = self._run.writer.write(update, rows)
        return dict(result.rejected)

    def _relate(
        self, pending: Sequence[_Pending], ids: dict[int, list[str]]
    ) -> dict[int, WebApiError]:
        """Put landed rows on their lists and associate them; the records that failed to."""
        failed: dict[int, WebApiError] = {}
        if self._lists is not None:
            failed.update(self._lists.join(ids, self._named_lists(pending, list(ids))))
        if self._associations is not None:
            remaining = {i: guids for i, guids in ids.items() if i not in failed}
            records = {i: pending[i].record for i in remaining}
            report = self._run.report
            for name, outcome in self._associations.join(remaining, records).items():
                report.add_association(
                    name,
                    added=outcome.added,
                    removed=outcome.removed,
                    rejected=len(outcome.failed),
                )
                for index, error in outcome.failed.items():
                    failed.setdefault(index, error)
        return failed

    def _note_sent(self, pending: Sequence[_Pending], ids: Mapping[int, Sequence[str]]) -> None:
        """Tell the mirror the rows landed records addressed."""
        if self._mirror is not None:
            for index, guids in ids.items():
                self._mirror.sent(pending[index].received.version, guids)

    @override
    def activate_version(self, new_version: int) -> None:
        """End of a full-table version: remove the rows in scope it did not send (:mod:`mirror`).

        Without ``mirror_scope`` the message is ignored (one warning per stream). Every record
        of the version is written first; a version that lost records, or had more rejections
        than ``max_errors``, removes nothing.
        """
        mirror = self._mirror
        if mirror is None:
            if not self._mirror_warned:
                self._mirror_warned = True
                self.logger.warning(
                    "Stream '%s': ACTIVATE_VERSION ignored (no rows removed): set "
                    "streams.%s.mirror_scope to an OData $filter naming the rows this stream "
                    "owns to remove, at the end of each full-table version, those it did not send",
                    self.stream_name,
                    self.stream_name,
                )
            return
        self._run.drain_one(self)
        self._run.pipeline.wait()
        if not mirror.ends(new_version):
            self.logger.info(
                "Stream '%s': version %s starts (nothing removed before its records)",
                self.stream_name,
                new_version,
            )
            return
        refusal = self._run.mirror_refusal()
        if refusal is not None:
            self.logger.warning(
                "Stream '%s': version %s not mirrored (no rows removed): %s",
                self.stream_name,
                new_version,
                refusal,
            )
            mirror.close()
            return
        self._mirror_removal(mirror)

    def _mirror_removal(self, mirror: Mirror) -> None:
        """Remove the absent rows; count them (a dry run only counts)."""
        absent = mirror.absent()
        mirror.close()
        report = self._run.report
        if self._run.settings.dry_run:
            would = WriteResult([], [])
            would.count(mirror.operation, len(absent))
            report.add_mirror(
                self.stream_name, deleted=would.deleted, deactivated=would.deactivated
            )
            return
        with self._run.writing():
            result = mirror.remove(self._run.writer, absent)
        lost = [error for _, error in result.rejected if error.is_transient]
        if lost:
            self._run.unsettle()
        report.add_mirror(
            self.stream_name,
            deleted=result.deleted,
            deactivated=result.deactivated,
            gone=result.gone,
            rejected=len(result.rejected) - len(lost),
            lost=len(lost),
        )
        if result.rejected:
            self.logger.warning(
                "Stream '%s': %d rows in mirror scope could not be %s; for example: %s",
                self.stream_name,
                len(result.rejected),
                "deleted" if mirror.operation is Operation.DELETE else "deactivated",
                result.rejected[0][1],
            )

    def _named_lists(
        self, pending: Sequence[_Pending], landed: Sequence[int]
    ) -> dict[int, list[str]]:
        """The lists each landed record's ``marketing_list_field`` names (a name or a list)."""
        if self._list_field is None:
            return {}
        named: dict[int, list[str]] = {}
        for index in landed:
            value = pending[index].record.get(self._list_field)
            values = value if isinstance(value, list) else [value]
            named[index] = [str(v) for v in values if v not in (None, "")]
        return named

    @override
    def clean_up(self) -> None:
        """At the end of the input, sync the stream's marketing lists.

        With ``marketing_list_mode: sync`` the members this stream did not send are removed,
        unless the run was incomplete.
        """
        try:
            self._run.pipeline.wait()
            if self._lists is not None and self._lists.syncs:
                refusal = self._run.sync_refusal()
                if refusal is None:
                    self._lists.sync(dry_run=self._run.settings.dry_run)
                else:
                    self.logger.warning(
                        "Stream '%s': marketing list members not synced (none removed): %s",
                        self.stream_name,
                        refusal,
                    )
        finally:
            super().clean_up()

    def _letter(
        self,
        reason: str,
        code: str | None,
        status: int | None,
        operation: Operation | None = None,
    ) -> DeadLetter:
        plan = self.stream_plan.plan
        done = (operation or plan.operation).value
        return DeadLetter(reason, code, status, done, plan.logical_name)

    def _settle(
        self,
        pending: Sequence[_Pending],
        landed: list[int],
        rejected: dict[int, DeadLetter],
        lost: set[int],
    ) -> None:
        report = self._run.report
        report.add(
            self.stream_name,
            landed=len(landed),
            rejected=len(rejected) - len(lost),
            lost=len(lost),
        )
        if lost:
            self._run.unsettle()
        if not rejected:
            return
        report.note_rejections(
            (letter.code, letter.error) for i, letter in rejected.items() if i not in lost
        )
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
            located = dataclasses.replace(letter, source=item.received.source)
            by_stream.setdefault(item.received.stream, []).append((item.received.record, located))
        for raw_stream, items in by_stream.items():
            schema = self._run.raw_schema(raw_stream) or {
                "type": "SCHEMA",
                "stream": raw_stream,
                "schema": self.original_schema,
                "key_properties": list(self.key_properties),
            }
            self._run.dead_letter.write(raw_stream, schema, items)
