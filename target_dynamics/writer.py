r"""Writes rows to one table: bulk messages first, ``$batch`` to fall back and to isolate (§5, §6).

How a call to :meth:`Writer.write` proceeds:

1. **Merge** rows with the same key (strings compared case-insensitively, as Dataverse does):
   later values win, column by column; every merged row shares the outcome.
2. **Resolve unaddressable keys**: an alternate-key value containing ``/ < > * % & : \ ? +``
   cannot travel in a key URL (§3.6), so the row's primary id is looked up with ``$filter``.
   Found: the row is written by primary id. Not found: an upsert creates the record under a
   deterministic id (UUIDv5 of table and key, so a rerun finds or recreates the same id), an
   update is rejected as not found, a delete is already done.
3. **Chunk** (``chunk_size``, at most 1,000; a batch is spread evenly over the workers, down
   to ``MIN_PARALLEL_CHUNK`` rows a chunk) and send chunks in parallel: ``min(x-ms-dop-hint,
   max_concurrency)`` threads.
4. Each chunk goes as one **bulk message** where one applies: ``UpsertMultiple`` (key in
   ``@odata.id``, or the primary id in the body), ``CreateMultiple`` (primary id in the body),
   ``UpdateMultiple`` (primary id only; alternate keys are not supported there, §6.2).
   Deletes and alternate-key updates always go through ``$batch``.
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
with "already exists" (412 / ``0x80040237``, or a 500 duplicate key) and that counts as done;
a ``CreateMultiple`` whose answer was lost fails as a whole on the client's retry and is then
isolated through ``$batch``, where each such row is done. A delete answered 404 is done.
Counts: ``created`` / ``updated`` / ``deleted`` where the service says so; upserts, whose
outcome the service does not tell without ``return=representation``, count as ``upserted``.
"""

from __future__ import annotations

import logging
import threading
import time
import typing as t
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

from target_dynamics import webapi
from target_dynamics.errors import KEY_NOT_FOUND_CODE, SQL_TIMEOUT_CODE, WebApiError
from target_dynamics.webapi import MAX_BATCH_OPERATIONS, WebRequest, WebResponse

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from target_dynamics.client import DataverseClient

LOGGER = logging.getLogger(__name__)
_T = t.TypeVar("_T")
DEFAULT_CONCURRENCY = 4
"""Threads when the service gave no ``x-ms-dop-hint`` (the sample environments' value, §7.3)."""
MAX_CONCURRENCY = 52
"""Concurrent requests per user and web server (§7.1)."""
KEY_NAMESPACE = uuid.UUID("1f0a5c3e-8d5b-4e8e-9a3f-6d2b7c4e5a10")
"""Namespace of the deterministic ids given to rows created by an unaddressable alternate key."""
MIN_PARALLEL_CHUNK = 100
"""Fewest rows worth a request of their own when spreading a batch over workers (§6.5: start
with 100 to 1,000 rows per bulk request)."""
LOOKUP_CHUNK = 25
"""Values per ``$filter`` query: keeps URLs short (§5.1 limits GET URLs in batches to 64 KB)."""
_UNSUPPORTED_HINTS = ("not supported", "not implemented", "not yet implemented", "does not support")


class Operation(StrEnum):
    """What to do with each row."""

    UPSERT = "upsert"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class WritePlan:
    """How rows of one stream map onto one table."""

    entity_set: str
    logical_name: str
    primary_id: str
    operation: Operation
    key_columns: tuple[str, ...]
    """() without keys; ``(primary_id,)`` for the primary id; alternate key columns otherwise."""
    supports_bulk: bool = True


@dataclass(frozen=True)
class Row:
    """One record ready to send."""

    index: int
    """The caller's position, echoed in results."""
    payload: Mapping[str, t.Any]
    """JSON-ready body: logical names, ``nav@odata.bind`` values; may include key columns."""
    key: Mapping[str, t.Any] | None
    """``{primary_id: guid}`` or alternate key values; None for plain creates."""


