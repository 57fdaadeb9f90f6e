"""Conformance: collection queries ($select, $filter, $top, $orderby, $count, paging).

The reference names the query features clients rely on (§2.2 ``Prefer: odata.maxpagesize``,
§3.9 and §A.3 the ``$filter`` subset, §A.4 paging with ``@odata.nextLink``, §4.9 unknown
``$select`` columns).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit

import pytest
from conformance_support import ETAG, JSON_CONTENT_TYPE

PEOPLE = [
    ("Ada", "Lovelace", 2, "ada@example.com"),
    ("Grace", "Hopper", 0, "grace@example.com"),
    ("Alan", "Turing", 0, "alan@example.org"),
    ("Edsger", "Dijkstra", 3, "edsger@example.org"),
    ("Barbara", "Liskov", 1, "barbara@example.com"),
    ("Donald", "Knuth", 2, "don@example.com"),
    ("Margaret", "Hamilton", 1, "margaret@example.com"),
]


LASTNAMES = {person[1] for person in PEOPLE}


@pytest.fixture
def people(dv):
    """Seven contacts; returns ``{lastname: contactid}``."""
    return {
        last: dv.create(
            "contacts",
            {"firstname": first, "lastname": last, "numberofchildren": kids, "emailaddress1": mail},
        )
        for first, last, kids, mail in PEOPLE
    }


def lastnames(dv, query):
    return [row["lastname"] for row in dv.rows("contacts", query)]


def test_collection_shape_with_select(dv, people):
    """§2.3 / §5.3: a collection is ``{"@odata.context": "…$metadata#contacts(cols)",
    "value": [...]}``; rows carry ``@odata.etag``, the selected columns and the primary key."""
    response = dv.get("contacts?$select=firstname,lastname")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert response.headers["OData-Version"] == "4.0"
    body = response.json()
    assert body["@odata.context"] == f"{dv.api_url}/$metadata#contacts(firstname,lastname)"
    assert len(body["value"]) == len(PEOPLE)
    for row in body["value"]:
        assert ETAG.match(row["@odata.etag"])
        assert set(row) == {"@odata.etag", "firstname", "lastname", "contactid"}
        assert people[row["lastname"]] == row["contactid"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("lastname eq 'Hopper'", {"Hopper"}),
        ("lastname ne 'Hopper'", LASTNAMES - {"Hopper"}),
        ("numberofchildren gt 1", {"Lovelace", "Dijkstra", "Knuth"}),
        ("numberofchildren lt 1", {"Hopper", "Turing"}),
        ("numberofchildren ge 2 and firstname eq 'Ada'", {"Lovelace"}),
        ("lastname eq 'Hopper' or lastname eq 'Turing'", {"Hopper", "Turing"}),
        (
            "Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['Knuth','Liskov'])",
            {"Knuth", "Liskov"},
        ),
        ("contains(emailaddress1,'example.org')", {"Turing", "Dijkstra"}),
        ("startswith(lastname,'H')", {"Hopper", "Hamilton"}),
        (
            "(startswith(lastname,'H') or numberofchildren eq 3) and firstname ne 'Grace'",
            {"Hamilton", "Dijkstra"},
        ),
        ("lastname in ('Knuth','Turing')", {"Knuth", "Turing"}),
        ("endswith(emailaddress1,'.org')", {"Turing", "Dijkstra"}),
        ("not startswith(lastname,'H') and numberofchildren le 1", {"Turing", "Liskov"}),
        ("numberofchildren ge 3", {"Dijkstra"}),
        ("middlename eq null and lastname eq 'Knuth'", {"Knuth"}),
        ("createdon ge 2000-01-01T00:00:00Z and lastname eq 'Hopper'", {"Hopper"}),
        ("createdon lt 2000-01-01T00:00:00Z", set()),
    ],
)
def test_filter(dv, people, expression, expected):
    """§A.3: the ``$filter`` subset real clients send (eq/ne/gt/lt, and/or,
    ``Microsoft.Dynamics.CRM.In``, contains/startswith, ``in``)."""
    assert set(lastnames(dv, f"$select=lastname&$filter={quote(expression)}")) == expected


def test_filter_with_spaces_as_plus(dv, people):
    """§3.9 / §5.5: query strings may encode spaces as ``+`` (requests ``params=``)."""
    response = dv.get("contacts", params={"$select": "lastname", "$filter": "lastname eq 'Knuth'"})
    assert "+" in response.url
    assert [row["lastname"] for row in response.json()["value"]] == ["Knuth"]


def test_top_and_orderby(dv, people):
    """§A.4: ``$top`` limits, ``$orderby`` sorts (``desc`` too)."""
    assert lastnames(dv, "$select=lastname&$orderby=lastname&$top=3") == [
        "Dijkstra",
        "Hamilton",
        "Hopper",
    ]
    assert lastnames(dv, "$select=lastname&$orderby=lastname desc&$top=2") == [
        "Turing",
        "Lovelace",
    ]
    ordered = lastnames(dv, "$select=lastname&$orderby=numberofchildren desc,lastname asc")
    assert ordered == ["Dijkstra", "Knuth", "Lovelace", "Hamilton", "Liskov", "Hopper", "Turing"]


def test_count(dv, people):
    """§2.2 annotations: ``$count=true`` adds ``@odata.count`` (the total, not the page)."""
    body = dv.get("contacts?$select=lastname&$count=true&$filter=numberofchildren ge 1").json()
    assert body["@odata.count"] == 5
    assert len(body["value"]) == 5


def test_paging_with_maxpagesize(dv, people):
    """§2.2: ``Prefer: odata.maxpagesize=N`` (echoed in ``Preference-Applied``); §A.4: pages
    linked by an absolute ``@odata.nextLink``, the last page without one."""
    headers = {"Prefer": "odata.maxpagesize=3"}
    response = dv.get("contacts?$select=lastname&$orderby=lastname", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=3"
    seen: list[str] = []
    pages = 0
    body = response.json()
    while True:
        pages += 1
        assert len(body["value"]) <= 3
        seen += [row["lastname"] for row in body["value"]]
        link = body.get("@odata.nextLink")
        if link is None:
            break
        assert link.startswith(f"{dv.api_url}/contacts?")
        assert pages < 10
        body = dv.get(link, headers=headers).json()
    assert pages == 3
    assert seen == sorted(LASTNAMES)


def test_next_link_carries_the_paging_cookie(dv, people):
    """§2.7, Microsoft Learn "Page results"
    (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results):
    the nextLink's ``$skiptoken`` is ``<cookie pagenumber="2" pagingcookie="…" istracking="False"
    />`` URL-encoded, the paging cookie itself URL-encoded again, naming the page's first and
    last ids; following the links returns every row once."""
    headers = {"Prefer": "odata.maxpagesize=2"}
    body = dv.get("contacts?$select=lastname", headers=headers).json()
    raw = urlsplit(body["@odata.nextLink"]).query.split("$skiptoken=", 1)[1]
    assert raw.startswith(
        "%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221%2522"
        "%253e%253ccontactid%2520last%253d%2522%257b"
    )
    assert raw.endswith("%253c%252fcookie%253e%22%20istracking=%22False%22%20/%3E")
    token = re.fullmatch(
        r'<cookie pagenumber="2" pagingcookie="([^"]+)" istracking="False" />', unquote(raw)
    )
    assert token is not None
    first, last = (body["value"][i]["contactid"].upper() for i in (0, 1))
    assert unquote(token.group(1)) == (
        f'<cookie page="1"><contactid last="{{{last}}}" first="{{{first}}}" /></cookie>'
    )
    seen = [row["contactid"] for row in body["value"]]
    while "@odata.nextLink" in body:
        body = dv.get(body["@odata.nextLink"], headers=headers).json()
        seen += [row["contactid"] for row in body["value"]]
    assert len(seen) == len(set(seen)) == len(PEOPLE)
    garbage = dv.get("contacts?$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E", headers=headers)
    assert garbage.status_code == 400


def test_paging_with_count(dv, people):
    """§2.2: ``@odata.count`` on a paged query is the total, not the page size."""
    body = dv.get(
        "contacts?$select=lastname&$count=true", headers={"Prefer": "odata.maxpagesize=2"}
    ).json()
    assert body["@odata.count"] == len(PEOPLE)
    assert len(body["value"]) == 2
    assert "@odata.nextLink" in body


def test_unknown_select_column_is_400(dv):
    """§4.9: unknown column in ``$select`` → 400 0x0 "Could not find a property named 'x' on
    type 'Microsoft.Dynamics.CRM.contact'."."""
    dv.assert_error(
        dv.get("contacts?$select=nosuchcolumn"),
        400,
        "0x0",
        "Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'.",
    )


