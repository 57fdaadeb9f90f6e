"""Navigation properties, money and annotations through ``wire.handle`` (§2.2, §4.1, §4.6, §4.8)."""

from __future__ import annotations

import re

import orjson
import pytest

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.wire import handle

BASE = "https://127.0.0.1:8443"
GUID = re.compile(r"\(([0-9a-f-]{36})\)$")
ALL = 'odata.include-annotations="*"'
FORMATTED = "@OData.Community.Display.V1.FormattedValue"


@pytest.fixture
def env() -> Environment:
    return Environment.create(seed=7)


def call(
    env: Environment, method: str, path: str, body: object = None, query: str = "", **headers: str
) -> Response:
    request = Request(
        method,
        "/api/data/v9.2/" + path,
        query=query,
        headers={k.replace("_", "-").lower(): v for k, v in headers.items()},
        body=b"" if body is None else orjson.dumps(body),
        base_url=BASE,
    )
    return handle(request, env)


def create(env: Environment, path: str, body: dict[str, object]) -> str:
    response = call(env, "POST", path, body)
    assert response.status == 204, response.body
    match = GUID.search(response.header("OData-EntityId") or "")
    assert match
    return match.group(1)


def test_deep_insert_is_atomic(env: Environment) -> None:
    """§4.1 deep insert: a bad nested record fails the request and writes nothing."""
    response = call(
        env,
        "POST",
        "accounts",
        {
            "name": "Parent",
            "primarycontactid": {"lastname": "Primary"},
            "contact_customer_accounts": [{"lastname": "Ok"}, {"lastname": "x", "nosuch": 1}],
        },
    )
    assert response.status == 400, response.body
    assert (env.store.count("account"), env.store.count("contact")) == (0, 0)


def test_deep_insert_binds_both_directions(env: Environment) -> None:
    """§4.1: nested single-valued records are bound to the parent, collections point at it."""
    account_id = create(
        env,
        "accounts",
        {
            "name": "Parent",
            "primarycontactid": {"lastname": "Primary"},
            "contact_customer_accounts": [{"lastname": "A"}, {"lastname": "B"}],
        },
    )
    account = env.store.retrieve("account", account_id)
    assert env.store.retrieve("contact", account["primarycontactid"])["lastname"] == "Primary"
    children = [r for r in env.store.rows("contact") if r.get("parentcustomerid") == account_id]
    assert sorted(r["lastname"] for r in children) == ["A", "B"]


def test_expand_collection_with_nested_options(env: Environment) -> None:
    """§4.4: ``$expand`` of a collection-valued property honours nested $filter/$orderby."""
    account_id = create(env, "accounts", {"name": "Contoso"})
    for name in ("Zed", "Amy", "Bob"):
        bind = {"parentcustomerid_account@odata.bind": f"/accounts({account_id})"}
        create(env, "contacts", {"lastname": name, **bind})
    query = (
        "$select=name&$expand=contact_customer_accounts($select=lastname;"
        "$filter=lastname ne 'Bob';$orderby=lastname)"
    )
    response = call(env, "GET", f"accounts({account_id})", query=query)
    assert response.status == 200, response.body
    body = orjson.loads(response.body)
    assert [c["lastname"] for c in body["contact_customer_accounts"]] == ["Amy", "Zed"]
    assert body["@odata.context"].endswith(
        "#accounts(name,contact_customer_accounts(lastname))/$entity"
    )


def test_unknown_expand_is_400(env: Environment) -> None:
    """§4.9: an unknown navigation property in ``$expand`` → 400 "Could not find a property"."""
    response = call(env, "GET", "contacts", query="$expand=nosuchnav")
    assert response.status == 400
    assert "'nosuchnav'" in orjson.loads(response.body)["error"]["message"]


