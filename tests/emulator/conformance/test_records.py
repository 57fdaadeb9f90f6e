"""Conformance: create, retrieve, update, upsert, delete, lookups and value errors (§4)."""

from __future__ import annotations

import uuid

import pytest
from conformance_support import ETAG, GUID, JSON_CONTENT_TYPE

ALREADY_EXISTS = "A record with matching key values already exists."
REPRESENTATION = {"Prefer": "return=representation"}


def does_not_exist(table, record_id):
    """§4.9: "<table> With Id = <guid> Does Not Exist"."""
    return f"{table} With Id = {record_id} Does Not Exist"


def test_create_is_204_with_odata_entity_id(dv):
    """§4.1: POST → 204, ``OData-Version: 4.0``, ``OData-EntityId: {org}/api/data/v9.2/
    {entityset}({guid})`` and no body."""
    response = dv.post("contacts", json={"firstname": "Ada", "lastname": "Lovelace"})
    assert response.status_code == 204, response.text
    assert response.headers["OData-Version"] == "4.0"
    entity_id = response.headers["OData-EntityId"]
    prefix = f"{dv.api_url}/contacts("
    assert entity_id.startswith(prefix)
    assert entity_id.endswith(")")
    assert GUID.match(entity_id[len(prefix) : -1])
    assert response.content == b""


def test_create_with_representation_is_201_without_entity_id(dv):
    """§4.1: ``Prefer: return=representation`` → 201, ``Preference-Applied``, JSON body with
    ``@odata.context`` ``$metadata#contacts/$entity`` and ``@odata.etag``; "the OData-EntityId
    header … is not returned"."""
    response = dv.post(
        "contacts", json={"firstname": "Ada", "lastname": "Lovelace"}, headers=REPRESENTATION
    )
    assert response.status_code == 201, response.text
    assert "OData-EntityId" not in response.headers
    assert response.headers["Preference-Applied"] == "return=representation"
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert response.headers["OData-Version"] == "4.0"
    body = response.json()
    assert body["@odata.context"] == f"{dv.api_url}/$metadata#contacts/$entity"
    assert ETAG.match(body["@odata.etag"])
    assert GUID.match(body["contactid"])
    assert (body["firstname"], body["lastname"]) == ("Ada", "Lovelace")


def test_create_with_representation_and_select(dv):
    """§4.1: ``$select`` on the POST URL shapes the representation."""
    response = dv.post(
        "contacts?$select=lastname",
        json={"firstname": "Ada", "lastname": "Lovelace"},
        headers=REPRESENTATION,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["@odata.context"] == f"{dv.api_url}/$metadata#contacts(lastname)/$entity"
    assert body["lastname"] == "Lovelace"
    assert "firstname" not in body


def test_create_with_existing_primary_key_is_412(dv):
    """§4.1: creating with a primary key that already exists → 412 0x80040237."""
    record_id = dv.create("contacts", {"lastname": "One"})
    dv.assert_error(
        dv.post("contacts", json={"contactid": record_id, "lastname": "Two"}),
        412,
        "0x80040237",
        ALREADY_EXISTS,
    )


def test_create_with_caller_supplied_id(dv):
    """§4.1: "The caller may supply the primary key GUID in the body"."""
    record_id = str(uuid.uuid4())
    assert dv.create("contacts", {"contactid": record_id, "lastname": "Mine"}) == record_id


def test_retrieve(dv):
    """§4.1 / §4.6: GET ``{set}({id})?$select=…`` → 200, context ``contacts(cols)/$entity``,
    etag, the primary key and the selected columns."""
    record_id = dv.create("contacts", {"firstname": "Ada", "lastname": "Lovelace"})
    response = dv.get(f"contacts({record_id})?$select=firstname,lastname")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    body = response.json()
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#contacts(firstname,lastname)/$entity"
    )
    assert ETAG.match(body["@odata.etag"])
    assert body["contactid"] == record_id
    assert (body["firstname"], body["lastname"]) == ("Ada", "Lovelace")
    assert "emailaddress1" not in body


