"""Marketing-list actions: AddMemberList, RemoveMemberList, AddListMembersList.

Shapes from the Web API Action Reference (Microsoft Learn, previous versions):

- AddMemberList action (bound to ``list``, parameter ``EntityId``):
  https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt607495(v=crm.8)
- AddMemberListResponse ComplexType (``Id``: "The ID of the resulting list member"):
  https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt592997(v=crm.8)
- AddListMembersList action (unbound; ``List`` list EntityType, ``Members``
  Collection(crmbaseentity); "does not return a value"):
  https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt607641(v=crm.8)
- RemoveMemberListRequest (``ListId``, ``EntityId``; a Web API action in environments created
  with Dynamics 365 apps):
  https://learn.microsoft.com/dotnet/api/microsoft.crm.sdk.messages.removememberlistrequest

- ``POST lists(<id>)/Microsoft.Dynamics.CRM.AddMemberList`` ``{"EntityId": "<guid>"}`` → 200
  ``{"@odata.context": "<root>/$metadata#Microsoft.Dynamics.CRM.AddMemberListResponse",
  "Id": "<listmemberid>"}``.
- ``POST lists(<id>)/Microsoft.Dynamics.CRM.RemoveMemberList`` ``{"EntityId": "<guid>"}`` → 204.
- ``POST AddListMembersList`` ``{"List": {"@odata.type": "Microsoft.Dynamics.CRM.list",
  "listid": "<guid>"}, "Members": [{"@odata.type": "Microsoft.Dynamics.CRM.contact",
  "contactid": "<guid>"}, …]}`` → 204; all members or none are added.

No limit on the number of members per AddListMembersList call is documented, so none is
enforced (service protection and the 2-minute operation limit still apply). The member's table
of AddMemberList / RemoveMemberList is the list's ``createdfromcode``; an ``EntityId`` that is
no row of it but a row of another member table answers the wrong-member-type error, otherwise
404. Errors: :mod:`~dataverse_emulator.state.lists`.

Unsupported: RemoveListMembersList (documented for the SDK only), AddMembersBatchList,
CopyMembersList, CopyDynamicListToStatic, QualifyMemberList, dynamic-list queries.
"""

from __future__ import annotations

import typing as t

import orjson

from dataverse_emulator.state import lists
from dataverse_emulator.state.error_catalogue import (
    NAMESPACE,
    list_member_needs_id,
    parameter_missing,
    parameters_invalid_json,
    parameters_not_object,
    segment_not_found,
    unresolved_type,
    untyped_resource,
    wrong_member_type,
)
from dataverse_emulator.wire.call import Call, empty_response, json_response

if t.TYPE_CHECKING:
    from dataverse_emulator.http import Response
    from dataverse_emulator.state.catalog import Table

BOUND = frozenset({"AddMemberList", "RemoveMemberList"})
UNBOUND = "AddListMembersList"
_TYPE = "@odata.type"


def bound(call: Call, table: Table, list_id: str, message: str, segment: str) -> Response:
    """Run ``POST lists(<id>)/Microsoft.Dynamics.CRM.<AddMemberList|RemoveMemberList>``.

    Raises:
        DataverseFault: 404 on another table, a missing list or member; 400 a missing or
            malformed ``EntityId``; the membership errors of :mod:`~.state.lists`.
    """
    if table.logical_name != lists.LIST:
        raise segment_not_found(segment)
    body = _object(call)
    entity_id = body.get("EntityId")
    if not isinstance(entity_id, str):
        raise parameter_missing("EntityId", "Edm.Guid")
    store = call.env.store
    if message == "RemoveMemberList":
        lists.remove_member(store, list_id, entity_id.lower(), call.caller)
        return empty_response(204)
    member_table = _member_table(call, list_id, entity_id.lower())
    member_id = lists.add_member(store, list_id, member_table, entity_id.lower(), call.caller)
    context = f"{call.root}/$metadata#Microsoft.Dynamics.CRM.AddMemberListResponse"
    return json_response(200, {"@odata.context": context, "Id": member_id})


def add_list_members(call: Call) -> Response:
    """Run ``POST AddListMembersList``; 204.

    Raises:
        DataverseFault: 400 a missing ``List`` / ``Members`` or a member without a resolvable
            ``@odata.type`` or id; the first failing member's error (nothing is written).
    """
    body = _object(call)
    list_ref = body.get("List")
    list_id = list_ref.get("listid") if isinstance(list_ref, dict) else None
    if not isinstance(list_id, str):
        raise parameter_missing("List", "Microsoft.Dynamics.CRM.list")
    raw_members = body.get("Members")
    if not isinstance(raw_members, list):
        raise parameter_missing("Members", "Collection(Microsoft.Dynamics.CRM.crmbaseentity)")
    members = [_member(call, raw) for raw in raw_members]
    call.request.context["operation_count"] = max(len(members), 1)
    lists.add_members(call.env.store, list_id.lower(), members, call.caller)
    return empty_response(204)


def _object(call: Call) -> dict[str, t.Any]:
    try:
        body = orjson.loads(call.request.body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise parameters_invalid_json(exc) from None
    if not isinstance(body, dict):
        raise parameters_not_object()
    return body


def _member(call: Call, raw: t.Any) -> tuple[str, str]:
    """``(table, id)`` of one ``Members`` entry: its ``@odata.type`` and that table's primary id."""
    type_name = raw.get(_TYPE) if isinstance(raw, dict) else None
    if not isinstance(type_name, str):
        raise untyped_resource()
    logical = type_name.removeprefix("#").removeprefix(NAMESPACE)
    catalog = call.env.catalog
    if not type_name.removeprefix("#").startswith(NAMESPACE) or not catalog.has_table(logical):
        raise unresolved_type(type_name)
    table = catalog.table(logical)
    member_id = raw.get(table.primary_id)
    if not isinstance(member_id, str):
        raise list_member_needs_id(table)

    return logical, member_id.lower()


def _member_table(call: Call, list_id: str, entity_id: str) -> str:
    """The table AddMemberList reads ``EntityId`` from: the list's ``createdfromcode``."""
    store = call.env.store
    row = store.retrieve(lists.LIST, list_id)
    expected = lists.MEMBER_TYPES.get(row.get("createdfromcode") or 0)
    if expected is None:
        raise wrong_member_type(call.env.catalog.table("contact"), None)
    if store.find(expected, entity_id) is None:
        for other in lists.MEMBER_TYPES.values():
            if other != expected and store.find(other, entity_id) is not None:
                raise wrong_member_type(call.env.catalog.table(other), expected)
    return expected
