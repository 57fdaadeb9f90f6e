"""Marketing lists: find or create the list a stream fills, then add (and remove) its members.

A marketing list (table ``list``) is static or dynamic (``type``), holds one member type
(``createdfromcode``: 1 account, 2 contact, 4 lead) and may be locked (``lockstatus``); members
are added in bulk with ``AddListMembersList`` and read back through the list's N:N navigation
property (Microsoft Learn: "list EntityType", "AddListMembersList Action", "AddMemberList
Action", "RemoveMemberList Action").

Adding is idempotent: the list's members are read once, and only rows that are not members yet
are sent; a request whose answer was lost is sent again, and members it had added are skipped.
A bulk request that fails for good is isolated through ``$batch`` of ``AddMemberList``, so one
bad member is rejected and the others are added.
"""

from __future__ import annotations

import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID

from target_dynamics import webapi
from target_dynamics.errors import MetadataError, WebApiError
from target_dynamics.identity import key_guid
from target_dynamics.writer import split_even

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from target_dynamics.collation import Collation
    from target_dynamics.writer import Transport


MEMBER_TYPES = {"account": 1, "contact": 2, "lead": 4}
"""``list.createdfromcode`` by member table."""
MEMBERS_PER_REQUEST = 1000
"""Members per ``AddListMembersList`` request."""
_LIST_COLUMNS = ("listid", "listname", "createdfromcode", "type", "lockstatus", "statecode")


class ListCounts(t.Protocol):
    """Where a stream's list counts go (:meth:`target_dynamics.reporting.RunReport.add_list`)."""

    def __call__(
        self, name: str, *, added: int = 0, already: int = 0, removed: int = 0, rejected: int = 0
    ) -> None:
        """Add the increments to marketing list ``name``'s counters."""


@dataclass(frozen=True)
class MarketingList:
    """A static, unlocked, active list of ``member_table`` rows."""

    list_id: str
    name: str
    member_table: str
    created: bool = False


@dataclass
class MemberOutcome:
    """What one :meth:`ListMembers.add` or :meth:`ListMembers.remove_absent` did."""

    done: int = 0
    """Members added (or removed)."""
    already: int = 0
    """Rows that were members before (adding only)."""
    failed: dict[str, WebApiError] | None = None
    """Member id -> why it could not be added (or removed)."""


def _where(wanted: str) -> str:
    return f"marketing list {wanted!r}"


def _check(row: dict[str, t.Any], member_table: str, wanted: str) -> MarketingList:
    """The list in ``row``, if a stream of ``member_table`` rows may fill it.

    Raises:
        MetadataError: another member type, a dynamic, locked or inactive list.
    """
    name = str(row.get("listname") or wanted)
    guid = str(row["listid"])
    code = row.get("createdfromcode")
    holds = next((table for table, value in MEMBER_TYPES.items() if value == code), str(code))
    if holds != member_table:
        raise MetadataError(
            f"{_where(wanted)} ({guid}) holds {holds} rows; this stream writes {member_table} "
            f"rows: name a list of {member_table} rows, or a new name to create one"
        )
    if row.get("type"):
        raise MetadataError(
            f"{_where(wanted)} ({guid}) is dynamic: its members come from its query; use a "
            "static list"
        )
    if row.get("lockstatus"):
        raise MetadataError(
            f"{_where(wanted)} ({guid}) is locked: unlock it in Dynamics 365 to change members"
        )
    if row.get("statecode"):
        raise MetadataError(f"{_where(wanted)} ({guid}) is inactive: activate it first")
    return MarketingList(guid, name, member_table)


def find_list(client: Transport, wanted: str, member_table: str) -> MarketingList | None:
    """The list named ``wanted`` (a name or a GUID); None when no list has that name.

    Raises:
        MetadataError: the member table cannot be on a list; the list is of another member
            type, dynamic, locked or inactive; no list has that GUID; two lists have that name.
    """
    if member_table not in MEMBER_TYPES:
        raise MetadataError(
            f"{_where(wanted)}: lists hold {', '.join(sorted(MEMBER_TYPES))} rows, not "
            f"{member_table}; write this stream to one of those tables, or drop marketing_list"
        )
    if webapi.is_guid(wanted):
        request = webapi.query("lists", _LIST_COLUMNS, webapi.filter_any("listid", [UUID(wanted)]))
        rows = list(client.get_all(request.path))
        if not rows:
            raise MetadataError(f"no marketing list has id {wanted}: check marketing_list")
        return _check(rows[0], member_table, wanted)
    request = webapi.query("lists", _LIST_COLUMNS, webapi.filter_any("listname", [wanted]))
    rows = list(client.get_all(request.path))
    if len(rows) > 1:
        ids = ", ".join(str(r["listid"]) for r in rows)
        raise MetadataError(
            f"{len(rows)} marketing lists are named {wanted!r} ({ids}): set marketing_list to "
            "the GUID of the one to fill"
        )
    return _check(rows[0], member_table, wanted) if rows else None