def test_retrieve_missing_is_404(dv):
    """§4.9: retrieve of a missing record → 404 0x80040217 "<table> With Id = <guid> Does Not
    Exist"."""
    record_id = str(uuid.uuid4())
    dv.assert_error(
        dv.get(f"contacts({record_id})"), 404, "0x80040217", does_not_exist("contact", record_id)
    )


def test_update_with_if_match(dv):
    """§4.2: PATCH with ``If-Match: *`` → 204 + OData-Version; the change is stored."""
    record_id = dv.create("contacts", {"firstname": "Ada", "lastname": "Lovelace"})
    response = dv.patch(
        f"contacts({record_id})", json={"firstname": "Augusta"}, headers={"If-Match": "*"}
    )
    assert response.status_code == 204, response.text
    assert response.headers["OData-Version"] == "4.0"
    body = dv.get(f"contacts({record_id})?$select=firstname,lastname").json()
    assert (body["firstname"], body["lastname"]) == ("Augusta", "Lovelace")


def test_update_with_representation_is_200(dv):
    """§4.2: PATCH with ``Prefer: return=representation`` → 200 + ``Preference-Applied`` +
    body."""
    record_id = dv.create("contacts", {"lastname": "Lovelace"})
    response = dv.patch(
        f"contacts({record_id})",
        json={"firstname": "Ada"},
        headers={"If-Match": "*", **REPRESENTATION},
    )
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "return=representation"
    body = response.json()
    assert body["contactid"] == record_id
    assert body["firstname"] == "Ada"


def test_update_missing_with_if_match_is_404(dv):
    """§4.4: ``If-Match: *`` on a missing record → 404, "<table> With Id = <guid> Does Not
    Exist" (§11 #8: code 0x80040217); nothing is created."""
    record_id = str(uuid.uuid4())
    response = dv.patch(
        f"contacts({record_id})", json={"lastname": "Ghost"}, headers={"If-Match": "*"}
    )
    dv.assert_error(response, 404, "0x80040217", does_not_exist("contact", record_id))
    assert dv.get(f"contacts({record_id})").status_code == 404


def test_upsert_by_id_creates_then_updates(dv):
    """§4.3: PATCH ``{set}(<guid>)`` creates the record with that GUID if missing, else
    updates; 204 either way."""
    record_id = str(uuid.uuid4())
    created = dv.patch(f"contacts({record_id})", json={"lastname": "First"})
    assert created.status_code == 204, created.text
    updated = dv.patch(f"contacts({record_id})", json={"lastname": "Second"})
    assert updated.status_code == 204, updated.text
    assert dv.get(f"contacts({record_id})?$select=lastname").json()["lastname"] == "Second"
    assert len(dv.rows("contacts", "$select=contactid")) == 1


def test_upsert_with_representation_is_201_then_200(dv):
    """§0 item 4 / §4.3: with ``return=representation`` an upsert answers 201 when it
    created and 200 when it updated."""
    record_id = str(uuid.uuid4())
    created = dv.patch(f"contacts({record_id})", json={"lastname": "A"}, headers=REPRESENTATION)
    assert created.status_code == 201, created.text
    assert created.json()["contactid"] == record_id
    updated = dv.patch(f"contacts({record_id})", json={"lastname": "B"}, headers=REPRESENTATION)
    assert updated.status_code == 200, updated.text
    assert updated.json()["lastname"] == "B"


def test_upsert_by_alternate_key(dv):
    """§4.3: PATCH ``{set}(key='v')`` → 204 with ``OData-EntityId`` naming the key values,
    identical for create and update; on create the URL key values are applied."""
    path = "contacts(emailaddress1='grace@example.com')"
    for lastname in ("Hopper", "Hopper-Murray"):
        response = dv.patch(path, json={"lastname": lastname})
        assert response.status_code == 204, response.text
        assert response.headers["OData-EntityId"] == f"{dv.api_url}/{path}"
    rows = dv.rows("contacts", "$select=emailaddress1,lastname")
    assert [(row["emailaddress1"], row["lastname"]) for row in rows] == [
        ("grace@example.com", "Hopper-Murray")
    ]
    assert dv.get(f"{path}?$select=lastname").json()["lastname"] == "Hopper-Murray"


