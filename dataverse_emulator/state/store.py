"""The record store: rows per table keyed by GUID, alternate-key indexes, transactions.

Reference §4.1-§4.5 (create, update, upsert, conditional writes, delete), §4.9 (error catalogue),
§4.10 (state and status pairs), §4.11 (delete cascades), §5.2 (change sets roll back:
:meth:`RecordStore.transaction`). Rows are plain dicts of stored values (see
:mod:`dataverse_emulator.state.values`); a lookup column holds the target GUID and
``<column>@lookuplogicalname`` the target table.

Not emulated: the Restrict, Active and UserOwned delete cascades (§4.11), custom state
transitions, plug-ins other than :class:`RecordRule`, field security, currency exchange rates,
business rules.
"""

from __future__ import annotations

import contextlib
import random
import threading
import typing as t
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from dataverse_emulator.state import collation
from dataverse_emulator.state import schema as schemas
from dataverse_emulator.state.error_catalogue import (
    bind_target_invalid,
    duplicate_key,
    duplicate_record,
    invalid_key,
    invalid_status,
    key_not_found,
    row_not_found,
    stale_version,
)
from dataverse_emulator.state.errors import DataverseFault, Kind
from dataverse_emulator.state.privileges import Caller, require

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from dataverse_emulator.state.catalog import AlternateKey, Catalog, Relationship, Table

Row = dict[str, t.Any]

TARGET = "@lookuplogicalname"
"""Suffix of the row member that holds a lookup's target table."""

_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


@dataclass(frozen=True, slots=True)
class RecordRule:
    """An injected failure: writes whose resulting row matches ``match`` fail with this error.

    Attributes:
        table: Logical name of the table, or ``None`` for every table.
        match: Column values that must all equal the row's (after the write) to fail it.
        kind: Failure kind (e.g. ``Kind.BAD_REQUEST`` for a plug-in error ``0x80040265``).
        code: Dataverse error code.
        message: Error message.
    """

    table: str | None
    match: dict[str, t.Any]
    kind: Kind
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a write: the stored row (a copy) and whether it was created."""

    row: Row
    created: bool


class _Index:
    """A unique index over one alternate key."""

    def __init__(self, key: AlternateKey) -> None:
        self.key = key
        self.columns = key.key_attributes
        self.entries: dict[tuple[t.Any, ...], str] = {}

    def values_of(self, row: Mapping[str, t.Any]) -> tuple[t.Any, ...] | None:
        parts = tuple(collation.key_value(row.get(c)) for c in self.columns)
        return None if None in parts else parts


class _TableState:
    """Rows, schema and indexes of one table."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.rows: dict[str, Row] = {}
        self.schema = schemas.TableSchema(table)
        self.indexes: list[_Index] = []
        self.active_keys: tuple[AlternateKey, ...] | None = None
        self.sync()

    def sync(self) -> None:
        """Rebuild the schema and indexes when columns or keys changed at run time."""
        table = self.table
        if len(table.columns) != self.schema.size:
            self.schema = schemas.TableSchema(table)
        active = tuple(k for k in table.keys if k.index_status == "Active")
        if active != self.active_keys:
            self.active_keys = active
            self.indexes = [_Index(k) for k in active]
            for record_id, row in self.rows.items():
                for index in self.indexes:
                    parts = index.values_of(row)
                    if parts is not None:
                        index.entries.setdefault(parts, record_id)


