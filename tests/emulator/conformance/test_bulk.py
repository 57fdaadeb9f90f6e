"""Conformance: CreateMultiple, UpdateMultiple, UpsertMultiple and availability (§6)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from conformance_support import GUID, JSON_CONTENT_TYPE

CONTACT_TYPE = "Microsoft.Dynamics.CRM.contact"


def targets(*rows, odata_type=CONTACT_TYPE):
    return {"Targets": [{"@odata.type": odata_type, **row} for row in rows]}


def bulk(dv, entity_set, message, body):
    return dv.post(f"{entity_set}/Microsoft.Dynamics.CRM.{message}", json=body)


def test_create_multiple_returns_ids_in_request_order(dv):
    """§6.1: CreateMultiple → 200, context ``$metadata#Microsoft.Dynamics.CRM.
    CreateMultipleResponse``, ``Ids`` (§11 #12: in request order)."""
    names = ["Alpha", "Bravo", "Charlie"]
    response = bulk(dv, "contacts", "CreateMultiple", targets(*({"lastname": n} for n in names)))
    assert response.status_code == 200, response.text
    assert response.headers["OData-Version"] == "4.0"
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE  # §2.3
    body = response.json()
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
    )
    assert set(body) == {"@odata.context", "Ids"}
    assert len(body["Ids"]) == 3
    assert all(GUID.match(record_id) for record_id in body["Ids"])
    stored = [
        dv.get(f"contacts({record_id})?$select=lastname").json()["lastname"]
        for record_id in body["Ids"]
    ]
    assert stored == names