def test_upsert_by_key_with_doubled_quote(dv):
    """§4.3: string key values double embedded single quotes (``'O''Neil'``)."""
    path = "accounts(accountnumber='O''Neil')"
    assert dv.patch(path, json={"name": "O'Neil Ltd"}).status_code == 204
    assert dv.patch(path, json={"name": "O'Neil Limited"}).status_code == 204
    rows = dv.rows("accounts", "$select=accountnumber,name&$filter=accountnumber eq 'O''Neil'")
    assert [(row["accountnumber"], row["name"]) for row in rows] == [("O'Neil", "O'Neil Limited")]
    assert dv.get(f"{path}?$select=name").json()["name"] == "O'Neil Limited"


def test_upsert_by_key_percent_encoded(dv):
    """§4.3: a target should percent-encode key values (``a%40b.com`` is ``a@b.com``)."""
    created = dv.patch("contacts(emailaddress1='a%40b.com')", json={"lastname": "Encoded"})
    assert created.status_code == 204, created.text
    updated = dv.patch("contacts(emailaddress1='a@b.com')", json={"lastname": "Plain"})
    assert updated.status_code == 204, updated.text
    rows = dv.rows("contacts", "$select=emailaddress1,lastname")
    assert [(row["emailaddress1"], row["lastname"]) for row in rows] == [("a@b.com", "Plain")]


def test_if_none_match_star_on_existing_is_412(dv):
    """§4.4: ``If-None-Match: *`` forbids update → 412 "A record with matching key values
    already exists." (§11 #8: code 0x80040237); the record is unchanged."""
    record_id = dv.create("contacts", {"lastname": "Kept"})
    response = dv.patch(
        f"contacts({record_id})", json={"lastname": "Changed"}, headers={"If-None-Match": "*"}
    )
    dv.assert_error(response, 412, "0x80040237", ALREADY_EXISTS)
    assert dv.get(f"contacts({record_id})?$select=lastname").json()["lastname"] == "Kept"


def test_if_none_match_star_on_missing_creates(dv):
    """§4.4: ``If-None-Match: *`` on a missing record creates it (204)."""
    response = dv.patch(
        "contacts(emailaddress1='new@example.com')",
        json={"lastname": "New"},
        headers={"If-None-Match": "*"},
    )
    assert response.status_code == 204, response.text
    assert len(dv.rows("contacts", "$filter=emailaddress1 eq 'new@example.com'")) == 1


def test_delete_then_404(dv):
    """§4.5: DELETE → 204; missing → 404 (0x80040217, §4.9)."""
    record_id = dv.create("contacts", {"lastname": "Gone"})
    response = dv.delete(f"contacts({record_id})")
    assert response.status_code == 204, response.text
    assert response.content == b""
    dv.assert_error(
        dv.delete(f"contacts({record_id})"),
        404,
        "0x80040217",
        does_not_exist("contact", record_id),
    )
    assert dv.get(f"contacts({record_id})").status_code == 404


def test_delete_by_alternate_key(dv):
    """§4.5: "Delete by alternate key uses the key URL"."""
    dv.create("accounts", {"name": "Keyed", "accountnumber": "K-1"})
    assert dv.delete("accounts(accountnumber='K-1')").status_code == 204
    assert dv.rows("accounts", "$filter=accountnumber eq 'K-1'") == []