class RecordStore:
    """All records of one environment.

    Every public method takes the store's lock, so in-process callers on several threads are
    safe; :meth:`transaction` holds it for the whole block.
    """

    def __init__(
        self,
        catalog: Catalog,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.catalog = catalog
        self.seed = seed
        self.clock = clock or (lambda: datetime.now(UTC))
        self.record_rules: list[RecordRule] = []
        self.on_delete: list[Callable[[str, str], None]] = []
        """Called with ``(table, record_id)`` for every row a delete removes, cascades included,
        inside the delete's transaction (the list room keeps ``membercount`` current with it)."""
        self.default_caller: Caller | None = None
        self.default_currency: str | None = None
        self._lock = threading.RLock()
        self._random = random.Random(seed)  # noqa: S311 - reproducible ids, not secrets
        self._tables: dict[str, _TableState] = {}
        self._undo: list[Callable[[], object]] | None = None
        self._links: dict[str, dict[tuple[str, str], Row]] = {}
        self._version = 1_000_000
        self._stamp: tuple[int, str] = (-1, "")

    # ---- identifiers -------------------------------------------------------------------

    def new_id(self) -> str:
        """Return a fresh GUID (version 4 layout) from the seeded generator."""
        with self._lock:
            bits = self._random.getrandbits(128)
        text = f"{bits & _V4_CLEAR | _V4_SET:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def now(self) -> str:
        """Return the clock's time as ``YYYY-MM-DDTHH:MM:SSZ`` (formatted once per second)."""
        moment = self.clock()
        second = int(moment.timestamp())
        if second != self._stamp[0]:
            self._stamp = (second, moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return self._stamp[1]

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    # ---- table access ------------------------------------------------------------------

    def _state(self, logical_name: str) -> _TableState:
        state = self._tables.get(logical_name)
        if state is None:
            state = _TableState(self.catalog.table(logical_name))
            self._tables[logical_name] = state
        else:
            state.sync()
        return state

    def schema(self, logical_name: str) -> schemas.TableSchema:
        """Return the write schema of a table (raises 404 for an unknown table)."""
        with self._lock:
            return self._state(logical_name).schema

    # ---- transactions ------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run a block atomically: any exception undoes every write made inside it.

        Transactions nest (the inner one is a savepoint).
        """
        with self._lock:
            outer = self._undo
            if outer is None:
                self._undo = []
            undo = self._undo
            assert undo is not None  # noqa: S101 - set just above
            mark = len(undo)
            try:
                yield
            except BaseException:
                while len(undo) > mark:
                    undo.pop()()
                raise
            finally:
                if outer is None:
                    self._undo = None

    def _put(
        self, state: _TableState, record_id: str, row: Row | None, *, log: bool = True
    ) -> None:
        """Replace (or remove, when ``row`` is None) a row and keep the indexes in step."""
        old = state.rows.get(record_id)
        if log and self._undo is not None:
            self._undo.append(lambda: self._put(state, record_id, old, log=False))
        for index in state.indexes:
            if old is not None:
                parts = index.values_of(old)
                if parts is not None and index.entries.get(parts) == record_id:
                    del index.entries[parts]
            if row is not None:
                parts = index.values_of(row)
                if parts is not None:
                    index.entries[parts] = record_id
        if row is None:
            state.rows.pop(record_id, None)
        else:
            state.rows[record_id] = row

    # ---- locating ----------------------------------------------------------------------

    def _locate(
        self, state: _TableState, locator: str | Mapping[str, t.Any]
    ) -> tuple[str | None, Row | None]:
        """Return ``(record_id, row)``; ``record_id`` is None for a missing key-addressed row."""
        table = state.table
        if isinstance(locator, str):
            record_id = _guid(locator, table)
            return record_id, state.rows.get(record_id)
        key = {_key_column(name): value for name, value in locator.items()}
        if set(key) == {table.primary_id}:
            record_id = _guid(str(key[table.primary_id]), table)
            return record_id, state.rows.get(record_id)
        for index in state.indexes:
            if set(index.columns) == set(key):
                parts = tuple(collation.key_value(key[c]) for c in index.columns)
                found = index.entries.get(parts)
                if found is None:
                    return None, None
                return found, state.rows[found]
        raise invalid_key(table)

    @staticmethod
    def _missing(state: _TableState, record_id: str | None) -> DataverseFault:
        if record_id is not None:
            return row_not_found(state.table, record_id)
        return key_not_found(state.table)

    # ---- reads -------------------------------------------------------------------------

    def retrieve(self, table: str, locator: str | Mapping[str, t.Any]) -> Row:
        """Return a copy of one row.

        Raises:
            DataverseFault: 404 when missing (``0x80040217`` by id, ``0x80060891`` by key).
        """
        with self._lock:
            state = self._state(table)
            record_id, row = self._locate(state, locator)
            if row is None:
                raise self._missing(state, record_id)
            return dict(row)

    def find(self, table: str, record_id: str) -> Row | None:
        """Return the stored row with that primary id, or None (the stored dict; do not mutate)."""
        with self._lock:
            return self._state(table).rows.get(record_id)

    def rows(self, table: str) -> list[Row]:
        """Return every row of a table (the stored dicts; do not mutate them)."""
        with self._lock:
            return list(self._state(table).rows.values())

    def count(self, table: str) -> int:
        """Return the number of rows in a table."""
        with self._lock:
            return len(self._state(table).rows)

    # ---- writes ------------------------------------------------------------------------

    def create(
        self,
        table: str,
        body: Mapping[str, t.Any],
        *,
        caller: Caller | None = None,
        key: Mapping[str, t.Any] | None = None,
    ) -> Row:
        """Create a record (§4.1).

        Args:
            table: Logical name.
            body: JSON body; ``@odata.bind`` values as :class:`~.schema.Reference`.
            caller: The writing user (defaults to :attr:`default_caller`).
            key: Alternate-key values from an upsert URL, applied over the body (§4.3).

        Returns:
            A copy of the stored row.

        Raises:
            DataverseFault: invalid values, failed binds, duplicate primary id (412
                ``0x80040237``) or alternate key (412 ``0x80060892``), a matching record rule,
                a missing privilege (403 ``0x80040220``).
        """
        caller = caller or self.default_caller
        with self._lock:
            state = self._state(table)
            require(caller, state.table, "create")
            parsed = state.schema.parse(body, schemas.CREATE)
            return dict(self._insert(state, parsed, caller, key))

    def update(
        self,
        table: str,
        locator: str | Mapping[str, t.Any],
        body: Mapping[str, t.Any],
        *,
        if_match: str | None = None,
        caller: Caller | None = None,
    ) -> Row:
        """Update an existing record (§4.2, ``If-Match: *``).

        Raises:
            DataverseFault: 404 when missing, 412 on a stale ETag, invalid values.
        """
        return self.upsert(table, locator, body, if_match=if_match or "*", caller=caller).row

    def upsert(  # noqa: PLR0913 - one argument per conditional header
        self,
        table: str,
        locator: str | Mapping[str, t.Any],
        body: Mapping[str, t.Any],
        *,
        if_match: str | None = None,
        if_none_match: str | None = None,
        caller: Caller | None = None,
    ) -> Outcome:
        """Create or update the addressed record (§4.3) under conditional headers (§4.4).

        Args:
            table: Logical name.
            locator: Primary-id GUID or alternate-key values.
            body: JSON body; ``@odata.bind`` values as :class:`~.schema.Reference`.
            if_match: ``*`` forbids create; ``W/"<version>"`` also requires that version.
            if_none_match: ``*`` forbids update.
            caller: The writing user.

        Raises:
            DataverseFault: 404 (``If-Match`` and missing), 412 (``If-None-Match: *`` and present,
                or stale ETag), invalid values, failed binds, a matching record rule, a missing
                privilege (403 ``0x80040220``: create when the record is new, else write).
        """
        caller = caller or self.default_caller
        with self._lock:
            state = self._state(table)
            record_id, existing = self._locate(state, locator)
            if existing is None:
                if if_match is not None:
                    raise self._missing(state, record_id)
                require(caller, state.table, "create")
                parsed = state.schema.parse(body, schemas.CREATE)
                if record_id is not None:
                    parsed.values[state.table.primary_id] = record_id
                key = None if isinstance(locator, str) else locator
                return Outcome(dict(self._insert(state, parsed, caller, key)), created=True)
            if if_none_match is not None and if_none_match.strip() == "*":
                raise duplicate_record()
            if (
                if_match is not None
                and if_match.strip() != "*"
                and if_match.strip() != etag(existing)
            ):
                raise stale_version()
            require(caller, state.table, "write")
            parsed = state.schema.parse(body, schemas.UPDATE)
            assert record_id is not None  # noqa: S101 - found rows always have an id
            if not isinstance(locator, str):
                for name in locator:
                    parsed.values.pop(_key_column(name), None)
            return Outcome(
                dict(self._modify(state, record_id, existing, parsed, caller)), created=False
            )

    def delete(
        self,
        table: str,
        locator: str | Mapping[str, t.Any],
        *,
        if_match: str | None = None,
        caller: Caller | None = None,
    ) -> None:
        """Delete a record (§4.5) and cascade the delete over its relationships (§4.11).

        Raises:
            DataverseFault: 404 when missing, 412 on a stale ETag, a missing privilege (403).
        """
        caller = caller or self.default_caller
        with self._lock:
            state = self._state(table)
            require(caller, state.table, "delete")
            record_id, existing = self._locate(state, locator)
            if existing is None or record_id is None:
                raise self._missing(state, record_id)
            if if_match is not None and if_match.strip() not in {"*", etag(existing)}:
                raise stale_version()
            with self.transaction():
                self._remove(state, record_id)

    def _remove(self, state: _TableState, record_id: str) -> None:
        """Remove a row, then apply each one-to-many relationship's ``CascadeConfiguration.Delete``.

        Cascade deletes the referencing rows (recursively), RemoveLink clears their lookup;
        many-to-many pairs of the row go too (§4.11).
        """
        self._put(state, record_id, None)
        table = state.table
        known = {t.logical_name for t in self.catalog.tables()}
        for rel in table.one_to_many:
            action = rel.cascade.get("Delete")
            if action in {"Cascade", "RemoveLink"} and rel.referencing_entity in known:
                self._cascade(rel, action, table.logical_name, record_id)
        for m2m in table.many_to_many:
            for side, name in enumerate((m2m.entity1, m2m.entity2)):
                if name == table.logical_name:
                    for pair in self.links(m2m.intersect_entity):
                        if pair[side] == record_id:
                            self.unlink(m2m.intersect_entity, pair)
        for hook in self.on_delete:
            hook(table.logical_name, record_id)

    def _cascade(self, rel: Relationship, action: str, parent: str, parent_id: str) -> None:
        """Delete (Cascade) or unlink (RemoveLink) the rows whose lookup names the parent."""
        state = self._state(rel.referencing_entity)
        column = rel.referencing_attribute
        for child_id, child in list(state.rows.items()):
            if child.get(column) != parent_id or child.get(column + TARGET, parent) != parent:
                continue
            if action == "Cascade":
                if child_id in state.rows:
                    self._remove(state, child_id)
                continue
            cleared = {k: v for k, v in child.items() if k != column + TARGET}
            cleared[column] = None
            cleared["versionnumber"] = self._next_version()
            self._put(state, child_id, cleared)

    def insert_system_row(self, table: str, row: Row) -> None:
        """Store a row as-is, bypassing validation (seed data such as users and currencies)."""
        with self._lock:
            state = self._state(table)
            stored = {**row, "versionnumber": self._next_version()}
            self._put(state, stored[state.table.primary_id], stored, log=False)

    # ---- platform writes (messages such as AddMemberList, Associate) ------------------

    def insert_platform_row(self, table: str, row: Row, *, caller: Caller | None = None) -> Row:
        """Store a row a platform message writes (an intersect row), undoable, unvalidated.

        Stamps the primary id (when missing), created/modified on and by, and the version.
        """
        caller = caller or self.default_caller
        with self._lock:
            state = self._state(table)
            stored = dict(row)
            pid = state.table.primary_id
            stored.setdefault(pid, self.new_id())
            columns = state.table.columns
            now = self.now()
            for name in ("createdon", "modifiedon"):
                if name in columns:
                    stored[name] = now
            if caller is not None:
                for name in ("createdby", "modifiedby"):
                    if name in columns:
                        stored[name] = caller.systemuser_id
                        stored[name + TARGET] = "systemuser"
            stored["versionnumber"] = self._next_version()
            self._put(state, stored[pid], stored)
            return dict(stored)

    def update_platform_row(self, table: str, record_id: str, changes: Mapping[str, t.Any]) -> Row:
        """Change columns the platform computes (``membercount``), undoable, unvalidated.

        Raises:
            DataverseFault: 404 when the row is missing.
        """
        with self._lock:
            state = self._state(table)
            existing = state.rows.get(record_id)
            if existing is None:
                raise row_not_found(state.table, record_id)
            row = {**existing, **changes, "versionnumber": self._next_version()}
            self._put(state, record_id, row)
            return dict(row)

    def delete_platform_row(self, table: str, record_id: str) -> None:
        """Remove a row a platform message owns (an intersect row), undoable."""
        with self._lock:
            self._put(self._state(table), record_id, None)

    def link(self, intersect: str, pair: tuple[str, str], row: Row) -> bool:
        """Record a many-to-many pair in ``intersect``; False when it is already there."""
        with self._lock:
            links = self._links.setdefault(intersect, {})
            if pair in links:
                return False
            links[pair] = dict(row)
            if self._undo is not None:
                self._undo.append(lambda: links.pop(pair, None))
            return True

    def unlink(self, intersect: str, pair: tuple[str, str]) -> bool:
        """Forget a many-to-many pair; False when it was not there."""
        with self._lock:
            links = self._links.get(intersect, {})
            old = links.pop(pair, None)
            if old is None:
                return False
            if self._undo is not None:
                self._undo.append(lambda: links.__setitem__(pair, old))
            return True

    def links(self, intersect: str) -> list[tuple[str, str]]:
        """Every pair of ``intersect``, in insertion order."""
        with self._lock:
            return list(self._links.get(intersect, {}))

    # ---- internals ---------------------------------------------------------------------

    def _insert(
        self,
        state: _TableState,
        parsed: schemas.Parsed,
        caller: Caller | None,
        key: Mapping[str, t.Any] | None,
    ) -> Row:
        table = state.table
        row = parsed.values
        if key:
            self._apply_key(state, row, key)
        pid = table.primary_id
        record_id = row.get(pid)
        if record_id is None:
            record_id = self.new_id()
            row[pid] = record_id
        elif record_id in state.rows:
            raise duplicate_record()
        self._bind(row, parsed.links, caller, table)
        self._set_create_defaults(state, row, caller)
        return self._store(state, record_id, row)

    def _set_create_defaults(self, state: _TableState, row: Row, caller: Caller | None) -> None:
        """Stamp a new row: created / modified on and by, first state, base currency."""
        table = state.table
        columns = table.columns
        now = self.now()
        if "createdon" in columns:
            row["createdon"] = now
        if "modifiedon" in columns:
            row["modifiedon"] = now
        if caller is not None:
            self._stamp_caller(row, columns, caller, creating=True)
        if "statecode" in columns:
            # StateCode is not valid for create: the row starts in the first (default) state.
            row["statecode"] = columns["statecode"].options[0].value
            self._apply_state(row, table, status_given=row.get("statuscode") is not None)
        # Money columns get the organization's base currency (§4.1).
        if (
            self.default_currency
            and "transactioncurrencyid" in columns
            and row.get("transactioncurrencyid") is None
            and not state.schema.money.isdisjoint(row)
        ):
            row["transactioncurrencyid"] = self.default_currency
            row["transactioncurrencyid" + TARGET] = "transactioncurrency"

    def _modify(
        self,
        state: _TableState,
        record_id: str,
        existing: Row,
        parsed: schemas.Parsed,
        caller: Caller | None,
    ) -> Row:
        table = state.table
        columns = table.columns
        changes = parsed.values
        changes.pop(table.primary_id, None)
        self._bind(changes, parsed.links, caller, table)
        row = {**existing, **changes}
        if "modifiedon" in columns:
            row["modifiedon"] = self.now()
        if caller is not None:
            self._stamp_caller(row, columns, caller, creating=False)
        if "statecode" in columns and ("statecode" in changes or "statuscode" in changes):
            self._apply_state(row, table, status_given=changes.get("statuscode") is not None)
        return self._store(state, record_id, row)

    def _store(self, state: _TableState, record_id: str, row: Row) -> Row:
        """Finish a created or changed row (names, version), check it, and keep it."""
        table = state.table
        _compute_names(row, table)
        if "versionnumber" in table.columns:
            row["versionnumber"] = self._next_version()
        self._check_rules(table, row)
        self._check_unique(state, record_id, row)
        self._put(state, record_id, row)
        return row

    @staticmethod
    def _apply_key(state: _TableState, row: Row, key: Mapping[str, t.Any]) -> None:
        """Write the upsert URL's key values into a new row (§4.3: they win over the body)."""
        columns = state.table.columns
        for name, value in key.items():
            column_name = _key_column(name)
            entry = state.schema.converters.get(column_name)
            row[column_name] = entry[1](value) if entry is not None else value
            column = columns.get(column_name)
            if column is not None and column.targets and value is not None:
                row[column_name + TARGET] = column.targets[0]

    def _bind(
        self, row: Row, links: list[schemas.Link], caller: Caller | None, table: Table
    ) -> None:
        """Set lookups; binding needs Append on ``table`` and AppendTo on the target (§1.7)."""
        for link in links:
            name = link.column.logical_name
            ref = link.reference
            if ref is None:
                row[name] = None
                row.pop(name + TARGET, None)
                continue
            target = self.catalog.table_by_set(ref.entity_set)
            if target.logical_name not in link.targets:
                raise bind_target_invalid(ref.entity_set, link.navigation, link.targets)
            require(caller, table, "append")
            require(caller, target, "appendto")
            locator: str | Mapping[str, t.Any] = ref.id if ref.id is not None else (ref.key or {})
            state = self._state(target.logical_name)
            record_id, found = self._locate(state, locator)
            if found is None or record_id is None:
                raise self._missing(state, record_id)
            row[name] = record_id
            row[name + TARGET] = target.logical_name

    def _stamp_caller(
        self, row: Row, columns: Mapping[str, t.Any], caller: Caller, *, creating: bool
    ) -> None:
        user = caller.systemuser_id
        if "modifiedby" in columns:
            row["modifiedby"] = user
            row["modifiedby" + TARGET] = "systemuser"
        if not creating:
            return
        if "createdby" in columns:
            row["createdby"] = user
            row["createdby" + TARGET] = "systemuser"
        if "ownerid" in columns and row.get("ownerid") is None:
            row["ownerid"] = user
            row["ownerid" + TARGET] = "systemuser"
        if "ownerid" in columns:
            if "owneridtype" in columns:
                row["owneridtype"] = row["ownerid" + TARGET]
            if "owninguser" in columns and row["ownerid" + TARGET] == "systemuser":
                row["owninguser"] = row["ownerid"]
                row["owninguser" + TARGET] = "systemuser"
            if "owningbusinessunit" in columns and caller.business_unit_id:
                row["owningbusinessunit"] = caller.business_unit_id
                row["owningbusinessunit" + TARGET] = "businessunit"

    @staticmethod
    def _apply_state(row: Row, table: Table, *, status_given: bool) -> None:
        """Check a given statuscode against the row's statecode, else set the state's default.

        Raises:
            DataverseFault: 400 ``0x80048408`` when the status belongs to another state (§4.10).
        """
        status_column = table.columns.get("statuscode")
        if status_column is None:
            return
        state = row["statecode"]
        if status_given:
            status = row["statuscode"]
            option = next((o for o in status_column.options if o.value == status), None)
            if option is not None and option.state not in (None, state):
                raise invalid_status(table, status, state, row[table.primary_id])
            return
        for option in table.columns["statecode"].options:
            if option.value == state and option.default_status is not None:
                row["statuscode"] = option.default_status

    def _check_rules(self, table: Table, row: Row) -> None:
        for rule in self.record_rules:
            if rule.table not in (None, table.logical_name):
                continue
            if all(row.get(k) == v for k, v in rule.match.items()):
                raise DataverseFault(rule.kind, rule.code, rule.message)

    @staticmethod
    def _check_unique(state: _TableState, record_id: str, row: Row) -> None:
        for index in state.indexes:
            parts = index.values_of(row)
            if parts is None:
                continue
            holder = index.entries.get(parts)
            if holder is not None and holder != record_id:
                key = index.key
                raise duplicate_key(key.display_name or key.schema_name, index.columns)

    # ---- whole-store views -------------------------------------------------------------

    def snapshot(self) -> dict[str, list[Row]]:
        """Return every non-empty table's rows (copies), JSON-able, by logical name.

        Many-to-many pairs whose intersect entity is no catalog table appear under the
        intersect entity's name, one ``{<entity1 attribute>: id, <entity2 attribute>: id}`` row
        per pair.
        """
        with self._lock:
            tables = {
                name: [dict(row) for row in state.rows.values()]
                for name, state in self._tables.items()
                if state.rows
            }
            for intersect, links in self._links.items():
                if links:
                    tables[intersect] = [dict(row) for row in links.values()]
            return tables

    def reset(self) -> None:
        """Forget every row and rule and restart the id generator from the seed."""
        with self._lock:
            self._tables.clear()
            self._links.clear()
            self.record_rules.clear()
            self._random = random.Random(self.seed)  # noqa: S311 - reproducible ids
            self._undo = None


def etag(row: Mapping[str, t.Any]) -> str:
    """Return the weak ETag ``W/"<versionnumber>"`` of a row (§4.4)."""
    return f'W/"{row.get("versionnumber", 0)}"'


def _key_column(name: str) -> str:
    # A lookup key column is addressed by its lookup property: _primarycontactid_value (§4.3).
    if name.startswith("_") and name.endswith("_value"):
        return name[1:-6]
    return name


def _guid(text: str, table: Table) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise row_not_found(table, text) from None


def _compute_names(row: Row, table: Table) -> None:
    # contact/lead/systemuser: fullname is "<firstname> <lastname>" (read-only, computed).
    if table.primary_name == "fullname" and ("firstname" in row or "lastname" in row):
        parts = (row.get("firstname"), row.get("lastname"))
        row["fullname"] = " ".join(p for p in parts if p) or None
