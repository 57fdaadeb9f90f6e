"""Conformance: state and status pairs, deactivation, deletes and their cascades (§4.10, §4.11).

Sources (Microsoft Learn), cited per test besides the § they are summarised in:

- UPDATE: Update and delete table rows using the Web API ("When you update statecode without
  specifying a statuscode, the default status value will be set by the system"),
  https://learn.microsoft.com/power-apps/developer/data-platform/webapi/update-delete-entities-using-web-api
- ERRCODES: Web service error codes (0x80048408 "State code is invalid or state code is valid
  but status code is invalid for a specified state code."),
  https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes
- CONTACT_REF: Contact table/entity reference (StateCode: IsValidForCreate False; the options
  and their DefaultStatus / State),
  https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/contact
- CASCADE: Configure table relationship cascading behavior,
  https://learn.microsoft.com/power-apps/developer/data-platform/configure-entity-relationship-cascading-behavior
"""

from __future__ import annotations

import re

import pytest

STATE = "?$select=statecode,statuscode"
INVALID_PAIR = "0x80048408"


def pair(dv, path):
    body = dv.get(path + STATE).json()
    return body["statecode"], body["statuscode"]


def invalid_pair(status, state, table, record_id):
    """§4.10 (ERRCODES, observed text): the message names the status, state and row."""
    return (
        f"{status} is not a valid status code for state code {state} on {table} "
        f"with Id {record_id}."
    )


def options(dv, column, cast):
    path = (
        f"EntityDefinitions(LogicalName='{column[0]}')/Attributes(LogicalName='{column[1]}')"
        f"/Microsoft.Dynamics.CRM.{cast}?$expand=OptionSet"
    )
    response = dv.get(path)
    assert response.status_code == 200, response.text
    return response.json()["OptionSet"]["Options"]


@pytest.mark.parametrize(
    ("table", "states", "statuses"),
    [
        ("contact", {0: 1, 1: 2}, {1: 0, 2: 1}),
        ("account", {0: 1, 1: 2}, {1: 0, 2: 1}),
        ("lead", {0: 1, 1: 3, 2: 4}, {1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}),
        ("list", {0: 0, 1: 1}, {0: 0, 1: 1}),
    ],
)
def test_state_model_in_metadata(dv, table, states, statuses):
    """§4.10 table (CONTACT_REF and the account, lead and list references): state options carry
    DefaultStatus, status options carry State."""
    state_options = options(dv, (table, "statecode"), "StateAttributeMetadata")
    assert {o["Value"]: o["DefaultStatus"] for o in state_options} == states
    status_options = options(dv, (table, "statuscode"), "StatusAttributeMetadata")
    assert {o["Value"]: o["State"] for o in status_options} == statuses


def test_create_starts_in_the_first_state_with_its_default_status(dv):
    """§4.10 (CONTACT_REF: StateCode IsValidForCreate False): a statecode in the body is not
    applied; the row is Active with the default status."""
    plain = dv.create("contacts", {"lastname": "Plain"})
    assert pair(dv, f"contacts({plain})") == (0, 1)
    ignored = dv.create("contacts", {"lastname": "Ignored", "statecode": 1})
    assert pair(dv, f"contacts({ignored})") == (0, 1)
    lead = dv.create("leads", {"lastname": "Lead", "statuscode": 2})
    assert pair(dv, f"leads({lead})") == (0, 2)


def test_create_with_an_inactive_pair_is_0x80048408(dv):
    """§4.10 (ERRCODES): POST with statecode 1 and statuscode 2 is refused, naming the Active
    state the row would start in; nothing is created."""
    response = dv.post("accounts", json={"name": "Gone", "statecode": 1, "statuscode": 2})
    error = dv.assert_error(response, 400, INVALID_PAIR)
    pattern = re.escape(invalid_pair(2, "AccountState.Active", "account", "ID")).replace(
        "ID", "[0-9a-f-]{36}"
    )
    assert re.fullmatch(pattern, error["message"]), error
    assert dv.rows("accounts", "$filter=name eq 'Gone'") == []


def test_create_then_patch_makes_a_row_inactive(dv):
    """§4.10 (UPDATE): the documented way to an inactive row is create, then PATCH the pair."""
    record_id = dv.create("contacts", {"lastname": "Later"})
    response = dv.patch(
        f"contacts({record_id})",
        json={"statecode": 1, "statuscode": 2},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 204, response.text
    assert pair(dv, f"contacts({record_id})") == (1, 2)


def test_patch_with_a_status_of_another_state_is_0x80048408(dv):
    """§4.10 (ERRCODES): the pair must agree; the row is left unchanged."""
    record_id = dv.create("contacts", {"lastname": "Mismatch"})
    response = dv.patch(f"contacts({record_id})", json={"statecode": 1, "statuscode": 1})
    dv.assert_error(
        response,
        400,
        INVALID_PAIR,
        invalid_pair(1, "ContactState.Inactive", "contact", record_id),
    )
    assert pair(dv, f"contacts({record_id})") == (0, 1)


def test_statuscode_alone_is_checked_against_the_current_state(dv):
    """§4.10: statuscode alone does not move the row to the status's state."""
    contact = dv.create("contacts", {"lastname": "Alone"})
    dv.assert_error(
        dv.patch(f"contacts({contact})", json={"statuscode": 2}),
        400,
        INVALID_PAIR,
        invalid_pair(2, "ContactState.Active", "contact", contact),
    )
    lead = dv.create("leads", {"lastname": "Lead"})
    assert dv.patch(f"leads({lead})", json={"statuscode": 2}).status_code == 204
    assert pair(dv, f"leads({lead})") == (0, 2)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"statecode": 2}, (2, 4)),
        ({"statecode": 2, "statuscode": 6}, (2, 6)),
        ({"statecode": 1}, (1, 3)),
        ({"statecode": 0}, (0, 1)),
    ],
)
def test_lead_states_by_patch(dv, body, expected):
    """§4.10 (UPDATE): "When you update statecode without specifying a statuscode, the default
    status value will be set by the system" (lead: Open 1, Qualified 3, Disqualified 4)."""
    lead = dv.create("leads", {"lastname": "Lead", "statuscode": 2})
    assert dv.patch(f"leads({lead})", json=body).status_code == 204
    assert pair(dv, f"leads({lead})") == expected


