"""Conformance: text compares case- and accent-insensitively (§3.10, the ``_CI_AI`` collation).

Microsoft Learn, "Language collations" (power-platform/admin/language-collations): every
language is ``_CI`` ("Cafe" = "cafe"); English (1033) is ``_CI_AI`` ("cafe" = "café").
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

CONTACT_TYPE = "Microsoft.Dynamics.CRM.contact"


def upsert_multiple(dv, *rows):
    body = {"Targets": [{"@odata.type": CONTACT_TYPE, **row} for row in rows]}
    return dv.post("contacts/Microsoft.Dynamics.CRM.UpsertMultiple", json=body)


def test_accent_variant_violates_alternate_key(dv):
    """§3.10, §4.1: "josé@x.org" and "JOSE@x.org" are one key value -> 412 0x80060892."""
    dv.create("contacts", {"lastname": "A", "emailaddress1": "josé@x.org"})
    response = dv.post("contacts", json={"lastname": "B", "emailaddress1": "JOSE@x.org"})
    dv.assert_error(response, 412, "0x80060892")


def test_key_lookup_ignores_accents(dv):
    """§3.10, §4.3: a key segment finds the row whose value differs only in accents and case."""
    record_id = dv.create("contacts", {"lastname": "A", "emailaddress1": "josé@x.org"})
    response = dv.get(f"contacts(emailaddress1='{quote('Jose@x.org')}')?$select=emailaddress1")
    assert response.status_code == 200, response.text
    assert response.json()["contactid"] == record_id
    assert response.json()["emailaddress1"] == "josé@x.org"  # stored as written


def test_upsert_by_accent_variant_updates(dv):
    """§3.10, §4.3: an upsert by an accent variant of the key updates the existing row."""
    record_id = dv.create("contacts", {"lastname": "Before", "emailaddress1": "jose@x.org"})
    response = dv.patch(
        f"contacts(emailaddress1='{quote('JOSÉ@x.org')}')", json={"lastname": "After"}
    )
    assert response.status_code == 204, response.text
    rows = dv.rows("contacts", "$select=lastname")
    assert [(row["contactid"], row["lastname"]) for row in rows] == [(record_id, "After")]


def test_accent_variants_in_one_upsert_multiple_are_duplicates(dv):
    """§3.10, §6.3: two accent variants of one key in one UpsertMultiple are duplicate keys."""
    response = upsert_multiple(
        dv,
        {"lastname": "A", "@odata.id": "contacts(emailaddress1='josé@x.org')"},
        {"lastname": "B", "@odata.id": "contacts(emailaddress1='jose@x.org')"},
    )
    dv.assert_error(response, 412, "0x80040237")
    assert dv.rows("contacts") == []


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ("emailaddress1 eq 'jose@x.org'", True),
        ("emailaddress1 eq 'JOSÉ@X.ORG'", True),
        ("emailaddress1 ne 'jose@x.org'", False),
        ("contains(lastname,'muller')", True),
        ("startswith(lastname,'MÜL')", True),
        ("endswith(lastname,'LER')", True),
        ("emailaddress1 in ('other@x.org','jose@x.org')", True),
        ("lastname eq 'Muler'", False),
    ],
)
def test_filter_ignores_case_and_accents(dv, expression, matches):
    """§3.10: ``$filter`` eq, ne, in, contains, startswith and endswith compare ``_CI_AI``."""
    dv.create("contacts", {"lastname": "Müller", "emailaddress1": "josé@x.org"})
    rows = dv.rows("contacts", f"$select=lastname&$filter={quote(expression)}")
    assert [row["lastname"] for row in rows] == (["Müller"] if matches else [])