def test_update_multiple_is_204(dv):
    """§6.2: UpdateMultiple, every target with its primary key and ``@odata.type`` → 204."""
    ids = [dv.create("contacts", {"lastname": f"Old{i}"}) for i in range(3)]
    response = bulk(
        dv,
        "contacts",
        "UpdateMultiple",
        targets(
            *({"contactid": record_id, "lastname": f"New{i}"} for i, record_id in enumerate(ids))
        ),
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert [
        dv.get(f"contacts({record_id})?$select=lastname").json()["lastname"] for record_id in ids
    ] == ["New0", "New1", "New2"]


def test_upsert_multiple_by_alternate_key_is_204(dv):
    """§6.3: UpsertMultiple with ``@odata.id`` ``contacts(key='v')`` (key only in ``@odata.id``)
    → 204; one row updated, one created."""
    dv.create("contacts", {"lastname": "Before", "emailaddress1": "old@example.com"})
    body = targets(
        {"lastname": "Updated", "@odata.id": "contacts(emailaddress1='old@example.com')"},
        {"lastname": "Created", "@odata.id": "contacts(emailaddress1='new@example.com')"},
    )
    response = bulk(dv, "contacts", "UpsertMultiple", body)
    assert response.status_code == 204, response.text
    rows = dv.rows("contacts", "$select=emailaddress1,lastname&$orderby=emailaddress1")
    assert [(row["emailaddress1"], row["lastname"]) for row in rows] == [
        ("new@example.com", "Created"),
        ("old@example.com", "Updated"),
    ]


def test_upsert_multiple_by_primary_key(dv):
    """§6.3: UpsertMultiple targets may carry the primary key instead of ``@odata.id``."""
    existing = dv.create("contacts", {"lastname": "Before"})
    body = targets({"contactid": existing, "lastname": "After"})
    assert bulk(dv, "contacts", "UpsertMultiple", body).status_code == 204
    assert dv.get(f"contacts({existing})?$select=lastname").json()["lastname"] == "After"


def test_create_multiple_is_all_or_nothing(dv):
    """§6.5: "Any error that occurs in a bulk operation with a standard table causes the
    entire operation to roll back"; the error is the failing row's (§4.9 0x80044331)."""
    body = targets({"lastname": "Good"}, {"lastname": "Bad", "firstname": "x" * 51})
    dv.assert_error(
        bulk(dv, "contacts", "CreateMultiple", body),
        400,
        "0x80044331",
        "A validation error occurred.  The length of the 'firstname' attribute of the "
        "'contact' entity exceeded the maximum allowed length of '50'.",
    )
    assert dv.rows("contacts") == []


def test_update_multiple_is_all_or_nothing(dv):
    """§6.5: an UpdateMultiple with one missing row changes nothing ("Contact With Ids =
    <guid> Do Not Exist", §6.5)."""
    kept = dv.create("contacts", {"lastname": "Kept"})
    missing = "00000000-0000-0000-0000-0000000000ff"
    body = targets(
        {"contactid": kept, "lastname": "Changed"},
        {"contactid": missing, "lastname": "Ghost"},
    )
    error = dv.assert_error(bulk(dv, "contacts", "UpdateMultiple", body), 404, "0x80040217")
    assert missing in error["message"]
    assert dv.get(f"contacts({kept})?$select=lastname").json()["lastname"] == "Kept"


def test_missing_odata_type_is_rejected(dv):
    """§4.6: ``@odata.type`` is required on every item of ``Targets``; nothing is created."""
    body = {"Targets": [{"@odata.type": CONTACT_TYPE, "lastname": "Typed"}, {"lastname": "Bare"}]}
    dv.assert_error(bulk(dv, "contacts", "CreateMultiple", body), 400)
    assert dv.rows("contacts") == []


def test_duplicate_keys_in_upsert_multiple_are_an_error(dv):
    """§6.3: duplicate keys in one UpsertMultiple payload → error (unlike UpdateMultiple);
    the status is not documented, so any 4xx Dataverse error (§4.8) conforms."""
    key = "contacts(emailaddress1='twice@example.com')"
    body = targets({"lastname": "A", "@odata.id": key}, {"lastname": "B", "@odata.id": key})
    response = bulk(dv, "contacts", "UpsertMultiple", body)
    assert 400 <= response.status_code < 500, response.text
    dv.assert_error(response, response.status_code)
    assert dv.rows("contacts") == []


def test_duplicate_ids_in_update_multiple_apply_the_first(dv):
    """§6.2: duplicate keys in one UpdateMultiple payload: only the first is applied."""
    record_id = dv.create("contacts", {"lastname": "Before"})
    body = targets(
        {"contactid": record_id, "lastname": "First"},
        {"contactid": record_id, "lastname": "Second"},
    )
    assert bulk(dv, "contacts", "UpdateMultiple", body).status_code == 204
    assert dv.get(f"contacts({record_id})?$select=lastname").json()["lastname"] == "First"


def probe(dv, message, table):
    """§6.5: the availability probe, with the parameter aliases of the documentation."""
    query = (
        "$select=sdkmessagefilterid&$filter=sdkmessageid/name eq @message and "
        f"primaryobjecttypecode eq @table&@message='{message}'&@table='{table}'"
    )
    return dv.rows("sdkmessagefilters", quote(query, safe="$&=@'/"))


@pytest.mark.parametrize("message", ["CreateMultiple", "UpdateMultiple", "UpsertMultiple"])
def test_probe_reports_availability(dv, message):
    """§6.5: "a non-empty ``value`` means supported"; the example entities file switches bulk
    off for ``new_visit`` and ``lead`` and leaves it on for ``new_membership`` and contact."""
    assert len(probe(dv, message, "new_membership")) == 1
    assert len(probe(dv, message, "contact")) == 1
    assert probe(dv, message, "new_visit") == []
    assert probe(dv, message, "lead") == []


def test_probe_of_dataverse_api(dv):
    """§3.9: ``dataverse-api``'s probe with ``$expand=sdkmessageid($select=name)`` and an
    ``or`` of message names."""
    rows = dv.rows(
        "sdkmessagefilters",
        "$select=sdkmessagefilterid&$expand=sdkmessageid($select=name)&$filter=("
        "sdkmessageid/name eq 'CreateMultiple' or sdkmessageid/name eq 'UpdateMultiple') and "
        "primaryobjecttypecode eq 'new_membership'",
    )
    assert sorted(row["sdkmessageid"]["name"] for row in rows) == [
        "CreateMultiple",
        "UpdateMultiple",
    ]
    assert all(GUID.match(row["sdkmessagefilterid"]) for row in rows)


@pytest.mark.parametrize(
    ("entity_set", "odata_type", "row"),
    [
        ("new_visits", "Microsoft.Dynamics.CRM.new_visit", {}),
        ("leads", "Microsoft.Dynamics.CRM.lead", {"lastname": "Lead"}),
    ],
)
def test_table_without_bulk_support_refuses_and_stores_nothing(dv, entity_set, odata_type, row):
    """§6.5: bulk messages are available on "many common standard tables, but not all"; a
    table the probe reports as unsupported refuses CreateMultiple with a Dataverse error
    (§4.8) and the single-request fallback works."""
    response = bulk(dv, entity_set, "CreateMultiple", targets(row, odata_type=odata_type))
    error = dv.assert_error(response, 400)
    assert "CreateMultiple" in error["message"]
    assert dv.rows(entity_set) == []
    assert GUID.match(dv.create(entity_set, row))


def test_bulk_on_custom_table(dv):
    """§6.5: bulk messages are available on custom tables."""
    response = bulk(
        dv,
        "new_memberships",
        "CreateMultiple",
        targets(
            {"new_name": "M1", "new_programcode": "P1"},
            odata_type="Microsoft.Dynamics.CRM.new_membership",
        ),
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["Ids"]) == 1


def test_duplicate_keys_in_create_multiple_fail_the_request(dv):
    """§6.5: "Two rows with the same key in one CreateMultiple fail the whole request"."""
    body = targets(
        {"lastname": "A", "emailaddress1": "same@example.com"},
        {"lastname": "B", "emailaddress1": "same@example.com"},
    )
    response = bulk(dv, "contacts", "CreateMultiple", body)
    assert 400 <= response.status_code < 500, response.text
    dv.assert_error(response, response.status_code)
    assert dv.rows("contacts") == []


def test_update_multiple_with_alternate_key_is_rejected(dv):
    """§6.2: "Using alternate keys with Web API and UpdateMultiple is not supported"."""
    dv.create("contacts", {"lastname": "Keyed", "emailaddress1": "k@example.com"})
    body = targets({"lastname": "New", "@odata.id": "contacts(emailaddress1='k@example.com')"})
    response = bulk(dv, "contacts", "UpdateMultiple", body)
    assert 400 <= response.status_code < 500, response.text
    dv.assert_error(response, response.status_code)
    assert [row["lastname"] for row in dv.rows("contacts", "$select=lastname")] == ["Keyed"]


def test_delete_multiple_on_standard_table_is_not_implemented(dv):
    """§6.4: DeleteMultiple on a standard table: error "DeleteMultiple has not yet been
    implemented."."""
    record_id = dv.create("contacts", {"lastname": "Stays"})
    response = bulk(dv, "contacts", "DeleteMultiple", targets({"contactid": record_id}))
    assert 400 <= response.status_code < 500, response.text
    error = dv.assert_error(response, response.status_code)
    assert "DeleteMultiple has not yet been implemented." in error["message"]
    assert dv.get(f"contacts({record_id})").status_code == 200
