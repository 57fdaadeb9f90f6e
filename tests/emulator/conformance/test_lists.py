"""Conformance: marketing lists, AddMemberList, AddListMembersList, RemoveMemberList.

Sources (Microsoft Learn), quoted per test:

- LIST_REF: Marketing List (List) table/entity reference,
  https://learn.microsoft.com/dynamics365/developer/reference/entities/list
- ADD_MEMBER: AddMemberList Action,
  https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt607495(v=crm.8)
- ADD_MEMBER_RESPONSE: AddMemberListResponse ComplexType,
  https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt592997(v=crm.8)
- ADD_MEMBERS: AddListMembersList Action,
  https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt607641(v=crm.8)
- ADD_MEMBER_SDK: AddMemberListRequest Class,
  https://learn.microsoft.com/dotnet/api/microsoft.crm.sdk.messages.addmemberlistrequest
- PRIVILEGES: AddMemberList message privileges,
  https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/gg334794(v=crm.8)
- REMOVE_MEMBER: RemoveMemberListRequest Class,
  https://learn.microsoft.com/dotnet/api/microsoft.crm.sdk.messages.removememberlistrequest
"""

from __future__ import annotations

import pytest
from conformance_support import GUID, JSON_CONTENT_TYPE

CONTACT = "Microsoft.Dynamics.CRM.contact"
MISSING = "00000000-0000-0000-0000-0000000000ab"


def new_list(dv, code=2, **extra):
    return dv.create("lists", {"listname": "Newsletter", "createdfromcode": code, **extra})


def add_member(dv, list_id, entity_id):
    return dv.post(
        f"lists({list_id})/Microsoft.Dynamics.CRM.AddMemberList", json={"EntityId": entity_id}
    )


def add_members(dv, list_id, *contact_ids, odata_type=CONTACT, key="contactid"):
    body = {
        "List": {"@odata.type": "Microsoft.Dynamics.CRM.list", "listid": list_id},
        "Members": [{"@odata.type": odata_type, key: i} for i in contact_ids],
    }
    return dv.post("AddListMembersList", json=body)


def member_count(dv, list_id):
    return dv.get(f"lists({list_id})?$select=membercount").json()["membercount"]


def listmembers(dv, list_id):
    rows = dv.rows("listmembers", f"$filter=_listid_value eq {list_id}&$select=_entityid_value")
    return [row["_entityid_value"] for row in rows]


def test_add_member_list_answers_the_listmember_id(dv):
    """ADD_MEMBER: "Adds a member to a list (marketing list)", bound to the list EntityType,
    parameter EntityId (Edm.Guid); ADD_MEMBER_RESPONSE: returns AddMemberListResponse whose
    ``Id`` is "The ID of the resulting list member"; LIST_REF: ``membercount``."""
    list_id = new_list(dv)
    contact_id = dv.create("contacts", {"lastname": "Ada"})
    response = add_member(dv, list_id, contact_id)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    body = response.json()
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#Microsoft.Dynamics.CRM.AddMemberListResponse"
    )
    assert set(body) == {"@odata.context", "Id"}
    assert GUID.match(body["Id"])
    [row] = dv.rows("listmembers", f"$filter=_listid_value eq {list_id}")
    assert row["listmemberid"] == body["Id"]
    assert row["_entityid_value"] == contact_id
    assert member_count(dv, list_id) == 1
    again = add_member(dv, list_id, contact_id)
    assert again.json()["Id"] == body["Id"]  # already a member: no second row
    assert member_count(dv, list_id) == 1


def test_add_list_members_list_is_204_and_skips_existing_members(dv):
    """ADD_MEMBERS: unbound, parameters ``List`` (list EntityType) and ``Members``
    (Collection(crmbaseentity)), "does not return a value" (204); members already on the list
    are not added twice."""
    list_id = new_list(dv)
    ids = [dv.create("contacts", {"lastname": name}) for name in ("A", "B", "C")]
    assert add_member(dv, list_id, ids[0]).status_code == 200
    response = add_members(dv, list_id, *ids)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert sorted(listmembers(dv, list_id)) == sorted(ids)
    assert member_count(dv, list_id) == 3


def test_members_read_through_the_navigation_property(dv):
    """LIST_REF: ``listcontact_association`` is a collection-valued navigation property of
    list (many-to-many, intersect listmember); $select / $filter / $top / $expand apply."""
    list_id = new_list(dv)
    ids = [dv.create("contacts", {"lastname": name}) for name in ("Ann", "Bob", "Cy")]
    assert add_members(dv, list_id, *ids).status_code == 204
    rows = dv.rows(
        f"lists({list_id})/listcontact_association",
        "$select=lastname&$filter=lastname ne 'Bob'&$orderby=lastname desc&$top=1",
    )
    assert [(r["lastname"], r["contactid"]) for r in rows] == [("Cy", ids[2])]
    response = dv.get(
        f"lists({list_id})?$select=listname&$expand=listcontact_association($select=lastname)"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.context"].endswith(
        "#lists(listname,listcontact_association(lastname))/$entity"
    )
    assert sorted(r["lastname"] for r in body["listcontact_association"]) == ["Ann", "Bob", "Cy"]
    [back] = dv.rows(f"contacts({ids[0]})/listcontact_association", "$select=listname")
    assert back["listid"] == list_id