def create_list(
    client: Transport, wanted: str, member_table: str, collation: Collation
) -> MarketingList:
    """Create the static list named ``wanted`` for ``member_table`` rows.

    Its id is derived from its name as the environment compares names (``collation``), so a
    create whose answer was lost is not sent twice, and names the service tells apart get
    their own ids.
    """
    guid = key_guid("list", {"listname": wanted}, collation)
    body = {
        "listid": guid,
        "listname": wanted,
        "createdfromcode": MEMBER_TYPES[member_table],
        "type": False,
    }
    try:
        client.send(webapi.create("lists", body))
    except WebApiError as error:
        if not error.already_exists:
            raise
    return MarketingList(guid, wanted, member_table, created=True)


class ListMembers:
    """The members of one list as this run knows them; thread-safe."""

    def __init__(
        self,
        client: Transport,
        marketing_list: MarketingList,
        threads: int,
        *,
        per_request: int = MEMBERS_PER_REQUEST,
    ) -> None:
        self.list = marketing_list
        self._client = client
        self._threads = max(1, threads)
        self._per_request = per_request
        self._members: set[str] | None = None
        self._lock = threading.Lock()

    def members(self) -> set[str]:
        """The list's members, read once (then kept current by this object)."""
        with self._lock:
            if self._members is None:
                request = webapi.list_members(self.list.list_id, self.list.member_table)
                column = f"{self.list.member_table}id"
                self._members = {
                    str(row[column]).lower() for row in self._client.get_all(request.path)
                }
            return set(self._members)

    def add(self, member_ids: Iterable[str]) -> MemberOutcome:
        """Add ``member_ids`` that are not members yet, in parallel bulk requests.

        A batch is spread over every allowed request, as row writes are.
        """
        wanted = list(dict.fromkeys(m.lower() for m in member_ids))
        present = self.members()
        new = [m for m in wanted if m not in present]
        chunks = split_even(new, self._per_request, self._threads) if new else []
        outcome = self._in_parallel(self._add_chunk, chunks)
        outcome.already = len(wanted) - len(new)
        return outcome

    def remove_absent(self, keep: set[str]) -> MemberOutcome:
        """Remove the members not in ``keep`` (a sync after a complete run)."""
        gone = sorted(self.members() - {k.lower() for k in keep})
        size = webapi.MAX_BATCH_OPERATIONS
        chunks = [gone[i : i + size] for i in range(0, len(gone), size)]
        return self._in_parallel(self._remove_chunk, chunks)

    def _in_parallel(
        self,
        send: t.Callable[[Sequence[str]], tuple[int, dict[str, WebApiError]]],
        chunks: Sequence[Sequence[str]],
    ) -> MemberOutcome:
        """Send ``chunks`` side by side (at most the allowed requests); add up what happened."""
        failed: dict[str, WebApiError] = {}
        outcome = MemberOutcome(failed=failed)
        if chunks:
            with ThreadPoolExecutor(min(self._threads, len(chunks))) as pool:
                for done, chunk_failed in pool.map(send, chunks):
                    outcome.done += done
                    failed.update(chunk_failed)
        return outcome

    def _add_chunk(self, chunk: Sequence[str]) -> tuple[int, dict[str, WebApiError]]:
        request = webapi.add_list_members(self.list.list_id, self.list.member_table, chunk)
        try:
            self._client.send(request)
        except WebApiError as error:
            if error.is_transient:
                return 0, dict.fromkeys(chunk, error)
            return self._one_by_one(chunk, webapi.add_list_member, adding=True)
        self._note(chunk, adding=True)
        return len(chunk), {}

    def _remove_chunk(self, chunk: Sequence[str]) -> tuple[int, dict[str, WebApiError]]:
        return self._one_by_one(chunk, webapi.remove_list_member, adding=False)

    def _one_by_one(
        self,
        chunk: Sequence[str],
        build: t.Callable[[str, str], webapi.WebRequest],
        *,
        adding: bool,
    ) -> tuple[int, dict[str, WebApiError]]:
        """One action per member in ``$batch`` (continue-on-error): who succeeded, who failed."""
        requests = [build(self.list.list_id, member) for member in chunk]
        try:
            answers = self._client.send_batch(requests)
        except WebApiError as error:
            return 0, dict.fromkeys(chunk, error)
        failed: dict[str, WebApiError] = {}
        done: list[str] = []
        missing = WebApiError(0, None, "The $batch answer had no part for this member.")
        for index, member in enumerate(chunk):
            answer = answers[index] if index < len(answers) else None
            if answer is not None and (answer.ok or (not adding and answer.status == 404)):
                done.append(member)
            else:
                failed[member] = webapi.parse_error(answer) if answer is not None else missing
        self._note(done, adding=adding)
        return len(done), failed

    def _note(self, members: Sequence[str], *, adding: bool) -> None:
        with self._lock:
            if self._members is None:
                return
            if adding:
                self._members.update(members)
            else:
                self._members.difference_update(members)


