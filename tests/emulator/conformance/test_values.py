"""Conformance: value encoding (§4.6), ETags and single-property writes (§4.2, §4.4),
annotations (§2.2, §4.8), composite keys and deep insert (§4.1, §4.3), API versions (§2.1)."""

from __future__ import annotations

import re
import uuid

import pytest
from conformance_support import GUID, JSON_CONTENT_TYPE

REPRESENTATION = {"Prefer": "return=representation"}
FORMATTED = "OData.Community.Display.V1.FormattedValue"
ALL_ANNOTATIONS = 'odata.include-annotations="*"'


def test_double_date_and_currency_encoding(dv):
    """§4.6: Double rounded to the column precision (``47.639583`` → ``47.63958``); DateOnly
    is ``YYYY-MM-DD``; §4.1: money columns get the default currency
    (``_transactioncurrencyid_value``)."""
    response = dv.post(
        "contacts",
        json={
            "lastname": "Values",
            "annualincome": 5000000,
            "address1_latitude": 47.639583,
            "birthdate": "1815-12-10",
        },
        headers=REPRESENTATION,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["annualincome"] == 5000000
    assert body["address1_latitude"] == 47.63958
    assert body["birthdate"] == "1815-12-10"
    assert GUID.match(body["_transactioncurrencyid_value"])


def test_money_is_echoed_with_four_decimals(dv):
    """§4.6: "money is echoed with 4 decimals (``5000000.0000``)" (§4.1 example)."""
    response = dv.post(
        "contacts?$select=annualincome",
        json={"lastname": "Money", "annualincome": 5000000},
        headers=REPRESENTATION,
    )
    assert response.status_code == 201, response.text
    assert re.search(r'"annualincome":\s*5000000\.0000[,}]', response.text), response.text


def test_datetime_with_offset_is_converted_to_utc(dv):
    """§4.6: UserLocal DateTime is Edm.DateTimeOffset; "an offset such as
    2021-04-04T12:00:00-08:00 is accepted and converted"; no offset is treated as UTC."""
    record_id = dv.create(
        "contacts", {"lastname": "Time", "lastonholdtime": "2021-04-04T12:00:00-08:00"}
    )
    body = dv.get(f"contacts({record_id})?$select=lastonholdtime").json()
    assert body["lastonholdtime"] == "2021-04-04T20:00:00Z"
    dv.patch(f"contacts({record_id})", json={"lastonholdtime": "2021-04-05T08:30:00"})
    body = dv.get(f"contacts({record_id})?$select=lastonholdtime").json()
    assert body["lastonholdtime"] == "2021-04-05T08:30:00Z"


def test_dateonly_format_with_userlocal_behaviour_is_a_datetimeoffset(dv):
    """§4.6: the behaviour decides the type; a UserLocal column with ``DateOnly`` format
    (contact ``overriddencreatedon``) is ``Edm.DateTimeOffset`` and keeps a time; a plain
    date is midnight UTC (§11, point 16); the formatted value shows the date only."""
    response = dv.post(
        "contacts?$select=overriddencreatedon",
        json={"lastname": "Format", "overriddencreatedon": "2026-01-31T10:15:00+01:00"},
        headers={"Prefer": f"return=representation,{ALL_ANNOTATIONS}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["overriddencreatedon"] == "2026-01-31T09:15:00Z"
    assert body["overriddencreatedon@" + FORMATTED] == "1/31/2026"
    response = dv.post(
        "contacts?$select=overriddencreatedon",
        json={"lastname": "Format", "overriddencreatedon": "2026-01-31"},
        headers=REPRESENTATION,
    )
    assert response.status_code == 201, response.text
    assert response.json()["overriddencreatedon"] == "2026-01-31T00:00:00Z"


def test_dateonly_behaviour_refuses_a_time(dv):
    """§4.6: a DateOnly-behaviour column (contact ``birthdate``) is ``Edm.Date``: a date-time
    literal cannot be converted."""
    response = dv.post("contacts", json={"lastname": "Born", "birthdate": "1990-05-17T00:00:00Z"})
    assert response.status_code == 400, response.text
    assert "Edm.Date'" in response.json()["error"]["message"]


def test_null_clears_a_column(dv):
    """§4.6: JSON ``null`` clears a column."""
    record_id = dv.create("contacts", {"lastname": "X", "firstname": "Temporary"})
    assert dv.patch(f"contacts({record_id})", json={"firstname": None}).status_code == 204
    assert dv.get(f"contacts({record_id})?$select=firstname").json()["firstname"] is None


def test_lookup_value_property_cannot_be_written(dv):
    """§4.6: ``_<navprop>_value`` is computed and read-only; "cannot be written"."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    dv.assert_error(
        dv.post("contacts", json={"lastname": "X", "_parentcustomerid_value": account_id}), 400
    )
    assert dv.rows("contacts") == []


def test_charset_content_type_is_accepted(dv):
    """§2.2 / §4.1: ``Content-Type: application/json; charset=utf-8`` (Microsoft's example)."""
    response = dv.post(
        "contacts",
        data='{"lastname": "Ünïcødé"}'.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 204, response.text
    assert [row["lastname"] for row in dv.rows("contacts", "$select=lastname")] == ["Ünïcødé"]


@pytest.mark.parametrize("version", ["v9.0", "v9.1"])
def test_older_api_versions_keep_working(dv, version):
    """§2.1: "Code written for v9.0 keeps working with v9.0 in the URL"."""
    response = dv.session.get(f"{dv.base_url}/api/data/{version}/WhoAmI", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE


def test_stale_etag_is_412(dv):
    """§4.4: ``If-Match: W/"…"`` with a stale ETag → 412 "The version of the existing record
    doesn't match the RowVersion property provided."; the current ETag succeeds (§4.9)."""
    record_id = dv.create("contacts", {"lastname": "V1"})
    stale = dv.get(f"contacts({record_id})?$select=lastname").json()["@odata.etag"]
    assert dv.patch(f"contacts({record_id})", json={"lastname": "V2"}).status_code == 204
    current = dv.get(f"contacts({record_id})?$select=lastname").json()["@odata.etag"]
    assert current != stale
    for method in ("PATCH", "DELETE"):
        response = dv.request(
            method, f"contacts({record_id})", json={"lastname": "V3"}, headers={"If-Match": stale}
        )
        dv.assert_error(
            response,
            412,
            message="The version of the existing record doesn't match the RowVersion property "
            "provided.",
        )
    response = dv.patch(
        f"contacts({record_id})", json={"lastname": "V3"}, headers={"If-Match": current}
    )
    assert response.status_code == 204, response.text


def test_if_none_match_etag_on_get_is_304(dv):
    """§4.4: ``If-None-Match: <etag>`` on GET → 304 when unchanged; 200 after a change."""
    record_id = dv.create("contacts", {"lastname": "Cached"})
    etag = dv.get(f"contacts({record_id})?$select=lastname").json()["@odata.etag"]
    response = dv.get(f"contacts({record_id})?$select=lastname", headers={"If-None-Match": etag})
    assert response.status_code == 304, response.text
    assert response.content == b""
    dv.patch(f"contacts({record_id})", json={"lastname": "Changed"})
    response = dv.get(f"contacts({record_id})?$select=lastname", headers={"If-None-Match": etag})
    assert response.status_code == 200, response.text


def test_single_property_put_and_delete(dv):
    """§4.2: ``PUT …/{set}(<id>)/name`` with ``{"value": …}`` → 204; ``DELETE …/(<id>)/col``
    → 204 (clears it)."""
    record_id = dv.create("contacts", {"lastname": "Before", "description": "Text"})
    response = dv.request("PUT", f"contacts({record_id})/lastname", json={"value": "After"})
    assert response.status_code == 204, response.text
    assert dv.delete(f"contacts({record_id})/description").status_code == 204
    body = dv.get(f"contacts({record_id})?$select=lastname,description").json()
    assert (body["lastname"], body["description"]) == ("After", None)


def test_key_columns_in_body_are_ignored_on_update(dv):
    """§4.3: alternate-key columns repeated in the body "on update … are ignored (a key cannot
    be changed through itself)"."""
    path = "contacts(emailaddress1='keep@example.com')"
    assert dv.patch(path, json={"lastname": "First"}).status_code == 204
    response = dv.patch(path, json={"lastname": "Second", "emailaddress1": "moved@example.com"})
    assert response.status_code == 204, response.text
    rows = dv.rows("contacts", "$select=emailaddress1,lastname")
    assert [(row["emailaddress1"], row["lastname"]) for row in rows] == [
        ("keep@example.com", "Second")
    ]


def test_primary_key_as_named_key(dv):
    """§4.3: ``accounts(accountid=<guid>)`` also works."""
    account_id = dv.create("accounts", {"name": "Named"})
    response = dv.get(f"accounts(accountid={account_id})?$select=name")
    assert response.status_code == 200, response.text
    assert response.json()["accountid"] == account_id


def test_composite_key_with_lookup_column(dv):
    """§4.3: composite keys ``set(k1=…,k2='…')``; "a lookup key column uses the lookup property
    name" (``_x_value=<guid>``); ``OData-EntityId`` uses the key values."""
    contact_id = dv.create("contacts", {"lastname": "Member"})
    path = f"new_memberships(_new_contactid_value={contact_id},new_programcode='P-1')"
    for name in ("Created", "Updated"):
        response = dv.patch(path, json={"new_name": name})
        assert response.status_code == 204, response.text
        assert response.headers["OData-EntityId"] == f"{dv.api_url}/{path}"
    rows = dv.rows("new_memberships", "$select=new_name,new_programcode,_new_contactid_value")
    assert [
        (row["new_name"], row["new_programcode"], row["_new_contactid_value"]) for row in rows
    ] == [("Updated", "P-1", contact_id)]


def test_deep_insert(dv):
    """§4.1: "Deep insert (nested objects / arrays of related records) is allowed; only the
    parent's URI is returned."."""
    response = dv.post(
        "accounts",
        json={
            "name": "Parent",
            "primarycontactid": {"lastname": "Primary"},
            "contact_customer_accounts": [{"lastname": "Child"}],
        },
    )
    assert response.status_code == 204, response.text
    account_id = re.search(r"accounts\(([0-9a-f-]{36})\)", response.headers["OData-EntityId"])[1]
    account = dv.get(f"accounts({account_id})?$select=_primarycontactid_value").json()
    primary = dv.get(f"contacts({account['_primarycontactid_value']})?$select=lastname").json()
    assert primary["lastname"] == "Primary"
    children = dv.rows(
        "contacts", f"$select=lastname&$filter=_parentcustomerid_value eq {account_id}"
    )
    assert [row["lastname"] for row in children] == ["Child"]


@pytest.fixture
def annotated(dv):
    """A contact (gendercode 2, parent account "Contoso") read with all annotations."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    record_id = dv.create(
        "contacts",
        {
            "lastname": "X",
            "gendercode": 2,
            "parentcustomerid_account@odata.bind": f"/accounts({account_id})",
        },
    )
    response = dv.get(
        f"contacts({record_id})?$select=gendercode,_parentcustomerid_value",
        headers={"Prefer": ALL_ANNOTATIONS},
    )
    assert response.status_code == 200, response.text
    return response


def test_lookup_logical_name_annotation(annotated):
    """§2.2: ``Microsoft.Dynamics.CRM.lookuplogicalname`` names the lookup's table."""
    lookup = "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
    assert annotated.json()[lookup] == "account"


def test_formatted_value_annotation(annotated):
    """§2.2: ``OData.Community.Display.V1.FormattedValue`` gives the choice label and the
    lookup's primary name."""
    body = annotated.json()
    assert body[f"gendercode@{FORMATTED}"] == "Female"
    assert body[f"_parentcustomerid_value@{FORMATTED}"] == "Contoso"


def test_annotation_preference_is_echoed(annotated):
    """§2.2: "Responses echo ``Preference-Applied``" for ``odata.include-annotations``."""
    assert annotated.headers.get("Preference-Applied") == ALL_ANNOTATIONS


def test_error_annotations_on_request(dv):
    """§4.8: with ``Prefer: odata.include-annotations="*"`` extra
    ``@Microsoft.PowerApps.CDS.*`` members appear inside ``error``."""
    response = dv.post(
        "contacts",
        json={"lastname": "X", "firstname": "x" * 51},
        headers={"Prefer": ALL_ANNOTATIONS},
    )
    error = dv.assert_error(response, 400, "0x80044331")
    extra = {name for name in error if name.startswith("@Microsoft.PowerApps.CDS.")}
    assert "@Microsoft.PowerApps.CDS.ErrorDetails.OperationStatus" in extra, error


def test_missing_record_in_update_multiple_names_it(dv):
    """§6.5 / §4.4: bulk quotes "Contact With Ids = <guid> Do Not Exist"."""
    missing = str(uuid.uuid4())
    body = {
        "Targets": [
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": missing, "lastname": "X"}
        ]
    }
    error = dv.assert_error(
        dv.post("contacts/Microsoft.Dynamics.CRM.UpdateMultiple", json=body), 404, "0x80040217"
    )
    assert error["message"].lower() == f"contact with ids = {missing} do not exist"


def test_upsert_multiple_key_in_body_pitfall(dv):
    """§6.3: alternate-key column also in the body → the create path fails with 400
    0x80040216 "An unexpected error occurred." while the update path returns 204."""
    dv.create("accounts", {"name": "Existing", "accountnumber": "A-1"})
    account = "Microsoft.Dynamics.CRM.account"

    def upsert(number):
        target = {
            "@odata.type": account,
            "@odata.id": f"accounts(accountnumber='{number}')",
            "accountnumber": number,
            "name": "Upserted",
        }
        return dv.post("accounts/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": [target]})

    assert upsert("A-1").status_code == 204
    dv.assert_error(upsert("A-2"), 400, "0x80040216", "An unexpected error occurred.")


def test_entity_id_keeps_the_requested_version(dv):
    """§4.1: the v9.0 example answers ``OData-EntityId: [Organization URI]/api/data/v9.0/
    accounts(<guid>)``."""
    response = dv.session.post(
        f"{dv.base_url}/api/data/v9.0/accounts", json={"name": "Old client"}, timeout=30
    )
    assert response.status_code == 204, response.text
    assert response.headers["OData-EntityId"].startswith(f"{dv.base_url}/api/data/v9.0/accounts(")


def test_statecode_without_statuscode_picks_default_status(dv):
    """§4.2: "Setting statecode without statuscode picks the default status" (contact:
    statecode 1 Inactive → statuscode 2 Inactive)."""
    record_id = dv.create("contacts", {"lastname": "Active"})
    body = dv.get(f"contacts({record_id})?$select=statecode,statuscode").json()
    assert (body["statecode"], body["statuscode"]) == (0, 1)
    assert dv.patch(f"contacts({record_id})", json={"statecode": 1}).status_code == 204
    body = dv.get(f"contacts({record_id})?$select=statecode,statuscode").json()
    assert (body["statecode"], body["statuscode"]) == (1, 2)