@dataclass
class WriteResult:
    """Every row index lands or is rejected; counts where the service tells."""

    landed: list[int]
    rejected: list[tuple[int, WebApiError]]
    created: int = 0
    updated: int = 0
    deleted: int = 0
    upserted: int = 0
    """Upserts: created or updated, the service does not say which."""

    def merge(self, other: WriteResult) -> None:
        """Add ``other``'s outcomes to this result."""
        self.landed.extend(other.landed)
        self.rejected.extend(other.rejected)
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.upserted += other.upserted


@dataclass
class _Item:
    """One record after merging: the rows it stands for, its body and how it is addressed."""

    indexes: list[int]
    payload: dict[str, t.Any]
    key: dict[str, t.Any] | None
    extra: dict[str, t.Any] = field(default_factory=dict)
    """Columns to add to the body (key columns of a row resolved to its primary id)."""


def _by_id(plan: WritePlan, item: _Item) -> bool:
    """Whether ``item`` is addressed by primary id (``key == {primary_id: guid}``)."""
    return item.key is not None and item.key.keys() == {plan.primary_id}


def _norm(value: t.Any) -> t.Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _key_id(key: Mapping[str, t.Any]) -> tuple[tuple[str, t.Any], ...]:
    return tuple(sorted((column, _norm(value)) for column, value in key.items()))


