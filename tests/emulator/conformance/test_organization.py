"""Conformance: the ``organization`` table and ``$count`` annotations.

Microsoft Learn, "Organization table/entity reference"
(https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/organization):
one row per environment; ``organizationid``, ``name``, ``languagecode``, ``basecurrencyid``.
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