def test_money_has_four_decimals_and_formatted_values(env: Environment) -> None:
    """§4.6 money with 4 decimals; §2.2 formatted money, dates, booleans and choices."""
    record_id = create(
        env,
        "contacts",
        {
            "lastname": "M",
            "annualincome": 1234.5,
            "birthdate": "1815-12-10",
            "donotemail": True,
            "lastonholdtime": "2021-04-04T20:05:00Z",
        },
    )
    query = "$select=annualincome,birthdate,donotemail,lastonholdtime"
    response = call(env, "GET", f"contacts({record_id})", query=query, prefer=ALL)
    assert b'"annualincome":1234.5000' in response.body
    body = orjson.loads(response.body)
    assert body[f"annualincome{FORMATTED}"] == "$1,234.50"
    assert body[f"birthdate{FORMATTED}"] == "12/10/1815"
    assert body[f"donotemail{FORMATTED}"] == "Do Not Allow"
    assert body[f"lastonholdtime{FORMATTED}"] == "4/4/2021 8:05 PM"
    assert response.header("Preference-Applied") == ALL


def test_annotation_patterns_select_and_exclude(env: Environment) -> None:
    """§2.2: ``odata.include-annotations`` takes names and ``ns.*``; ``-`` excludes."""
    account_id = create(env, "accounts", {"name": "Contoso"})
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({account_id})"}
    record_id = create(env, "contacts", {"lastname": "X", "gendercode": 1, **bind})
    prefer = (
        'odata.include-annotations="Microsoft.Dynamics.CRM.*,'
        '-Microsoft.Dynamics.CRM.lookuplogicalname"'
    )
    response = call(
        env,
        "GET",
        f"contacts({record_id})",
        query="$select=gendercode,_parentcustomerid_value",
        prefer=prefer,
    )
    body = orjson.loads(response.body)
    lookup = "_parentcustomerid_value@Microsoft.Dynamics.CRM."
    assert body[lookup + "associatednavigationproperty"] == "parentcustomerid_account"
    assert lookup + "lookuplogicalname" not in body
    assert f"gendercode{FORMATTED}" not in body


def test_error_annotations_only_when_asked(env: Environment) -> None:
    """§4.8: ``@Microsoft.PowerApps.CDS.*`` error members appear only with the preference."""
    missing = "00000000-0000-0000-0000-000000000001"
    plain = orjson.loads(call(env, "GET", f"contacts({missing})").body)["error"]
    assert set(plain) == {"code", "message"}
    error = orjson.loads(call(env, "GET", f"contacts({missing})", prefer=ALL).body)["error"]
    assert error["@Microsoft.PowerApps.CDS.ErrorDetails.SubErrorCode"] == str(0x80040217 - 2**32)
    assert error["@Microsoft.PowerApps.CDS.InnerError.Message"] == error["message"]
    assert "80040217" in error["@Microsoft.PowerApps.CDS.HelpLink"]


def test_orderby_related_column_and_unknown_navigation(env: Environment) -> None:
    """§4.9: ``$orderby`` names columns or ``<navigation>/<column>``; unknown names are 400."""
    for account, contact in (("Zeta", "A"), ("Alpha", "B")):
        account_id = create(env, "accounts", {"name": account})
        bind = {"parentcustomerid_account@odata.bind": f"/accounts({account_id})"}
        create(env, "contacts", {"lastname": contact, **bind})
    query = "$select=lastname&$orderby=parentcustomerid_account/name"
    body = orjson.loads(call(env, "GET", "contacts", query=query).body)
    assert [row["lastname"] for row in body["value"]] == ["B", "A"]
    for bad in ("nosuchnav/name", "parentcustomerid_account/nosuch"):
        response = call(env, "GET", "contacts", query=f"$orderby={bad}")
        assert response.status == 400, bad


def test_representation_echoes_both_preferences(env: Environment) -> None:
    """§2.2: ``Preference-Applied`` echoes return=representation and the annotations."""
    response = call(env, "POST", "accounts", {"name": "A"}, prefer=f"return=representation,{ALL}")
    assert response.status == 201
    assert response.header("Preference-Applied") == f"return=representation,{ALL}"