def test_deactivating_an_inactive_row_again_is_an_ordinary_update(dv):
    """§4.10, §4.11: the same pair again answers 204 and writes a new version."""
    record_id = dv.create("contacts", {"lastname": "Twice"})
    inactive = {"statecode": 1, "statuscode": 2}
    assert dv.patch(f"contacts({record_id})", json=inactive).status_code == 204
    first = dv.get(f"contacts({record_id})").json()["@odata.etag"]
    assert dv.patch(f"contacts({record_id})", json=inactive).status_code == 204
    assert pair(dv, f"contacts({record_id})") == (1, 2)
    assert dv.get(f"contacts({record_id})").json()["@odata.etag"] != first


def test_upsert_sets_the_pair_on_an_existing_row_and_refuses_it_on_create(dv):
    """§4.3, §4.10: an upsert that finds the row updates the state; one that creates starts
    Active, so an inactive pair is refused."""
    dv.create("accounts", {"name": "Keyed", "accountnumber": "K-1"})
    inactive = {"statecode": 1, "statuscode": 2}
    assert dv.patch("accounts(accountnumber='K-1')", json=inactive).status_code == 204
    assert pair(dv, "accounts(accountnumber='K-1')") == (1, 2)
    error = dv.assert_error(
        dv.patch("accounts(accountnumber='K-2')", json=inactive), 400, INVALID_PAIR
    )
    assert "AccountState.Active on account" in error["message"]
    assert dv.rows("accounts", "$filter=accountnumber eq 'K-2'") == []


def test_deactivating_or_deleting_a_missing_row_is_404(dv):
    """§4.11: by id 0x80040217, by an alternate key that matches nothing 0x80060891."""
    missing = "00000000-0000-0000-0000-0000000000ab"
    dv.assert_error(
        dv.patch(
            f"contacts({missing})",
            json={"statecode": 1, "statuscode": 2},
            headers={"If-Match": "*"},
        ),
        404,
        "0x80040217",
        f"contact With Id = {missing} Does Not Exist",
    )
    dv.assert_error(dv.delete(f"contacts({missing})"), 404, "0x80040217")
    dv.assert_error(
        dv.delete("accounts(accountnumber='nobody')"),
        404,
        "0x80060891",
        "A record with the specified key values does not exist in account entity",
    )


def test_deleting_an_account_cascades_and_removes_links(dv):
    """§4.11 (CASCADE): contact_customer_accounts Delete Cascade deletes the account's contacts;
    account_parent_account and lead_parent_account RemoveLink clear the lookups."""
    parent = dv.create("accounts", {"name": "Parent"})
    child = dv.create(
        "accounts", {"name": "Child", "parentaccountid@odata.bind": f"/accounts({parent})"}
    )
    contact = dv.create(
        "contacts",
        {"lastname": "Employee", "parentcustomerid_account@odata.bind": f"/accounts({parent})"},
    )
    lead = dv.create(
        "leads", {"lastname": "Prospect", "parentaccountid@odata.bind": f"/accounts({parent})"}
    )
    assert dv.delete(f"accounts({parent})").status_code == 204
    assert dv.get(f"contacts({contact})").status_code == 404
    assert (
        dv.get(f"accounts({child})?$select=_parentaccountid_value").json()["_parentaccountid_value"]
        is None
    )
    assert (
        dv.get(f"leads({lead})?$select=_parentaccountid_value").json()["_parentaccountid_value"]
        is None
    )


def test_deleting_a_contact_clears_primary_contact_and_list_membership(dv):
    """§4.11 (CASCADE): account_primary_contact RemoveLink; the contact's listmember rows go
    with it and the list's membercount follows."""
    contact = dv.create("contacts", {"lastname": "Member"})
    other = dv.create("contacts", {"lastname": "Stays"})
    account = dv.create(
        "accounts", {"name": "Acme", "primarycontactid@odata.bind": f"/contacts({contact})"}
    )
    list_id = dv.create("lists", {"listname": "Newsletter", "createdfromcode": 2})
    for member in (contact, other):
        response = dv.post(
            f"lists({list_id})/Microsoft.Dynamics.CRM.AddMemberList", json={"EntityId": member}
        )
        assert response.status_code == 200, response.text
    assert dv.delete(f"contacts({contact})").status_code == 204
    body = dv.get(f"accounts({account})?$select=_primarycontactid_value").json()
    assert body["_primarycontactid_value"] is None
    members = dv.get(f"lists({list_id})/listcontact_association?$select=contactid").json()
    assert [m["contactid"] for m in members["value"]] == [other]
    assert dv.get(f"lists({list_id})?$select=membercount").json()["membercount"] == 1
