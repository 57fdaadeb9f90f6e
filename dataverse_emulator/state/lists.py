"""Marketing lists: list membership as ``listmember`` rows, ``membercount`` kept current.

Sources (Microsoft Learn):

- `Marketing List (List) table/entity reference
  <https://learn.microsoft.com/dynamics365/developer/reference/entities/list>`_:
  ``createdfromcode`` (1 Account, 2 Contact, 4 Lead: "Each list can have only one member type
  and this value can't be changed after the marketing list is created"), ``type`` (false
  Static, true Dynamic: a dynamic list's members come from its ``query``), ``lockstatus``,
  ``membercount``; the messages AddMemberList, AddListMembersList, RemoveMemberList,
  Associate and Disassociate.
- `AddMemberListRequest Class
  <https://learn.microsoft.com/dotnet/api/microsoft.crm.sdk.messages.addmemberlistrequest>`_:
  "A member that is added to the list must be of the same type: Account, Contact, or Lead";
  the caller needs privileges on the list and on the member's table, and access to both
  records. `AddMemberList message privileges
  <https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/gg334794(v=crm.8)>`_:
  prvReadList, prvAppendToList, prvRead<Member>, prvAppend<Member> (AddListMembersList needs
  the same, gg309603).
- `RemoveMemberListRequest Class
  <https://learn.microsoft.com/dotnet/api/microsoft.crm.sdk.messages.removememberlistrequest>`_:
  privileges on the list and access to the list and the member.

Not documented, modelled as follows (each a choice, named so a real environment can correct it):

- Adding a member already on the list writes nothing; AddMemberList answers the existing
  ``listmemberid`` and AddListMembersList skips it.
- Removing a record that is not a member changes nothing and succeeds.
- Wrong member type, locked list and dynamic list have no documented error code; they answer
  400 with ``0x80040203`` (InvalidArgument, "Invalid argument." in the `Web service error
  codes <https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes>`_),
  the closest documented code, and a message that names the cause.
- ``membercount`` is null on a new list until its membership first changes.
"""

from __future__ import annotations

import typing as t

from dataverse_emulator.state.error_catalogue import (
    list_is_dynamic,
    list_is_locked,
    wrong_member_type,
)
from dataverse_emulator.state.privileges import require
from dataverse_emulator.state.store import TARGET

if t.TYPE_CHECKING:
    from dataverse_emulator.state.catalog import ManyToMany, Table
    from dataverse_emulator.state.privileges import Caller
    from dataverse_emulator.state.store import RecordStore, Row

LIST = "list"
LISTMEMBER = "listmember"
MEMBER_TYPES: dict[int, str] = {1: "account", 2: "contact", 4: "lead"}
"""``createdfromcode`` option -> the member table it admits."""


def is_list_relationship(relationship: ManyToMany) -> bool:
    """Whether a many-to-many relationship is a list membership (intersect ``listmember``)."""
    return relationship.intersect_entity == LISTMEMBER


def add_member(
    store: RecordStore, list_id: str, member_table: str, member_id: str, caller: Caller | None
) -> str:
    """Add one record to a static, unlocked list (AddMemberList, Associate).

    Returns:
        The ``listmemberid``: a new one, or the existing one when already a member.

    Raises:
        DataverseFault: 404 missing list or member; 403 a missing privilege; 400
            ``0x80040203`` dynamic list, locked list, member of the wrong type.
    """
    with store.transaction():
        return _add(store, _open_list(store, list_id, member_table, caller), member_id, caller)


def add_members(
    store: RecordStore,
    list_id: str,
    members: t.Sequence[tuple[str, str]],
    caller: Caller | None,
) -> int:
    """Add ``(table, id)`` members in one transaction (AddListMembersList); skip existing ones.

    Returns:
        How many members were new.

    Raises:
        DataverseFault: as :func:`add_member`, for the first failing member; nothing is written.
    """
    added = 0
    with store.transaction():
        checked: dict[str, Row] = {}
        for member_table, member_id in members:
            if member_table not in checked:
                checked[member_table] = _open_list(store, list_id, member_table, caller)
            before = store.count(LISTMEMBER)
            _add(store, checked[member_table], member_id, caller)
            added += store.count(LISTMEMBER) - before
    return added