@pytest.mark.parametrize("reference", ["/accounts({id})", "accounts({id})"])
def test_bind_by_guid(dv, reference):
    """§0 item 5 / §4.6: ``"parentcustomerid_account@odata.bind": "/accounts(<guid>)"``, also
    without the leading slash; read back as ``_parentcustomerid_value``."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    contact_id = dv.create(
        "contacts",
        {
            "lastname": "Bound",
            "parentcustomerid_account@odata.bind": reference.format(id=account_id),
        },
    )
    body = dv.get(f"contacts({contact_id})?$select=_parentcustomerid_value").json()
    assert body["_parentcustomerid_value"] == account_id


def test_bind_by_alternate_key(dv):
    """§0 item 5: ``"/accounts(accountnumber='A1')"`` binds by alternate key."""
    account_id = dv.create("accounts", {"name": "Contoso", "accountnumber": "A1"})
    contact_id = dv.create(
        "contacts",
        {
            "lastname": "Bound",
            "parentcustomerid_account@odata.bind": "/accounts(accountnumber='A1')",
        },
    )
    body = dv.get(f"contacts({contact_id})?$select=_parentcustomerid_value").json()
    assert body["_parentcustomerid_value"] == account_id


@pytest.mark.parametrize(
    "name", ["parentcustomerid", "ParentCustomerId_account", "parentcustomerid_nosuch"]
)
def test_bind_through_undeclared_property_is_400(dv, name):
    """§4.7: a lookup written through the logical column name, with wrong casing or a
    non-existent navigation property → 400 (observed code 0x0) "An undeclared property
    '<name>' which only has property annotations in the payload but no property value was
    found in the payload. …"."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    response = dv.post(
        "contacts", json={"lastname": "X", f"{name}@odata.bind": f"/accounts({account_id})"}
    )
    error = dv.assert_error(response, 400, "0x0")
    assert (
        f"An undeclared property '{name}' which only has property annotations in the payload "
        "but no property value was found in the payload. In OData, only declared navigation "
        "properties and declared named streams can be represented as properties without "
        "values."
    ) in error["message"]
    assert dv.rows("contacts") == []


def test_bind_to_missing_guid_is_404(dv):
    """§11 #4: ``@odata.bind`` to a non-existent GUID → 404 0x80040217 (§4.9 message)."""
    missing = str(uuid.uuid4())
    response = dv.post(
        "contacts",
        json={"lastname": "X", "parentcustomerid_account@odata.bind": f"/accounts({missing})"},
    )
    dv.assert_error(response, 404, "0x80040217", does_not_exist("account", missing))
    assert dv.rows("contacts") == []


def test_bind_to_missing_alternate_key_is_404(dv):
    """§4.3 / §11 #4: an alternate key that does not resolve in a reference → 404
    0x80060891 "A record with the specified key values does not exist in account entity"."""
    response = dv.post(
        "contacts",
        json={
            "lastname": "X",
            "parentcustomerid_account@odata.bind": "/accounts(accountnumber='NOPE')",
        },
    )
    dv.assert_error(
        response,
        404,
        "0x80060891",
        "A record with the specified key values does not exist in account entity",
    )


def test_unknown_column_is_400_0x80048d19(dv):
    """§4.9: unknown column in the body → 400 0x80048d19 "Error identified in Payload provided
    by the user for Entity :'contacts', … Invalid property 'x' was found in entity
    'Microsoft.Dynamics.CRM.contact'. …"."""
    error = dv.assert_error(
        dv.post("contacts", json={"lastname": "X", "new_nosuchcolumn": 1}), 400, "0x80048d19"
    )
    assert error["message"].startswith(
        "Error identified in Payload provided by the user for Entity :'contacts', For more "
        "information on this error please follow this help link "
        "https://go.microsoft.com/fwlink/?linkid=2195293 ----> InnerException : "
        "Microsoft.Crm.CrmException: Invalid property 'new_nosuchcolumn' was found in entity "
        "'Microsoft.Dynamics.CRM.contact'."
    ), error["message"]


def test_string_too_long_is_400_0x80044331(dv):
    """§4.9: string over MaxLength → 400 0x80044331 "A validation error occurred.  The length
    of the '<col>' attribute of the '<table>' entity exceeded the maximum allowed length of
    '<n>'." (two spaces); contact firstname is String 50 (§3.8)."""
    dv.assert_error(
        dv.post("contacts", json={"firstname": "x" * 51, "lastname": "X"}),
        400,
        "0x80044331",
        "A validation error occurred.  The length of the 'firstname' attribute of the "
        "'contact' entity exceeded the maximum allowed length of '50'.",
    )
    assert dv.rows("contacts") == []