class MarketingLists:
    """The lists a run fills, each found (or created) once; thread-safe."""

    def __init__(
        self,
        client: Transport,
        threads: t.Callable[[], int],
        *,
        create: bool,
        collation: Collation,
    ) -> None:
        """Prepare the registry.

        Args:
            client: Transport.
            threads: Parallel requests allowed (the writer's concurrency).
            create: Create lists that do not exist (false in a dry run).
            collation: How the environment compares list names.
        """
        self._client = client
        self._collation = collation
        self._threads = threads
        self._create = create
        self._found: dict[tuple[str, str], ListMembers | None] = {}
        self._lock = threading.Lock()

    def get(self, wanted: str, member_table: str) -> ListMembers | None:
        """The members of list ``wanted`` for ``member_table`` rows.

        None when the list does not exist and may not be created (a dry run).

        Raises:
            MetadataError: as :func:`find_list`.
        """
        ident = (self._collation.fold(wanted), member_table)
        with self._lock:
            if ident not in self._found:
                found = find_list(self._client, wanted, member_table)
                if found is None and self._create:
                    found = create_list(self._client, wanted, member_table, self._collation)
                self._found[ident] = (
                    None if found is None else ListMembers(self._client, found, self._threads())
                )
            return self._found[ident]


class StreamLists:
    """The marketing lists one stream fills: a fixed list and/or one named per record."""

    def __init__(
        self,
        lists: MarketingLists,
        member_table: str,
        fixed: str | None,
        *,
        sync: bool,
        report: ListCounts,
    ) -> None:
        """Find (or create) the fixed list now, so a wrong list fails before any write.

        Args:
            lists: The run's registry.
            member_table: The stream's table (account, contact or lead).
            fixed: ``marketing_list``, if set.
            sync: ``marketing_list_mode: sync``.
            report: Where the counts go, by list name.

        Raises:
            MetadataError: as :func:`find_list`.
        """
        self._lists = lists
        self._table = member_table
        self._fixed = fixed
        self._sync = sync
        self._report = report
        self._seen: dict[str, set[str]] = {}
        if fixed:
            lists.get(fixed, member_table)

    def join(
        self, ids: t.Mapping[int, Sequence[str]], named: t.Mapping[int, Sequence[str]]
    ) -> dict[int, WebApiError]:
        """Make the rows of landed records members; return the records that failed to join.

        Args:
            ids: Landed record -> the primary ids of the rows it wrote.
            named: Record -> the lists its ``marketing_list_field`` names.
        """
        failed: dict[int, WebApiError] = {}
        wanted: dict[str, dict[str, list[int]]] = {}
        for index, guids in ids.items():
            names = [self._fixed] if self._fixed else []
            names += named.get(index, [])
            for name in names:
                members = wanted.setdefault(name, {})
                for guid in guids:
                    members.setdefault(guid.lower(), []).append(index)
        for name, members in wanted.items():
            try:
                found = self._lists.get(name, self._table)
            except MetadataError as exc:
                problem = WebApiError(400, None, str(exc))
                failed.update((i, problem) for indexes in members.values() for i in indexes)
                continue
            self._seen.setdefault(name, set()).update(members)
            if found is None:  # dry run, the list does not exist yet
                self._report(name, added=len(members))
                continue
            outcome = found.add(members)
            errors = outcome.failed or {}
            for guid, error in errors.items():
                failed.update((i, error) for i in members[guid])
            self._report(name, added=outcome.done, already=outcome.already, rejected=len(errors))
        return failed

    @property
    def syncs(self) -> bool:
        """Whether members not sent leave the lists after a complete run."""
        return self._sync

    def preview(
        self, ids: t.Mapping[int, Sequence[str]], named: t.Mapping[int, Sequence[str]]
    ) -> None:
        """A dry run: count who would join each list, reading members, sending nothing.

        Args:
            ids: Record -> the primary ids of the rows it names that exist (empty: a new row).
            named: Record -> the lists its ``marketing_list_field`` names.
        """
        for name, indexes in self._by_list(ids, named).items():
            found = self._lists.get(name, self._table)
            members = found.members() if found is not None else set()
            present = {i for i in indexes if any(g.lower() in members for g in ids[i])}
            self._seen.setdefault(name, set()).update(g.lower() for i in indexes for g in ids[i])
            self._report(name, added=len(indexes) - len(present), already=len(present))

    def _by_list(
        self, ids: t.Mapping[int, Sequence[str]], named: t.Mapping[int, Sequence[str]]
    ) -> dict[str, list[int]]:
        """List name -> the records that join it."""
        lists: dict[str, list[int]] = {}
        for index in ids:
            for name in ([self._fixed] if self._fixed else []) + list(named.get(index, [])):
                lists.setdefault(name, []).append(index)
        return lists

    def sync(self, *, dry_run: bool = False) -> None:
        """Remove, from every list this stream filled, the members it did not send.

        Call it only when :attr:`syncs` and the run was complete; a dry run only counts them.

        Raises:
            MetadataError: as :func:`find_list`.
        """
        names = set(self._seen) | ({self._fixed} if self._fixed else set())
        for name in sorted(names):
            found = self._lists.get(name, self._table)
            if found is None:
                continue
            keep = self._seen.get(name, set())
            if dry_run:
                self._report(name, removed=len(found.members() - keep))
                continue
            outcome = found.remove_absent(keep)
            self._report(name, removed=outcome.done, rejected=len(outcome.failed or {}))