def merge_rows(rows: Sequence[Row]) -> list[_Item]:
    """Merge rows with the same key; later values win, column by column (§6.5, §10 F9)."""
    items: list[_Item] = []
    by_key: dict[tuple[tuple[str, t.Any], ...], _Item] = {}
    for row in rows:
        key = dict(row.key) if row.key else None
        if key is None:
            items.append(_Item([row.index], dict(row.payload), None))
            continue
        ident = _key_id(key)
        found = by_key.get(ident)
        if found is None:
            found = by_key[ident] = _Item([row.index], dict(row.payload), key)
            items.append(found)
        else:
            found.indexes.append(row.index)
            found.payload.update(row.payload)
            found.key = key
    return items


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
    """Sends rows for one or more tables through one :class:`DataverseClient`; thread-safe."""

    def __init__(
        self,
        client: DataverseClient,
        *,
        max_concurrency: int | None = None,
        chunk_size: int = 500,
        part_retries: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the writer.

        Args:
            client: Transport.
            max_concurrency: Upper bound on parallel requests; the service's hint applies below it.
            chunk_size: Rows per bulk message or ``$batch`` (capped at 1,000).
            part_retries: Rounds for resending ``$batch`` parts that failed transiently.
            sleep: Sleeper between such rounds (tests inject a fake).
        """
        self._client = client
        self._max_concurrency = max_concurrency
        self._chunk_size = max(1, min(chunk_size, MAX_BATCH_OPERATIONS))
        self._part_retries = part_retries
        self._sleep = sleep
        self._no_bulk: set[str] = set()
        self._lock = threading.Lock()
        self._probed = False

    def bulk_disabled(self, entity_set: str) -> bool:
        """Whether this writer learnt that ``entity_set`` does not take bulk messages."""
        with self._lock:
            return entity_set in self._no_bulk

    def write(self, plan: WritePlan, rows: Sequence[Row]) -> WriteResult:
        """Write ``rows``; return only when every row landed or was rejected.

        Raises:
            AuthError: no token (every later write would fail too).
            ConfigError: TLS or settings problems.
            ServiceUnreachable: the outage budget ran out; nothing more can be written.
        """
        result = WriteResult([], [])
        items = self._prepare(plan, merge_rows(rows), result)
        if items:
            threads = self.concurrency()
            chunks = split_even(items, self._chunk_size, threads)
            workers = min(threads, len(chunks))
            with ThreadPoolExecutor(workers, thread_name_prefix="dataverse") as pool:
                for outcome in pool.map(lambda chunk: self._write_chunk(plan, chunk), chunks):
                    result.merge(outcome)
        result.landed.sort()
        result.rejected.sort(key=lambda pair: pair[0])
        return result

    def concurrency(self) -> int:
        """Threads to use: the service's ``x-ms-dop-hint`` capped by ``max_concurrency`` (§7.3)."""
        if self._client.dop_hint is None and not self._probed:
            self._probed = True
            try:
                self._client.get_json("WhoAmI")
            except WebApiError as error:
                LOGGER.warning("WhoAmI failed (%s); using %d threads", error, DEFAULT_CONCURRENCY)
        hint = self._client.dop_hint or DEFAULT_CONCURRENCY
        if self._max_concurrency:
            hint = min(hint, self._max_concurrency)
        threads = max(1, min(hint, MAX_CONCURRENCY))
        self._client.limit_concurrency(threads)  # shared by writes running side by side
        return threads

    def lookup_ids(
        self, entity_set: str, primary_id: str, column: str, values: Sequence[t.Any]
    ) -> dict[t.Any, str]:
        """Map values of ``column`` to primary ids with batched ``$filter`` queries.

        Strings match case-insensitively (as Dataverse compares them); values without a record
        are absent from the result.
        """
        wanted = {_norm(v): v for v in values if v is not None}
        found: dict[t.Any, str] = {}
        pending = list(wanted.values())
        for start in range(0, len(pending), LOOKUP_CHUNK):
            chunk = pending[start : start + LOOKUP_CHUNK]
            request = webapi.query(
                entity_set, [primary_id, column], webapi.filter_any(column, chunk)
            )
            for record in self._client.get_json(request.path).get("value", []):
                original = wanted.get(_norm(record.get(column)))
                if original is not None and record.get(primary_id):
                    found.setdefault(original, str(record[primary_id]))
        return found

    # -- preparation -------------------------------------------------------------------------

    def _prepare(self, plan: WritePlan, items: list[_Item], result: WriteResult) -> list[_Item]:
        """Check keys, resolve unaddressable alternate keys; reject what cannot be sent."""
        ready: list[_Item] = []
        unaddressable: list[_Item] = []
        for item in items:
            problem = self._key_problem(plan, item)
            if problem:
                result.rejected.extend((i, _rejection(problem)) for i in item.indexes)
            elif (
                item.key is not None
                and not _by_id(plan, item)
                and plan.operation is not Operation.CREATE
                and not webapi.key_is_addressable(item.key)
            ):
                unaddressable.append(item)
            else:
                ready.append(item)
        if unaddressable:
            ready.extend(self._resolve(plan, unaddressable, result))
        return ready

    @staticmethod
    def _key_problem(plan: WritePlan, item: _Item) -> str | None:
        if item.key is None:
            if plan.operation in (Operation.UPDATE, Operation.DELETE):
                return f"A {plan.operation} needs key values; the row has none."
            return None
        try:
            if webapi.key_is_addressable(item.key):
                webapi.key_segment(item.key, plan.primary_id)
            else:
                for value in item.key.values():
                    webapi.literal(value)
        except ValueError as exc:
            return f"Invalid key {sorted(item.key)}: {exc}"
        return None

    def _resolve(self, plan: WritePlan, items: list[_Item], result: WriteResult) -> list[_Item]:
        """Find primary ids for alternate keys a URL cannot carry (§3.6, §10 F14)."""
        resolved: list[_Item] = []
        for start in range(0, len(items), LOOKUP_CHUNK):
            chunk = items[start : start + LOOKUP_CHUNK]
            try:
                ids = self._find_ids(plan, chunk)
            except WebApiError as error:
                for item in chunk:
                    result.rejected.extend((i, error) for i in item.indexes)
                continue
            for item in chunk:
                key = t.cast("dict[str, t.Any]", item.key)
                guid = ids.get(_key_id(key))
                if guid is None and plan.operation is Operation.UPDATE:
                    error = _rejection(
                        f"A record with the specified key values does not exist in "
                        f"{plan.logical_name} entity",
                        404,
                        KEY_NOT_FOUND_CODE,
                    )
                    result.rejected.extend((i, error) for i in item.indexes)
                    continue
                if guid is None and plan.operation is Operation.DELETE:
                    result.landed.extend(item.indexes)
                    continue
                if guid is None:
                    guid = str(uuid.uuid5(KEY_NAMESPACE, f"{plan.logical_name}|{_key_id(key)}"))
                item.extra = dict(key)
                item.key = {plan.primary_id: guid}
                resolved.append(item)
        return resolved

    def _find_ids(self, plan: WritePlan, items: list[_Item]) -> dict[tuple, str]:
        columns = sorted(t.cast("dict[str, t.Any]", items[0].key))
        keys = [t.cast("dict[str, t.Any]", item.key) for item in items]
        request = webapi.query(
            plan.entity_set, [plan.primary_id, *columns], webapi.filter_keys(columns, keys)
        )
        found: dict[tuple, str] = {}
        for record in self._client.get_json(request.path).get("value", []):
            ident = _key_id({c: record.get(c) for c in columns})
            found.setdefault(ident, str(record[plan.primary_id]))
        return found

    # -- sending -----------------------------------------------------------------------------

    def _write_chunk(self, plan: WritePlan, items: list[_Item]) -> WriteResult:
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
        elif message == "UpdateMultiple":
            outcome.updated = len(items)
        else:
            outcome.upserted = len(items)
        return outcome

    def _isolate(
        self, plan: WritePlan, items: list[_Item], message: str, error: WebApiError
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

    def _bulk_message(self, plan: WritePlan, items: list[_Item]) -> str | None:
        if not plan.supports_bulk or self.bulk_disabled(plan.entity_set):
            return None
        if plan.operation is Operation.DELETE:
            return None
        if plan.operation is Operation.UPDATE:
            return "UpdateMultiple" if all(_by_id(plan, item) for item in items) else None
        if plan.operation is Operation.CREATE or all(item.key is None for item in items):
            return "CreateMultiple"
        if any(item.key is None for item in items):
            return None
        return "UpsertMultiple"

    @staticmethod
    def _body(item: _Item, *, with_key: bool) -> dict[str, t.Any]:
        """The payload with ``extra`` columns; key columns only when ``with_key``."""
        body = {**item.payload, **item.extra}
        key = item.key or {}
        for column in key:
            body.pop(column, None)
        if with_key:
            body.update(key)
        return body

    def _bulk_target(self, plan: WritePlan, item: _Item) -> dict[str, t.Any]:
        if plan.operation is Operation.UPSERT and item.key is not None and not _by_id(plan, item):
            body = self._body(item, with_key=False)
            body["@odata.id"] = webapi.odata_id(plan.entity_set, item.key, plan.primary_id)
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
        if operation is Operation.UPDATE:
            return webapi.update(plan.entity_set, item.key, plan.primary_id, body)
        return webapi.upsert(plan.entity_set, item.key, plan.primary_id, body)

    def _write_batch(self, plan: WritePlan, items: list[_Item]) -> WriteResult:
        """Send one operation per item in ``$batch`` (continue-on-error); retry transient parts."""
        result = WriteResult([], [])
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
                return result
            last = attempt == self._part_retries
            retry = pending[len(answers) :]  # no answer: not executed (§5.4)
            for entry, answer in zip(pending, answers, strict=False):
                if not self._settle(plan, entry, answer, result, last=last):
                    retry.append(entry)
            pending = retry
        missing = WebApiError(0, None, "The $batch answer had no part for this operation.")
        for item, _ in pending:
            result.rejected.extend((i, missing) for i in item.indexes)
        return result

    def _settle(
        self,
        plan: WritePlan,
        pending: tuple[_Item, WebRequest],
        answer: WebResponse,
        result: WriteResult,
        *,
        last: bool,
    ) -> bool:
        """Record the outcome of one part; False when it should be sent again."""
        item, request = pending
        if answer.ok:
            result.landed.extend(item.indexes)
            _count(plan, request.method, result)
            return True
        error = webapi.parse_error(answer)
        if request.method == "POST" and item.key is not None and error.already_exists:
            result.landed.extend(item.indexes)  # a replay of a create that landed before
            return True
        if request.method == "DELETE" and error.not_found:
            result.landed.extend(item.indexes)  # already deleted
            return True
        if error.is_transient and not last:
            if answer.status == 429:
                self._client.throttle(error.retry_after or 1.0)
            return False
        result.rejected.extend((i, error) for i in item.indexes)
        return True


def _count(plan: WritePlan, method: str, result: WriteResult) -> None:
    if method == "POST":
        result.created += 1
    elif method == "DELETE":
        result.deleted += 1
    elif plan.operation is Operation.UPDATE:
        result.updated += 1
    else:
        result.upserted += 1
