r"""Writes rows to one table: bulk messages first, ``$batch`` to fall back and to isolate (§5, §6).

How a call to :meth:`Writer.write` proceeds:

1. **Merge** rows with the same key (strings compared as the environment's collation does,
   :class:`~target_dynamics.collation.Collation`, read once per run):
   later values win, column by column; every merged row shares the outcome.
2. **Address** each row (the one place that decides identity, see :mod:`identity`):
   a create always carries a primary id: the given one, :func:`identity.key_guid` of its key,
   or a random one when the mapper gave none. A matched column (``IdMode.MATCH``), and an
   alternate-key value containing ``/ < > * % & : \ ? +`` (a key URL cannot carry it, §3.6),
   are looked up with ``$filter``: one row found is written by primary id; none found, an
   upsert creates the row under :func:`identity.key_guid` (a rerun finds it), an update is
   rejected as not found, a delete is already done; several found (a matched column), the
   record is rejected naming the count, or with ``all_matches`` written to every one.
   Lookups by such a key are found the same way (:meth:`Writer.find_rows`, called by
   :mod:`binds` over a sink's batch) and bound by GUID before their rows reach the writer.
3. **Chunk** (``chunk_size``, at most 1,000; a batch is spread evenly over the workers, down
   to ``MIN_PARALLEL_CHUNK`` rows a chunk) and send chunks in parallel: as many as the
   transport has room for (:meth:`Transport.capacity`: every application user's limit, which
   follows ``x-ms-dop-hint`` and the remaining budgets, capped by ``max_concurrency``).
4. Each chunk goes as one **bulk message** where one applies: ``UpsertMultiple`` (key in
   ``@odata.id``, or the primary id in the body), ``CreateMultiple`` (primary id in the body),
   ``UpdateMultiple`` (primary id only; alternate keys are not supported there, §6.2).
   Deletes and alternate-key updates always go through ``$batch``. A deactivation is an update
   whose body is :attr:`WritePlan.deactivation` (the same paths: a mirror reuses it by id).
5. When the service refuses a bulk message for its content, the chunk is **resent as**
   ``$batch`` **with continue-on-error**, one operation per row: good rows land, bad rows are
   rejected with Dataverse's code and message. Only a "not supported" answer naming the
   message marks the table as having no bulk support. A bulk message that got no answer, or
   408 / 429 / 502 / 503 / 504 after every retry, is not isolated: its rows fail with that
   error (the sink withholds STATE), and :class:`ServiceUnreachable` ends the write.
6. ``$batch`` parts that failed transiently (429, 5xx, missing parts) are sent again, up to
   ``part_retries`` rounds; a ``$batch`` that failed as a whole is not sent again (the client
   already retried it).

Idempotency (§10.2): a create carries its primary id, so a replay after a lost answer fails
with "already exists" (412 ``0x80040237``, ``0x80060892`` for its alternate key, or a 500
duplicate key); the rows whose primary id then exists landed before and count as created, the
others are rejected (another row holds the key). A ``CreateMultiple`` whose answer was lost fails
as a whole on the client's retry and is then isolated through ``$batch``, row by row. A delete
answered 404, or a deactivation of a row that is gone, is done (counted as ``gone``).
Counts: ``created`` / ``updated`` / ``deleted`` where the service says so; upserts, whose
outcome the service does not tell without ``return=representation``, count as ``upserted``.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor, wait

from target_dynamics import webapi
from target_dynamics.errors import KEY_NOT_FOUND_CODE, SQL_TIMEOUT_CODE, WebApiError
from target_dynamics.identity import IdMode, key_guid
from target_dynamics.plans import Operation, Row, WritePlan, WriteResult
from target_dynamics.webapi import MAX_BATCH_OPERATIONS, WebRequest, WebResponse

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from target_dynamics.collation import Collation, KeyId

LOGGER = logging.getLogger(__name__)
_T = t.TypeVar("_T")
MIN_PARALLEL_CHUNK = 100
"""Fewest rows worth a request of their own when spreading a batch over workers (§6.5: start
with 100 to 1,000 rows per bulk request)."""
LOOKUP_CHUNK = 25
"""Values per ``$filter`` query: keeps URLs short (§5.1 limits GET URLs in batches to 64 KB)."""
_UNSUPPORTED_HINTS = ("not supported", "not implemented", "not yet implemented", "does not support")


class Transport(t.Protocol):
    """What the writer (and every other Web API user) sends through.

    :class:`~target_dynamics.app_users.AppUsers`: the run's application users.
    """

    @property
    def service_root(self) -> str:
        """``https://<host>/api/data/v<version>/``: what request paths are relative to."""
        ...

    def capacity(self) -> int:
        """Requests that may be in flight now."""
        ...

    def ceiling(self) -> int:
        """The most requests that may ever be in flight together."""
        ...

    def send(self, request: WebRequest) -> WebResponse:
        """Send one request (retrying what may succeed later)."""
        ...

    def send_batch(
        self, requests: Sequence[WebRequest], *, continue_on_error: bool = True
    ) -> list[WebResponse]:
        """Send one ``$batch`` and return its part answers in order."""
        ...

    def get_json(self, path: str, headers: Mapping[str, str] | None = None) -> dict[str, t.Any]:
        """``GET`` a path and decode its JSON body."""
        ...

    def get_all(
        self, path: str, headers: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, t.Any]]:
        """``GET`` every page of a collection."""
        ...