def test_unknown_filter_column_is_400(dv):
    """§4.9: an unknown property in a query is a 400 with the same message."""
    dv.assert_error(
        dv.get("contacts?$filter=nosuchcolumn eq 1"),
        400,
        "0x0",
        "Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'.",
    )


def test_filter_with_parameter_alias(dv, people):
    """§A.3: parameter aliases (``… eq @p`` with ``@p='…'``)."""
    assert lastnames(dv, "$select=lastname&$filter=lastname eq @p&@p='Knuth'") == ["Knuth"]


def test_filter_on_lookup_value(dv, people):
    """§A.3: ``_parentaccountid_value eq <guid>`` style filters on lookup value properties."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    dv.patch(
        f"contacts({people['Knuth']})",
        json={"parentcustomerid_account@odata.bind": f"/accounts({account_id})"},
    )
    query = f"$select=lastname&$filter=_parentcustomerid_value eq {account_id}"
    assert lastnames(dv, query) == ["Knuth"]


def test_expand_single_valued_navigation(dv, people):
    """§4.1 / §4.4: ``$expand`` of a single-valued navigation property with nested
    ``$select``."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    dv.patch(
        f"contacts({people['Knuth']})",
        json={"parentcustomerid_account@odata.bind": f"/accounts({account_id})"},
    )
    response = dv.get(
        f"contacts({people['Knuth']})?$select=lastname"
        "&$expand=parentcustomerid_account($select=name)"
    )
    assert response.status_code == 200, response.text
    expanded = response.json()["parentcustomerid_account"]
    assert (expanded["accountid"], expanded["name"]) == (account_id, "Contoso")


def test_collection_valued_navigation_path(dv, people):
    """§5.1: ``GET accounts(<id>)/Account_Tasks?$select=subject`` — related rows through a
    collection-valued navigation property."""
    account_id = dv.create("accounts", {"name": "Contoso"})
    for name in ("Knuth", "Liskov"):
        dv.patch(
            f"contacts({people[name]})",
            json={"parentcustomerid_account@odata.bind": f"/accounts({account_id})"},
        )
    response = dv.get(f"accounts({account_id})/contact_customer_accounts?$select=lastname")
    assert response.status_code == 200, response.text
    assert sorted(row["lastname"] for row in response.json()["value"]) == ["Knuth", "Liskov"]


def test_unknown_orderby_column_is_400(dv):
    """§4.9: an unknown property in ``$orderby`` → 400 "Could not find a property named …"."""
    dv.assert_error(
        dv.get("contacts?$orderby=nosuchcolumn"),
        400,
        "0x0",
        "Could not find a property named 'nosuchcolumn' on type 'Microsoft.Dynamics.CRM.contact'.",
    )