def test_remove_member_list_is_204(dv):
    """REMOVE_MEMBER: "Contains the data that is needed to remove a member from a list" with
    ListId and EntityId; no response properties (204). A record that is not a member: nothing
    to remove, 204."""
    list_id = new_list(dv)
    first, second = (dv.create("contacts", {"lastname": n}) for n in ("A", "B"))
    assert add_members(dv, list_id, first, second).status_code == 204
    url = f"lists({list_id})/Microsoft.Dynamics.CRM.RemoveMemberList"
    response = dv.post(url, json={"EntityId": first})
    assert response.status_code == 204, response.text
    assert listmembers(dv, list_id) == [second]
    assert member_count(dv, list_id) == 1
    assert dv.post(url, json={"EntityId": first}).status_code == 204


def test_member_of_another_type_is_refused(dv):
    """ADD_MEMBER_SDK: "A member that is added to the list must be of the same type: Account,
    Contact, or Lead" (createdfromcode 1, 2, 4, LIST_REF); no code is documented: 400
    ``0x80040203`` (InvalidArgument) and nothing is added."""
    list_id = new_list(dv, code=1)
    contact_id = dv.create("contacts", {"lastname": "Wrong"})
    error = dv.assert_error(add_members(dv, list_id, contact_id), 400, "0x80040203")
    assert "createdfromcode" in error["message"]
    dv.assert_error(add_member(dv, list_id, contact_id), 400, "0x80040203")
    assert listmembers(dv, list_id) == []


@pytest.mark.parametrize(
    ("extra", "word"), [({"lockstatus": True}, "locked"), ({"type": True}, "dynamic")]
)
def test_locked_and_dynamic_lists_refuse_members(dv, extra, word):
    """LIST_REF: ``lockstatus`` (locked: no members can be added) and ``type`` (true Dynamic:
    members come from the list's query); no code is documented: 400 ``0x80040203``."""
    list_id = new_list(dv, **extra)
    contact_id = dv.create("contacts", {"lastname": "X"})
    for response in (add_member(dv, list_id, contact_id), add_members(dv, list_id, contact_id)):
        error = dv.assert_error(response, 400, "0x80040203")
        assert word in error["message"]
    assert listmembers(dv, list_id) == []


def test_missing_list_or_member_is_404(dv):
    """A list or member that does not exist: 404 ``0x80040217`` "<table> With Id = <guid>
    Does Not Exist" (the Web API's record-not-found answer)."""
    list_id = new_list(dv)
    dv.assert_error(
        add_member(dv, MISSING, list_id),
        404,
        "0x80040217",
        f"list With Id = {MISSING} Does Not Exist",
    )
    dv.assert_error(
        add_member(dv, list_id, MISSING),
        404,
        "0x80040217",
        f"contact With Id = {MISSING} Does Not Exist",
    )
    dv.assert_error(add_members(dv, list_id, MISSING), 404, "0x80040217")


def test_missing_privilege_is_403(dv):
    """PRIVILEGES: AddMemberList needs prvAppendToList and prvAppend<member table> besides read;
    a missing privilege is 403 ``0x80040220`` naming it."""
    list_id = new_list(dv)
    contact_id = dv.create("contacts", {"lastname": "X"})
    role = {"tables": {"*": ["read"], "list": ["read", "appendto"]}}
    dv.server.admin.set_role(dv.server.target_config["client_id"], role)
    error = dv.assert_error(add_member(dv, list_id, contact_id), 403, "0x80040220")
    assert "prvAppendContact" in error["message"]
    error = dv.assert_error(add_members(dv, list_id, contact_id), 403, "0x80040220")
    assert "prvAppendContact" in error["message"]


def test_member_type_and_list_type_are_create_only(dv):
    """LIST_REF: createdfromcode "can't be changed after the marketing list is created"
    (IsValidForUpdate False), like ``type``: create accepts them, update refuses them."""
    list_id = new_list(dv, code=4, type=False)
    stored = dv.get(f"lists({list_id})?$select=createdfromcode,type").json()
    assert (stored["createdfromcode"], stored["type"]) == (4, False)
    for change in ({"createdfromcode": 2}, {"type": True}):
        response = dv.patch(f"lists({list_id})", json=change, headers={"If-Match": "*"})
        dv.assert_error(response, 400, "0x80040203")


def test_add_list_members_list_counts_as_bulk(dv):
    """The emulator's cost and fault model (docs/emulator-faults.md): AddListMembersList is a
    ``bulk`` operation of one record per member; AddMemberList is ``single``."""
    list_id = new_list(dv)
    ids = [dv.create("contacts", {"lastname": f"N{i}"}) for i in range(3)]
    assert add_members(dv, list_id, *ids).status_code == 204
    assert add_member(dv, list_id, ids[0]).status_code == 200
    counters = dv.server.admin.counters()
    assert counters["requests"]["bulk"] == {"204": 1}
    assert counters["operations"]["bulk"] == 3
    assert counters["requests"]["single"]["200"] == 1