class _Item:
    """One record after merging: the rows it stands for, its body and how it is addressed.

    A slots class made for every record (a dataclass with a default dict costs twice as much).
    """

    __slots__ = ("extra", "indexes", "key", "payload", "segment")

    def __init__(
        self,
        indexes: list[int],
        payload: Mapping[str, t.Any],
        key: Mapping[str, t.Any] | None,
        extra: Mapping[str, t.Any] | None = None,
    ) -> None:
        self.indexes = indexes
        self.payload = payload
        """Shared with the row it came from: replaced, never changed in place."""
        self.key = key
        self.extra = extra
        """Columns to add to the body (key columns of a row resolved to its primary id)."""
        self.segment: str | None = None
        """The key as a key URL carries it, unencoded, once checked (:func:`webapi.key_segment`)."""


def _by_id(plan: WritePlan, item: _Item) -> bool:
    """Whether ``item`` is addressed by primary id (``key == {primary_id: guid}``)."""
    key = item.key
    return key is not None and len(key) == 1 and plan.primary_id in key


def merge_rows(rows: Sequence[Row]) -> list[_Item]:
    """Merge rows with the same key; later values win, column by column (§6.5, §10 F9)."""
    items: list[_Item] = []
    by_key: dict[KeyId, _Item] = {}
    for row in rows:
        ident = row.ident
        if ident is None:
            items.append(_Item([row.index], row.payload, None))
            continue
        found = by_key.get(ident)
        if found is None:
            found = by_key[ident] = _Item([row.index], row.payload, row.key)
            items.append(found)
        else:
            found.indexes.append(row.index)
            found.payload = {**found.payload, **row.payload}
            found.key = row.key
    return items


def _with_primary_id(plan: WritePlan, item: _Item, collation: Collation) -> _Item:
    """A create's item addressed by the primary id it will carry (see :mod:`identity`)."""
    if item.key is None:
        item.key = {plan.primary_id: str(uuid.uuid4())}
    elif not _by_id(plan, item):
        item.extra = dict(item.key)
        item.key = {plan.primary_id: key_guid(plan.logical_name, item.key, collation)}
    return item


def _needs_lookup(plan: WritePlan, item: _Item) -> bool:
    """A matched column, or an alternate key a URL cannot carry (§3.6): found by ``$filter``.

    ``item`` went through ``Writer._key_problem``, which renders the keys a URL can carry.
    """
    if item.key is None or _by_id(plan, item):
        return False
    return plan.id_mode is IdMode.MATCH or item.segment is None