def remove_member(store: RecordStore, list_id: str, member_id: str, caller: Caller | None) -> None:
    """Remove a record from a list (RemoveMemberList, Disassociate); a non-member is a no-op.

    ``member_id`` is the member record's id; the ``listmemberid`` of the membership is
    accepted too (the SDK's RemoveMemberListRequest.EntityId page names ListMemberId).

    Raises:
        DataverseFault: 404 missing list; 403 a missing privilege; 400 dynamic or locked list.
    """
    with store.transaction():
        row = _list_row(store, list_id, caller)
        _require_static_unlocked(store.catalog.table(LIST), row)
        for member in _members(store, list_id):
            if member["entityid"] == member_id or member["listmemberid"] == member_id:
                require(caller, store.catalog.table(member["entitytype"]), "read")
                store.delete_platform_row(LISTMEMBER, member["listmemberid"])
                _recount(store, list_id)
                return


def forget(store: RecordStore, table: str, record_id: str) -> None:
    """Drop the memberships of a deleted list or member, keeping ``membercount`` current (§4.11).

    Called by :attr:`RecordStore.on_delete` inside the delete's transaction.
    """
    if table not in {LIST, *MEMBER_TYPES.values()}:
        return
    changed: set[str] = set()
    for member in store.rows(LISTMEMBER):
        if record_id in {member.get("listid"), member.get("entityid")}:
            store.delete_platform_row(LISTMEMBER, member["listmemberid"])
            if member.get("listid") != record_id:
                changed.add(member["listid"])
    for list_id in changed:
        _recount(store, list_id)


def member_ids(store: RecordStore, list_id: str, member_table: str) -> list[str]:
    """Ids of a list's members of ``member_table``, in the order they were added."""
    return [m["entityid"] for m in _members(store, list_id) if m["entitytype"] == member_table]


def lists_of(store: RecordStore, member_id: str) -> list[str]:
    """Ids of the lists a record is a member of."""
    return [m["listid"] for m in store.rows(LISTMEMBER) if m.get("entityid") == member_id]


def _members(store: RecordStore, list_id: str) -> list[Row]:
    return [m for m in store.rows(LISTMEMBER) if m.get("listid") == list_id]


def _list_row(store: RecordStore, list_id: str, caller: Caller | None) -> Row:
    table = store.catalog.table(LIST)
    require(caller, table, "read")
    row = store.retrieve(LIST, list_id)
    require(caller, table, "appendto")
    return row


def _open_list(store: RecordStore, list_id: str, member_table: str, caller: Caller | None) -> Row:
    """The list row, once the caller may add ``member_table`` rows to it and the list admits."""
    row = _list_row(store, list_id, caller)
    list_table = store.catalog.table(LIST)
    member = store.catalog.table(member_table)
    require(caller, member, "read")
    require(caller, member, "append")
    _require_static_unlocked(list_table, row)
    expected = MEMBER_TYPES.get(row.get("createdfromcode") or 0)
    if member_table != expected:
        raise wrong_member_type(member, expected)
    return row


def _require_static_unlocked(table: Table, row: Row) -> None:
    if row.get("type"):
        raise list_is_dynamic(table, row[table.primary_id])
    if row.get("lockstatus"):
        raise list_is_locked(table, row[table.primary_id])


def _add(store: RecordStore, list_row: Row, member_id: str, caller: Caller | None) -> str:
    list_id = list_row["listid"]
    member_table = MEMBER_TYPES[list_row["createdfromcode"]]
    member = store.retrieve(member_table, member_id)
    member_id = member[store.catalog.table(member_table).primary_id]
    for existing in _members(store, list_id):
        if existing["entityid"] == member_id:
            found: str = existing["listmemberid"]
            return found
    row = store.insert_platform_row(
        LISTMEMBER,
        {
            "listid": list_id,
            "listid" + TARGET: LIST,
            "entityid": member_id,
            "entityid" + TARGET: member_table,
            "entitytype": member_table,
            "entityidtypecode": member_table,
        },
        caller=caller,
    )
    _recount(store, list_id)
    added: str = row["listmemberid"]
    return added


def _recount(store: RecordStore, list_id: str) -> None:
    store.update_platform_row(LIST, list_id, {"membercount": len(_members(store, list_id))})
