"""Conformance: ``$ref`` associate / disassociate, many-to-many navigation, ``$batch``.

Source (Microsoft Learn), quoted per test: ASSOCIATE, "Associate and disassociate table rows
using the Web API",
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
(and its previous version, "Associate and disassociate entities using the Web API",
https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt607875(v=crm.8)).
"""

from __future__ import annotations

import json

from conformance_support import new_boundary


def ref(dv, path, entity_set, record_id, *, absolute=True):
    target = f"{dv.api_url}/{entity_set}({record_id})" if absolute else f"{entity_set}({record_id})"
    return dv.post(f"{path}/$ref", json={"@odata.id": target})


def lead_ids(dv, contact_id):
    return [r["leadid"] for r in dv.rows(f"contacts({contact_id})/contactleads_association")]


def test_associate_many_to_many_with_ref(dv):
    """ASSOCIATE: "POST …/<collection-valued navigation property>/$ref" with
    ``{"@odata.id": "<url of the row>"}`` → "HTTP/1.1 204 NoContent"; the rows read back
    through the navigation property from either side and with ``$expand``."""
    contact_id = dv.create("contacts", {"lastname": "Ann"})
    lead_id = dv.create("leads", {"lastname": "Lee"})
    response = ref(dv, f"contacts({contact_id})/contactleads_association", "leads", lead_id)
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert response.headers["OData-Version"] == "4.0"
    assert lead_ids(dv, contact_id) == [lead_id]
    [back] = dv.rows(f"leads({lead_id})/contactleads_association", "$select=lastname")
    assert (back["contactid"], back["lastname"]) == (contact_id, "Ann")
    expanded = dv.get(
        f"leads({lead_id})?$select=lastname&$expand=contactleads_association($select=lastname)"
    ).json()
    assert [c["contactid"] for c in expanded["contactleads_association"]] == [contact_id]
    snapshot = dv.server.admin.snapshot()
    assert snapshot["contactleads"] == [{"contactid": contact_id, "leadid": lead_id}]


def test_associating_an_existing_pair_is_refused(dv):
    """An N:N pair exists once: associating it again answers 412 ``0x80040237`` "Cannot insert
    duplicate key." (DuplicateRecord of the Web service error codes page; the status is the
    one the Web API gives that code)."""
    contact_id = dv.create("contacts", {"lastname": "Ann"})
    lead_id = dv.create("leads", {"lastname": "Lee"})
    path = f"contacts({contact_id})/contactleads_association"
    assert ref(dv, path, "leads", lead_id).status_code == 204
    dv.assert_error(ref(dv, path, "leads", lead_id, absolute=False), 412, "0x80040237")
    assert lead_ids(dv, contact_id) == [lead_id]


def test_disassociate_by_key_and_by_id_parameter(dv):
    """ASSOCIATE: "DELETE …/<navigation property>(<related id>)/$ref" or
    "DELETE …/<navigation property>/$ref?$id=<url of the row>" → 204."""
    contact_id = dv.create("contacts", {"lastname": "Ann"})
    leads = [dv.create("leads", {"lastname": n}) for n in ("L1", "L2")]
    path = f"contacts({contact_id})/contactleads_association"
    for lead_id in leads:
        assert ref(dv, path, "leads", lead_id).status_code == 204
    response = dv.delete(f"{path}({leads[0]})/$ref")
    assert response.status_code == 204, response.text
    response = dv.delete(f"{path}/$ref?$id={dv.api_url}/leads({leads[1]})")
    assert response.status_code == 204, response.text
    assert lead_ids(dv, contact_id) == []


def test_ref_errors(dv):
    """An unknown navigation property is 400 (as in ``$select``), a missing related row 404,
    a body without ``@odata.id`` 400."""
    contact_id = dv.create("contacts", {"lastname": "Ann"})
    missing = "00000000-0000-0000-0000-0000000000cd"
    response = ref(dv, f"contacts({contact_id})/nosuch_association", "leads", missing)
    dv.assert_error(response, 400, "0x0")
    response = ref(dv, f"contacts({contact_id})/contactleads_association", "leads", missing)
    dv.assert_error(response, 404, "0x80040217", f"lead With Id = {missing} Does Not Exist")
    response = dv.post(f"contacts({contact_id})/contactleads_association/$ref", json={})
    dv.assert_error(response, 400)