def _lookup_problem(plan: WritePlan, key: Mapping[str, t.Any], found: int) -> WebApiError | None:
    """Why a record whose key matched ``found`` rows cannot be written, if it cannot."""
    values = ", ".join(f"{column} = {value!r}" for column, value in key.items())
    if found == 0 and plan.operation is Operation.UPDATE:
        return _rejection(
            f"no {plan.logical_name} row has {values} (update changes existing rows only)",
            404,
            KEY_NOT_FOUND_CODE,
        )
    if found > 1 and not plan.all_matches:
        return _rejection(
            f"{found} {plan.logical_name} rows have {values}; the record names one row: use an "
            f'alternate key as id_field, or set multiple_matches to "all" to {plan.operation} '
            "every one"
        )
    return None


def _too_big(error: WebApiError) -> bool:
    """413, SQL timeout, or a client timeout: a smaller request may pass (§7.5, §10 F11)."""
    if error.status == 413 or error.code == SQL_TIMEOUT_CODE:
        return True
    return error.status == 0 and "Timeout" in error.message


def _rejection(message: str, status: int = 400, code: str | None = None) -> WebApiError:
    return WebApiError(status, code, message)


def split_even(items: Sequence[_T], chunk_size: int, workers: int) -> list[Sequence[_T]]:
    """Split ``items`` into even chunks of at most ``chunk_size``, one per worker where it pays.

    A batch smaller than ``workers * chunk_size`` is still spread over all workers, as long as
    each chunk keeps at least ``MIN_PARALLEL_CHUNK`` rows, so a sink's batch keeps every allowed
    request in flight instead of leaving workers idle.
    """
    count = max(-(-len(items) // chunk_size), min(workers, len(items) // MIN_PARALLEL_CHUNK), 1)
    size = -(-len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]


class Writer:
    """Sends rows for one or more tables through one :class:`Transport`; thread-safe."""

    def __init__(
        self,
        client: Transport,
        *,
        collation: Collation,
        chunk_size: int = 500,
        part_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the writer.

        Args:
            client: Transport (the run's application users).
            collation: How the environment compares key values (merging, lookups, ids).
            chunk_size: Rows per bulk message or ``$batch`` (capped at 1,000).
            part_retries: Rounds for resending ``$batch`` parts that failed transiently.
            sleep: Sleeper between such rounds (tests inject a fake).
        """
        self._client = client
        self.collation = collation
        self._chunk_size = max(1, min(chunk_size, MAX_BATCH_OPERATIONS))
        self._part_retries = part_retries
        self._sleep = sleep
        self._no_bulk: set[str] = set()
        self._lock = threading.Lock()
        self._senders: ThreadPoolExecutor | None = None

    def _chunk_senders(self) -> ThreadPoolExecutor:
        """The threads that send a write's chunks: made once, as many as may be in flight.

        Kept for the run (a thread made per write cost more CPU than its request); a chunk
        never waits on another task of this pool, so writes sharing it cannot deadlock.
        """
        with self._lock:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(
                    self._client.ceiling(), thread_name_prefix="dataverse"
                )
            return self._senders

    def bulk_disabled(self, entity_set: str) -> bool:
        """Whether this writer learnt that ``entity_set`` does not take bulk messages."""
        with self._lock:
            return entity_set in self._no_bulk

    def write(self, plan: WritePlan, rows: Sequence[Row], *, ids: bool = False) -> WriteResult:
        """Write ``rows``; return only when every row landed or was rejected.

        With ``ids``, also tell the primary ids of the rows that landed records wrote: known
        from their addressing, or read back by their alternate key after the write.

        Raises:
            AuthError: no token (every later write would fail too).
            ConfigError: TLS or settings problems.
            ServiceUnreachable: the outage budget ran out; nothing more can be written.
        """
        result = WriteResult([], [])
        merged = merge_rows(rows)
        if plan.operation is Operation.DEACTIVATE:
            if plan.deactivation is None:
                refusal = _rejection(
                    f"{plan.logical_name} has no inactive state (statecode) to deactivate rows "
                    "with; delete them instead (hard_delete: true, or operation delete)"
                )
                return WriteResult([], [(row.index, refusal) for row in rows])
            for item in merged:
                item.payload = dict(plan.deactivation)
        items = self._prepare(plan, merged, result)
        if items:
            chunks = split_even(items, self._chunk_size, self.concurrency())
            senders = self._chunk_senders()
            sent = [senders.submit(self._write_chunk, plan, chunk) for chunk in chunks]
            wait(sent)  # every chunk settled before a failure is raised
            for outcome in sent:
                result.merge(outcome.result())
        # A record written to several matching rows lands only if every one of them did.
        rejected = dict(reversed(result.rejected))
        result.landed = sorted(set(result.landed) - rejected.keys())
        result.rejected = sorted(rejected.items(), key=lambda pair: pair[0])
        if ids and not plan.operation.removes:
            self._tell_ids(plan, items, result)
        return result

    def existing_ids(self, plan: WritePlan, rows: Sequence[Row]) -> dict[int, list[str]]:
        """A dry run: the primary ids of the existing rows ``rows`` address; nothing is written.

        Rows addressed by id count as they are; rows addressed by key are looked up (none found:
        a new row, an empty list).
        """
        result = WriteResult([row.index for row in rows], [])
        self._tell_ids(plan, merge_rows(rows), result)
        return {row.index: result.ids.get(row.index, []) for row in rows}

    def _tell_ids(self, plan: WritePlan, items: list[_Item], result: WriteResult) -> None:
        """Fill ``result.ids`` for landed records; read back those written by alternate key."""
        landed = set(result.landed)
        by_key: list[_Item] = []
        for item in items:
            if item.key is None or not landed.intersection(item.indexes):
                continue  # a create without an id yet: a new row (a dry run)
            if _by_id(plan, item):
                guid = str(item.key[plan.primary_id])
                for index in item.indexes:
                    result.ids.setdefault(index, []).append(guid)
            else:
                by_key.append(item)
        if by_key:
            found = self._find_ids(plan, by_key)
            for item in by_key:
                guids = found.get(self.collation.key_id(t.cast("dict[str, t.Any]", item.key)), [])
                for index in item.indexes:
                    result.ids[index] = list(guids)

    def concurrency(self) -> int:
        """Requests to keep in flight: what the transport has room for now (§7.3, §7.4)."""
        return self._client.capacity()

    # -- addressing --------------------------------------------------------------------------

    def _prepare(self, plan: WritePlan, items: list[_Item], result: WriteResult) -> list[_Item]:
        """Check keys and address every item; reject what cannot be sent."""
        ready: list[_Item] = []
        lookups: list[_Item] = []
        for item in items:
            problem = self._key_problem(plan, item)
            if problem:
                result.rejected.extend((i, _rejection(problem)) for i in item.indexes)
            elif plan.operation is Operation.CREATE:
                ready.append(_with_primary_id(plan, item, self.collation))
            elif _needs_lookup(plan, item):
                lookups.append(item)
            else:
                ready.append(item)
        for start in range(0, len(lookups), LOOKUP_CHUNK):
            ready.extend(self._resolve(plan, lookups[start : start + LOOKUP_CHUNK], result))
        return ready

    @staticmethod
    def _key_problem(plan: WritePlan, item: _Item) -> str | None:
        if item.key is None:
            if plan.operation is Operation.UPDATE or plan.operation.removes:
                return f"A {plan.operation} needs key values; the row has none."
            return None
        try:
            try:
                item.segment = webapi.key_segment(item.key, plan.primary_id, encoded=False)
            except webapi.NotAddressable:  # found by $filter instead: the values must be literals
                for value in item.key.values():
                    webapi.literal(value)
        except ValueError as exc:
            return f"Invalid key {sorted(item.key)}: {exc}"
        return None

    def _resolve(self, plan: WritePlan, items: list[_Item], result: WriteResult) -> list[_Item]:
        """Find the primary ids of matched columns and unaddressable keys (§3.6, §10 F14)."""
        try:
            found = self._find_ids(plan, items)
        except WebApiError as error:
            for item in items:
                result.rejected.extend((i, error) for i in item.indexes)
            return []
        resolved: list[_Item] = []
        for item in items:
            key = t.cast("dict[str, t.Any]", item.key)
            guids = found.get(self.collation.key_id(key), [])
            problem = _lookup_problem(plan, key, len(guids))
            if problem is not None:
                result.rejected.extend((i, problem) for i in item.indexes)
            elif not guids and plan.operation.removes:
                result.landed.extend(item.indexes)  # nothing to delete or deactivate
                result.gone += 1
            else:
                resolved.extend(
                    _Item(item.indexes, item.payload, {plan.primary_id: guid}, dict(key))
                    for guid in guids or [key_guid(plan.logical_name, key, self.collation)]
                )
        return resolved

    def _find_ids(self, plan: WritePlan, items: list[_Item]) -> dict[KeyId, list[str]]:
        """Primary ids of the rows whose key columns hold each item's values."""
        keys = [t.cast("dict[str, t.Any]", item.key) for item in items]
        return self.find_rows(plan.entity_set, plan.primary_id, keys)

    def find_rows(
        self, entity_set: str, primary_id: str, keys: Sequence[Mapping[str, t.Any]]
    ) -> dict[KeyId, list[str]]:
        """Primary ids of the rows holding each of ``keys``, by :meth:`Collation.key_id`.

        One ``$filter`` per ``LOOKUP_CHUNK`` keys, sent in parallel, following next links; the
        service matches strings by its collation, and the rows it returns are recognised by the
        same (:attr:`collation`).
        """
        chunks = [keys[i : i + LOOKUP_CHUNK] for i in range(0, len(keys), LOOKUP_CHUNK)]
        found: dict[KeyId, list[str]] = {}
        if not chunks:
            return found
        with ThreadPoolExecutor(min(self.concurrency(), len(chunks))) as pool:
            for part in pool.map(lambda c: self._find_chunk(entity_set, primary_id, c), chunks):
                for ident, guids in part.items():
                    known = found.setdefault(ident, [])
                    known.extend(g for g in guids if g not in known)
        return found

    def _find_chunk(
        self, entity_set: str, primary_id: str, keys: Sequence[Mapping[str, t.Any]]
    ) -> dict[KeyId, list[str]]:
        columns = sorted(keys[0])
        request = webapi.query(
            entity_set, [primary_id, *columns], webapi.filter_keys(columns, keys)
        )
        found: dict[KeyId, list[str]] = {}
        ident = self.collation.key_id
        for record in self._client.get_all(request.path):
            guids = found.setdefault(ident({c: record.get(c) for c in columns}), [])
            if str(record[primary_id]) not in guids:
                guids.append(str(record[primary_id]))
        return found

    def _existing(self, plan: WritePlan, guids: Sequence[str]) -> set[str]:
        """Which of ``guids`` are primary ids of rows of the table."""
        existing: set[str] = set()
        for start in range(0, len(guids), LOOKUP_CHUNK):
            chunk = [uuid.UUID(guid) for guid in guids[start : start + LOOKUP_CHUNK]]
            request = webapi.query(
                plan.entity_set, [plan.primary_id], webapi.filter_any(plan.primary_id, chunk)
            )
            for record in self._client.get_json(request.path).get("value", []):
                existing.add(str(record[plan.primary_id]).lower())
        return existing

    # -- sending -----------------------------------------------------------------------------

    def _write_chunk(self, plan: WritePlan, items: Sequence[_Item]) -> WriteResult:
        message = self._bulk_message(plan, items)
        if message is None:
            return self._write_batch(plan, items)
        request = webapi.bulk(
            plan.entity_set,
            message,
            plan.logical_name,
            [self._bulk_target(plan, item) for item in items],
        )
        try:
            self._client.send(request)
        except WebApiError as error:
            if _too_big(error) and len(items) > 1:
                LOGGER.info(
                    "%s on %s: %s; halving %d rows", message, plan.entity_set, error, len(items)
                )
                half = len(items) // 2
                outcome = self._write_chunk(plan, items[:half])
                outcome.merge(self._write_chunk(plan, items[half:]))
                return outcome
            if error.unavailable:  # refused or unanswered as a whole: nothing to learn per row
                return WriteResult([], [(i, error) for item in items for i in item.indexes])
            return self._isolate(plan, items, message, error)
        landed = [i for item in items for i in item.indexes]
        outcome = WriteResult(landed, [])
        if message == "CreateMultiple":
            outcome.created = len(items)
        elif plan.operation is Operation.DEACTIVATE:
            outcome.deactivated = len(items)
        elif message == "UpdateMultiple":
            outcome.updated = len(items)
        else:
            outcome.upserted = len(items)
        return outcome

    def _isolate(
        self, plan: WritePlan, items: Sequence[_Item], message: str, error: WebApiError
    ) -> WriteResult:
        """Resend a bulk chunk the service refused as ``$batch``, one operation per row.

        Only the service's own "not supported" answer for this message turns bulk off for the
        table; any other failure (a bad row, a 401, duplicate detection) leaves it on.
        """
        LOGGER.info(
            "%s on %s failed (%s); isolating %d rows through $batch",
            message,
            plan.entity_set,
            error,
            len(items),
        )
        text = error.message.lower()
        if message.lower() in text and any(hint in text for hint in _UNSUPPORTED_HINTS):
            self._disable_bulk(plan.entity_set)
        return self._write_batch(plan, items)

    def _disable_bulk(self, entity_set: str) -> None:
        with self._lock:
            if entity_set not in self._no_bulk:
                LOGGER.warning("Bulk messages unavailable on %s: using $batch", entity_set)
                self._no_bulk.add(entity_set)

    def _bulk_message(self, plan: WritePlan, items: Sequence[_Item]) -> str | None:
        if not plan.supports_bulk or self.bulk_disabled(plan.entity_set):
            return None
        if plan.operation is Operation.DELETE:
            return None  # DeleteMultiple is for elastic tables only (§6.4)
        if plan.operation in {Operation.UPDATE, Operation.DEACTIVATE}:
            return "UpdateMultiple" if all(_by_id(plan, item) for item in items) else None
        if plan.operation is Operation.CREATE or all(item.key is None for item in items):
            return "CreateMultiple"
        if any(item.key is None for item in items):
            return None
        return "UpsertMultiple"

    @staticmethod
    def _body(item: _Item, *, with_key: bool) -> dict[str, t.Any]:
        """The payload with ``extra`` columns; key columns only when ``with_key``."""
        body = {**item.payload, **item.extra} if item.extra else dict(item.payload)
        key = item.key
        if key:
            if with_key:
                body.update(key)
            else:
                for column in key:
                    body.pop(column, None)
        return body

    def _bulk_target(self, plan: WritePlan, item: _Item) -> dict[str, t.Any]:
        if plan.operation is Operation.UPSERT and item.key is not None and not _by_id(plan, item):
            body = self._body(item, with_key=False)
            segment = item.segment or webapi.key_segment(item.key, plan.primary_id, encoded=False)
            body["@odata.id"] = webapi.odata_id(plan.entity_set, segment)
            return body
        return self._body(item, with_key=True)

    def _single(self, plan: WritePlan, item: _Item) -> WebRequest:
        """One operation for ``$batch`` (§4.1 to §4.5)."""
        operation = plan.operation
        if operation is Operation.CREATE or item.key is None:
            return webapi.create(plan.entity_set, self._body(item, with_key=True))
        if operation is Operation.DELETE:
            return webapi.delete(plan.entity_set, item.key, plan.primary_id)
        body = self._body(item, with_key=False)
        if operation in {Operation.UPDATE, Operation.DEACTIVATE}:
            return webapi.update(plan.entity_set, item.key, plan.primary_id, body)
        return webapi.upsert(plan.entity_set, item.key, plan.primary_id, body)

    def _write_batch(self, plan: WritePlan, items: Sequence[_Item]) -> WriteResult:
        """Send one operation per item in ``$batch`` (continue-on-error); retry transient parts."""
        result = WriteResult([], [])
        conflicts: list[tuple[_Item, WebApiError]] = []
        unanswered = self._send_parts(plan, items, result, conflicts)
        missing = WebApiError(0, None, "The $batch answer had no part for this operation.")
        for item, _ in unanswered:
            result.rejected.extend((i, missing) for i in item.indexes)
        if conflicts:
            self._settle_conflicts(plan, conflicts, result)
        return result

    def _send_parts(
        self,
        plan: WritePlan,
        items: Sequence[_Item],
        result: WriteResult,
        conflicts: list[tuple[_Item, WebApiError]],
    ) -> list[tuple[_Item, WebRequest]]:
        """Send ``items`` as ``$batch`` parts; return those that never got an answer."""
        pending = [(item, self._single(plan, item)) for item in items]
        for attempt in range(self._part_retries + 1):
            if not pending:
                break
            if attempt:
                self._sleep(min(30.0, 2.0**attempt))
            try:
                answers = self._client.send_batch([request for _, request in pending])
            except WebApiError as error:  # the client already retried the request as a whole
                for item, _ in pending:
                    result.rejected.extend((i, error) for i in item.indexes)
                return []
            last = attempt == self._part_retries
            retry = pending[len(answers) :]  # no answer: not executed (§5.4)
            for entry, answer in zip(pending, answers, strict=False):
                if not self._settle(plan, entry, answer, result, conflicts, last=last):
                    retry.append(entry)
            pending = retry
        return pending

    def _settle_conflicts(
        self, plan: WritePlan, conflicts: list[tuple[_Item, WebApiError]], result: WriteResult
    ) -> None:
        """Creates answered "already exists": landed if their primary id exists (a replay)."""
        guids = [str(item.key[plan.primary_id]) for item, _ in conflicts if item.key]
        try:
            existing = self._existing(plan, guids)
        except WebApiError as exc:
            for item, _ in conflicts:
                result.rejected.extend((i, exc) for i in item.indexes)
            return
        for item, error in conflicts:
            if item.key and str(item.key[plan.primary_id]).lower() in existing:
                result.landed.extend(item.indexes)
                result.created += 1
            else:
                result.rejected.extend((i, error) for i in item.indexes)

    def _settle(  # noqa: PLR0913 - the part, its answer, and where its outcome goes
        self,
        plan: WritePlan,
        pending: tuple[_Item, WebRequest],
        answer: WebResponse,
        result: WriteResult,
        conflicts: list[tuple[_Item, WebApiError]],
        *,
        last: bool,
    ) -> bool:
        """Record the outcome of one part; False when it should be sent again.

        A create answered "already exists" goes to ``conflicts``, settled after the batch.
        """
        item, request = pending
        if answer.ok:
            result.landed.extend(item.indexes)
            _count(plan, request.method, result)
            return True
        error = webapi.parse_error(answer)
        if request.method == "POST" and error.already_exists:
            conflicts.append((item, error))
            return True
        if error.not_found and plan.operation.removes:
            result.landed.extend(item.indexes)  # already gone
            result.gone += 1
            return True
        if error.is_transient and not last:
            return False  # a 429 part has already paused its user (the client saw it)
        result.rejected.extend((i, error) for i in item.indexes)
        return True


def _count(plan: WritePlan, method: str, result: WriteResult) -> None:
    if method == "POST":
        result.created += 1
    elif method == "DELETE":
        result.deleted += 1
    elif plan.operation is Operation.DEACTIVATE:
        result.deactivated += 1
    elif plan.operation is Operation.UPDATE:
        result.updated += 1
    else:
        result.upserted += 1