def test_string_at_max_length_is_accepted(dv):
    """§3.4 / §4.6: exactly MaxLength characters is valid (emailaddress1 is 100)."""
    email = "a" * 88 + "@example.com"
    assert len(email) == 100
    assert GUID.match(dv.create("contacts", {"lastname": "X", "emailaddress1": email}))


def test_invalid_choice_is_400_0x8004431a(dv):
    """§4.9 / §11 #2: a choice value not in the option set → 400 0x8004431A."""
    dv.assert_error(
        dv.post("contacts", json={"lastname": "X", "gendercode": 99}), 400, "0x8004431A"
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("numberofchildren", "three"),
        ("creditonhold", "yes"),
        ("gendercode", "Male"),
        ("lastname", 42),
        ("annualincome", "lots"),
    ],
)
def test_wrong_json_type_is_400(dv, column, value):
    """§4.6: each column type has one JSON encoding; another type is a 400 error (§4.8)."""
    dv.assert_error(dv.post("contacts", json={"lastname": "X", column: value}), 400)
    assert dv.rows("contacts") == []


@pytest.mark.parametrize(
    "body",
    [
        {"birthdate": "not-a-date"},
        {"birthdate": "2024-13-40"},
        {"contactid": "not-a-guid"},
        {"parentcustomerid_account@odata.bind": "/accounts(not-a-guid)"},
    ],
)
def test_malformed_guid_or_date_is_400(dv, body):
    """§4.6: DateOnly is Edm.Date ``YYYY-MM-DD``; GUIDs must parse → otherwise 400 (§4.8)."""
    dv.assert_error(dv.post("contacts", json={"lastname": "X", **body}), 400)


def test_malformed_key_segment_is_400(dv):
    """§4.3: a malformed key segment → 400 0x8006088a "Bad Request - Error in query
    syntax."."""
    dv.assert_error(
        dv.get("contacts(not-a-guid)"), 400, "0x8006088a", "Bad Request - Error in query syntax."
    )


def test_non_key_column_in_url_is_400(dv):
    """§4.3: a non-key column in the URL → "The key in the request URI is not valid for
    resource 'Microsoft.Dynamics.CRM.contact'. …"."""
    error = dv.assert_error(dv.patch("contacts(lastname='X')", json={"firstname": "Y"}), 400)
    assert error["message"] == (
        "The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.contact'. "
        "Ensure that the names and number of key properties match the declared or alternate "
        "key properties for the resource 'Microsoft.Dynamics.CRM.contact'."
    )


def test_duplicate_alternate_key_value_is_rejected(dv):
    """§4.1: alternate-key uniqueness violation → 0x80060892 "Entity Key {0} violated. A
    record with the same value for {1} already exists. …"; §11 #4: status 412."""
    dv.create("contacts", {"lastname": "First", "emailaddress1": "dup@example.com"})
    error = dv.assert_error(
        dv.post("contacts", json={"lastname": "Second", "emailaddress1": "dup@example.com"}),
        412,
        "0x80060892",
    )
    assert error["message"].startswith("Entity Key ")
    assert error["message"].endswith(
        " violated. A record with the same value for emailaddress1 already exists. A duplicate "
        "record cannot be created. Select one or more unique values and try again."
    ), error["message"]
    assert len(dv.rows("contacts")) == 1


def test_update_into_duplicate_alternate_key_is_rejected(dv):
    """§4.1 / §11 #4: an update that would duplicate a key value is refused too (412)."""
    dv.create("contacts", {"lastname": "First", "emailaddress1": "one@example.com"})
    second = dv.create("contacts", {"lastname": "Second", "emailaddress1": "two@example.com"})
    response = dv.patch(
        f"contacts({second})", json={"emailaddress1": "one@example.com"}, headers={"If-Match": "*"}
    )
    dv.assert_error(response, 412, "0x80060892")
    body = dv.get(f"contacts({second})?$select=emailaddress1").json()
    assert body["emailaddress1"] == "two@example.com"