def test_list_association_is_list_membership(dv):
    """ASSOCIATE (N:N ``listcontact_association``, intersect ``listmember``): associating a
    contact with a list adds a list member like AddMemberList, ``membercount`` included;
    disassociating removes it."""
    list_id = dv.create("lists", {"listname": "News", "createdfromcode": 2})
    contact_id = dv.create("contacts", {"lastname": "Ann"})
    path = f"lists({list_id})/listcontact_association"
    assert ref(dv, path, "contacts", contact_id).status_code == 204
    assert ref(dv, path, "contacts", contact_id).status_code == 204  # already a member
    [member] = dv.rows("listmembers", f"$filter=_listid_value eq {list_id}")
    assert member["_entityid_value"] == contact_id
    assert dv.get(f"lists({list_id})?$select=membercount").json()["membercount"] == 1
    assert dv.delete(f"{path}({contact_id})/$ref").status_code == 204
    assert dv.rows("listmembers", f"$filter=_listid_value eq {list_id}") == []
    assert dv.get(f"lists({list_id})?$select=membercount").json()["membercount"] == 0


def test_one_to_many_ref_sets_the_lookup(dv):
    """ASSOCIATE: "This is a 1:N relationship but you can perform the same operation for an N:N
    relationship": ``accounts(id)/contact_customer_accounts/$ref`` binds the contact."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    contact_id = dv.create("contacts", {"lastname": "Ann"})
    path = f"accounts({account_id})/contact_customer_accounts"
    assert ref(dv, path, "contacts", contact_id).status_code == 204
    row = dv.get(f"contacts({contact_id})?$select=_parentcustomerid_value").json()
    assert row["_parentcustomerid_value"] == account_id
    assert dv.delete(f"{path}({contact_id})/$ref").status_code == 204
    row = dv.get(f"contacts({contact_id})?$select=_parentcustomerid_value").json()
    assert row["_parentcustomerid_value"] is None


def test_custom_table_many_to_many(dv):
    """docs/emulator-entities.md: a custom table's ``many_to_many`` relationship
    (``new_membership_account``) associates with ``$ref`` and reads back from both sides."""
    membership = dv.create("new_memberships", {"new_name": "Gold", "new_programcode": "G"})
    account_id = dv.create("accounts", {"name": "Partner"})
    path = f"new_memberships({membership})/new_membership_account"
    assert ref(dv, path, "accounts", account_id).status_code == 204
    [back] = dv.rows(f"accounts({account_id})/new_membership_account", "$select=new_name")
    assert (back["new_membershipid"], back["new_name"]) == (membership, "Gold")


def _part(method, url, body=None, content_id=None):
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += ["", "" if body is None else json.dumps(body)]
    return "\r\n".join(lines)


def _batch(dv, parts):
    batch, changes = new_boundary("batch"), new_boundary("changeset")
    inner = "".join(f"--{changes}\r\n{p}\r\n" for p in parts) + f"--{changes}--\r\n"
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changes}\r\n\r\n{inner}"
        f"--{batch}--\r\n"
    )
    return dv.batch(body, batch)


def test_ref_inside_a_batch_change_set(dv):
    """ASSOCIATE inside ``$batch``: a change set creates a lead (Content-ID 1) and associates it
    with ``{"@odata.id": "$1"}``; a failing change set rolls the association back."""
    contact_id = dv.create("contacts", {"lastname": "Ann"})
    path = f"/api/data/v9.2/contacts({contact_id})/contactleads_association/$ref"
    response = _batch(
        dv,
        [
            _part("POST", "/api/data/v9.2/leads", {"lastname": "New"}, content_id=1),
            _part("POST", path, {"@odata.id": "$1"}, content_id=2),
        ],
    )
    assert response.status_code == 200, response.text
    parts = dv.parts(response)
    assert [p.status for p in parts] == [204, 204]
    [lead_id] = lead_ids(dv, contact_id)
    other = dv.create("leads", {"lastname": "Other"})
    response = _batch(
        dv,
        [
            _part("POST", path, {"@odata.id": f"leads({other})"}, content_id=1),
            _part("POST", path, {"@odata.id": f"leads({lead_id})"}, content_id=2),
        ],
    )
    [failed] = dv.parts(response)
    dv.assert_error(failed, 412, "0x80040237")
    assert lead_ids(dv, contact_id) == [lead_id]
