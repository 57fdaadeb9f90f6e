"""Conformance: the ``organization`` table and ``$count`` annotations.

Microsoft Learn, "Organization table/entity reference"
(https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/organization):
one row per environment; ``organizationid``, ``name``, ``languagecode``, ``basecurrencyid``.
Microsoft Learn, "Count rows using OData"
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/count-rows):
``$count=true`` and the ``totalrecordcount`` annotations.
"""

from __future__ import annotations

from conformance_support import GUID


def test_organizations_answers_the_one_row(dv):
    """``GET organizations`` answers exactly one row: id, name, language 1033, base currency."""
    response = dv.get("organizations?$select=languagecode,name,organizationid")
    assert response.status_code == 200, response.text
    rows = response.json()["value"]
    assert len(rows) == 1
    row = rows[0]
    assert GUID.match(row["organizationid"])
    assert row["languagecode"] == 1033
    assert row["name"]
    assert "_basecurrencyid_value" not in row  # $select names the columns


def test_organization_row_matches_whoami_and_base_currency(dv):
    """The row is WhoAmI's ``OrganizationId``; ``basecurrencyid`` is the USD currency row."""
    who = dv.get("WhoAmI").json()
    row = dv.get("organizations").json()["value"][0]
    assert row["organizationid"] == who["OrganizationId"]
    currency = dv.get(f"transactioncurrencies({row['_basecurrencyid_value']})")
    assert currency.status_code == 200, currency.text
    assert currency.json()["isocurrencycode"] == "USD"


TOTALS = (
    'odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,'
    'Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'
)


def test_count_gives_total_annotations_when_asked(dv):
    """Learn, "Count rows using OData": under the limit, ``@odata.count`` and
    ``totalrecordcount`` are the actual count and ``totalrecordcountlimitexceeded``
    is false, whatever the page size."""
    response = dv.get(
        "organizations?$select=name&$count=true",
        headers={"Prefer": f"{TOTALS},odata.maxpagesize=1"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["@odata.count"] == 1
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == 1
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is False
    assert list(body)[:2] == ["@odata.context", "@odata.count"]


def test_count_annotations_only_when_asked(dv):
    """Learn, "Count rows using OData": without the preference only ``@odata.count``;
    without ``$count=true`` the total is -1."""
    plain = dv.get("organizations?$select=name&$count=true").json()
    assert "@odata.count" in plain
    assert not [k for k in plain if k.startswith("@Microsoft.Dynamics.CRM.totalrecord")]
    uncounted = dv.get("organizations?$select=name", headers={"Prefer": TOTALS}).json()
    assert "@odata.count" not in uncounted
    assert uncounted["@Microsoft.Dynamics.CRM.totalrecordcount"] == -1


def test_count_stops_at_5000_and_says_so(dv):
    """Learn, "Count rows using OData": more than 5,000 matching rows give ``@odata.count`` and
    ``totalrecordcount`` 5000 and ``totalrecordcountlimitexceeded`` true."""
    for start in range(0, 5001, 1000):
        names = range(start, min(start + 1000, 5001))
        targets = [
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"C{i}"} for i in names
        ]
        created = dv.post(
            "contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets}
        )
        assert created.status_code == 200, created.text
    response = dv.get(
        "contacts?$select=lastname&$count=true",
        headers={"Prefer": f"{TOTALS},odata.maxpagesize=10"},
    )
    body = response.json()
    assert body["@odata.count"] == 5000
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == 5000
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    assert len(body["value"]) == 10
