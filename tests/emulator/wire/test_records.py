"""Record endpoints through ``wire.handle`` (§4.1-§4.9)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
import pytest

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.state.errors import Kind
from dataverse_emulator.state.store import RecordRule
from dataverse_emulator.wire import handle

BASE = "https://127.0.0.1:8443"
ROOT = f"{BASE}/api/data/v9.2"
GUID = re.compile(r"\(([0-9a-f-]{36})\)$")
MISSING = "00000000-0000-0000-0000-000000000001"
JSON = "application/json; odata.metadata=minimal"


@dataclass(frozen=True)
class User:
    client_id: str = "app-1"
    systemuser_id: str = "11111111-1111-4111-8111-111111111111"
    business_unit_id: str = "22222222-2222-4222-8222-222222222222"


class Api:
    def __init__(self, env: Environment) -> None:
        self.env = env

    def __call__(
        self,
        method: str,
        path: str,
        body: object = None,
        query: str = "",
        **headers: str,
    ) -> Response:
        request = Request(
            method,
            "/api/data/v9.2/" + path,
            query=query,
            headers={k.replace("_", "-").lower(): v for k, v in headers.items()},
            body=b"" if body is None else orjson.dumps(body),
            base_url=BASE,
            context={"user": User()},
        )
        return handle(request, self.env)

    def create(self, path: str, body: dict[str, object]) -> str:
        response = self("POST", path, body)
        assert response.status == 204, response.body
        match = GUID.search(response.header("OData-EntityId") or "")
        assert match
        return match.group(1)


@pytest.fixture
def api() -> Api:
    return Api(Environment.create(seed=11, users=[User()]))


def body_of(response: Response) -> dict[str, object]:
    return orjson.loads(response.body)


def test_create_204_with_entity_id(api: Api) -> None:
    """§4.1: POST -> 204, OData-EntityId {org}/api/data/v9.2/{set}({guid}), no body."""
    response = api("POST", "accounts", {"name": "Sample Account", "creditonhold": False})
    assert response.status == 204
    assert response.body == b""
    entity_id = response.header("OData-EntityId")
    assert entity_id is not None
    assert GUID.search(entity_id)
    assert entity_id.startswith(f"{ROOT}/accounts(")
    assert response.header("OData-Version") == "4.0"


def test_create_return_representation(api: Api) -> None:
    """§4.1: return=representation -> 201, body with context/etag, NO OData-EntityId."""
    response = api(
        "POST",
        "accounts",
        {"name": "Sample Account", "revenue": 5000000, "address1_latitude": 47.639583},
        prefer="return=representation",
    )
    assert response.status == 201
    assert response.header("OData-EntityId") is None
    assert response.header("Preference-Applied") == "return=representation"
    assert response.header("Content-Type") == JSON
    body = body_of(response)
    assert body["@odata.context"] == f"{ROOT}/$metadata#accounts/$entity"
    assert re.fullmatch(r'W/"\d+"', str(body["@odata.etag"]))
    assert body["name"] == "Sample Account"
    assert body["address1_latitude"] == 47.63958
    assert body["_transactioncurrencyid_value"] == api.env.currency_id
    assert body["_ownerid_value"] == User.systemuser_id


def test_retrieve_with_select(api: Api) -> None:
    """§4.1: $select limits the properties; the primary id is always returned."""
    rid = api.create("accounts", {"name": "a", "accountnumber": "A-1"})
    response = api("GET", f"accounts({rid})", query="$select=name")
    assert response.status == 200
    body = body_of(response)
    assert body["@odata.context"] == f"{ROOT}/$metadata#accounts(name)/$entity"
    assert set(body) == {"@odata.context", "@odata.etag", "name", "accountid"}


def test_unknown_select_column(api: Api) -> None:
    """§4.9: unknown column in $select -> 400 0x0 "Could not find a property named ..."."""
    response = api("GET", "accounts", query="$select=fullname")
    assert response.status == 400
    assert body_of(response)["error"] == {
        "code": "0x0",
        "message": "Could not find a property named 'fullname' on type "
        "'Microsoft.Dynamics.CRM.account'.",
    }


def test_update_if_match_missing_is_404(api: Api) -> None:
    """§4.4: If-Match: * on a missing record -> 404 "<table> With Id = <guid> Does Not Exist"."""
    response = api("PATCH", f"accounts({MISSING})", {"name": "x"}, if_match="*")
    assert response.status == 404
    assert response.header("Content-Type") == JSON
    assert body_of(response)["error"] == {
        "code": "0x80040217",
        "message": f"account With Id = {MISSING} Does Not Exist",
    }
    assert api.env.store.count("account") == 0


def test_update_existing(api: Api) -> None:
    """§4.2: PATCH with If-Match: * -> 204; return=representation -> 200 with body."""
    rid = api.create("accounts", {"name": "a"})
    assert api("PATCH", f"accounts({rid})", {"name": "b"}, if_match="*").status == 204
    response = api(
        "PATCH", f"accounts({rid})", {"name": "c"}, if_match="*", prefer="return=representation"
    )
    assert response.status == 200
    assert body_of(response)["name"] == "c"


def test_if_none_match_existing_is_412(api: Api) -> None:
    """§4.4: If-None-Match: * on an existing record -> 412 0x80040237."""
    rid = api.create("accounts", {"name": "a"})
    response = api("PATCH", f"accounts({rid})", {"name": "x"}, if_none_match="*")
    assert response.status == 412
    assert body_of(response)["error"] == {
        "code": "0x80040237",
        "message": "A record with matching key values already exists.",
    }


def test_if_none_match_null_is_ignored(api: Api) -> None:
    """§2.2: `If-None-Match: null` is sent on every request and must not block updates."""
    rid = api.create("accounts", {"name": "a"})
    assert api("PATCH", f"accounts({rid})", {"name": "x"}, if_none_match="null").status == 204


def test_stale_etag_is_412(api: Api) -> None:
    """§4.4: If-Match with a stale ETag -> 412 RowVersion message."""
    rid = api.create("accounts", {"name": "a"})
    response = api("PATCH", f"accounts({rid})", {"name": "x"}, if_match='W/"1"')
    assert response.status == 412
    assert "doesn't match the RowVersion" in body_of(response)["error"]["message"]


def test_upsert_by_composite_style_key(api: Api) -> None:
    """§4.3: upsert by key -> 204 + OData-EntityId with the key; 201/200 with representation."""
    response = api("PATCH", "accounts(accountnumber='A%2F1')", {"name": "one"})
    assert response.status == 204
    assert response.header("OData-EntityId") == f"{ROOT}/accounts(accountnumber='A%2F1')"
    created = api(
        "PATCH", "accounts(accountnumber='B1')", {"name": "b"}, prefer="return=representation"
    )
    assert created.status == 201
    assert body_of(created)["accountnumber"] == "B1"
    updated = api(
        "PATCH", "accounts(accountnumber='B1')", {"name": "b2"}, prefer="return=representation"
    )
    assert updated.status == 200
    rows = api.env.store.rows("account")
    assert sorted(r["accountnumber"] for r in rows) == ["A/1", "B1"]


def test_upsert_by_guid_creates(api: Api) -> None:
    """§4.3: PATCH set(<guid>) without If-Match creates the record with that GUID."""
    rid = "7eb682f1-ca75-e511-80d4-00155d2a68d1"
    assert api("PATCH", f"accounts({rid})", {"name": "x"}).status == 204
    assert api("GET", f"accounts({rid})").status == 200


def test_delete(api: Api) -> None:
    """§4.5: DELETE -> 204; again -> 404."""
    rid = api.create("accounts", {"name": "a"})
    assert api("DELETE", f"accounts({rid})").status == 204
    again = api("DELETE", f"accounts({rid})")
    assert again.status == 404
    assert body_of(again)["error"]["code"] == "0x80040217"


def test_bind_and_read_lookup(api: Api) -> None:
    """§4.6: write via `<nav>@odata.bind` (GUID or key, with or without /), read `_x_value`."""
    account = api.create("accounts", {"name": "a", "accountnumber": "A1"})
    first = api.create(
        "contacts",
        {"lastname": "x", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    second = api.create(
        "contacts",
        {"lastname": "y", "parentcustomerid_account@odata.bind": "accounts(accountnumber='A1')"},
    )
    for rid in (first, second):
        response = api(
            "GET",
            f"contacts({rid})",
            query="$select=_parentcustomerid_value",
            prefer='odata.include-annotations="*"',
        )
        body = body_of(response)
        assert body["_parentcustomerid_value"] == account
        assert body["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"


def test_lookup_via_logical_name_is_undeclared_property(api: Api) -> None:
    """§4.7: `parentcustomerid@odata.bind` -> 400 "An undeclared property ..."."""
    account = api.create("accounts", {"name": "a"})
    response = api(
        "POST",
        "contacts",
        {"lastname": "x", "parentcustomerid@odata.bind": f"/accounts({account})"},
    )
    assert response.status == 400
    error = body_of(response)["error"]
    assert error["code"] == "0x0"
    assert (
        "An undeclared property 'parentcustomerid' which only has property annotations"
        in error["message"]
    )


def test_unknown_column_payload_error(api: Api) -> None:
    """§4.9: unknown body member -> 400 0x80048d19 with the documented message shape."""
    response = api("POST", "contacts", {"ccl3016_NextofKinRequired": True})
    assert response.status == 400
    error = body_of(response)["error"]
    assert error["code"] == "0x80048d19"
    assert error["message"].startswith(
        "Error identified in Payload provided by the user for Entity :'contacts', For more "
        "information on this error please follow this help link "
        "https://go.microsoft.com/fwlink/?linkid=2195293 ----> InnerException : "
        "Microsoft.Crm.CrmException: Invalid property 'ccl3016_NextofKinRequired' was found in "
        "entity 'Microsoft.Dynamics.CRM.contact'."
    )


def test_string_too_long(api: Api) -> None:
    """§4.9: MaxLength exceeded -> 400 0x80044331 (two spaces after "occurred.")."""
    response = api("POST", "accounts", {"name": "x" * 161})
    assert response.status == 400
    assert body_of(response)["error"] == {
        "code": "0x80044331",
        "message": "A validation error occurred.  The length of the 'name' attribute of the "
        "'account' entity exceeded the maximum allowed length of '160'.",
    }


def test_malformed_json(api: Api) -> None:
    """§4.9: a body that is not JSON is a payload error (400), not a crash."""
    request = Request("POST", "/api/data/v9.2/accounts", body=b"{nope", base_url=BASE)
    response = handle(request, api.env)
    assert response.status == 400
    assert body_of(response)["error"]["code"] == "0x80048d19"


def test_query_filter_order_top_count(api: Api) -> None:
    """§4: $filter (eq, contains, and/or), $orderby, $top, $count=true."""
    for name, number in [("Contoso", 3), ("Fabrikam", 1), ("Contoso Ltd", 2)]:
        api.create("accounts", {"name": name, "numberofemployees": number})
    response = api(
        "GET",
        "accounts",
        query="$select=name&$filter=contains(name,'contoso') or numberofemployees gt 5"
        "&$orderby=numberofemployees desc&$top=5&$count=true",
    )
    body = body_of(response)
    assert body["@odata.context"] == f"{ROOT}/$metadata#accounts(name)"
    assert body["@odata.count"] == 2
    assert [row["name"] for row in body["value"]] == ["Contoso", "Contoso Ltd"]


def test_paging_with_maxpagesize(api: Api) -> None:
    """§2.2: odata.maxpagesize -> @odata.nextLink and Preference-Applied; the link continues."""
    for index in range(5):
        api.create("accounts", {"name": f"n{index}"})
    first = api("GET", "accounts", query="$select=name", prefer="odata.maxpagesize=2")
    assert first.header("Preference-Applied") == "odata.maxpagesize=2"
    body = body_of(first)
    assert len(body["value"]) == 2
    names = [row["name"] for row in body["value"]]
    link = str(body["@odata.nextLink"])
    while link:
        parts = urlsplit(link)
        assert f"{parts.scheme}://{parts.netloc}" == BASE
        page = body_of(
            api(
                "GET",
                parts.path.split("/v9.2/")[1],
                query=parts.query,
                prefer="odata.maxpagesize=2",
            )
        )
        names += [row["name"] for row in page["value"]]
        link = str(page.get("@odata.nextLink") or "")
    assert names == [f"n{i}" for i in range(5)]


def test_conditional_get_304(api: Api) -> None:
    """§4.4: If-None-Match with the current ETag -> 304."""
    rid = api.create("accounts", {"name": "a"})
    tag = api("GET", f"accounts({rid})").header("ETag") or ""
    assert api("GET", f"accounts({rid})", if_none_match=tag).status == 304
    api("PATCH", f"accounts({rid})", {"name": "b"}, if_match="*")
    assert api("GET", f"accounts({rid})", if_none_match=tag).status == 200


def test_single_property_put_and_delete(api: Api) -> None:
    """§4.2: PUT .../name {"value": ...} -> 204; DELETE .../description -> 204."""
    rid = api.create("accounts", {"name": "a", "description": "d"})
    assert api("PUT", f"accounts({rid})/name", {"value": "b"}).status == 204
    assert api("DELETE", f"accounts({rid})/description").status == 204
    body = body_of(api("GET", f"accounts({rid})/name"))
    assert body["value"] == "b"
    assert api.env.store.retrieve("account", rid)["description"] is None


def test_plugin_error_rule(api: Api) -> None:
    """§4.9: an injected plug-in error surfaces as 400 0x80040265 with its message."""
    api.env.store.record_rules.append(
        RecordRule(None, {"name": "boom"}, Kind.BAD_REQUEST, "0x80040265", "Example Error Message.")
    )
    response = api("POST", "accounts", {"name": "boom"})
    assert response.status == 400
    assert body_of(response)["error"] == {"code": "0x80040265", "message": "Example Error Message."}


def test_filter_on_lookup_value(api: Api) -> None:
    """§4.6: lookups are filtered by their `_x_value` property (GUID compared by value)."""
    account = api.create("accounts", {"name": "a"})
    bind = {"parentcustomerid_account@odata.bind": f"/accounts({account})"}
    child = api.create("contacts", {"lastname": "child", **bind})
    api.create("contacts", {"lastname": "orphan"})
    response = api(
        "GET",
        "contacts",
        query=f"$select=lastname&$filter=_parentcustomerid_value eq {account.upper()}",
    )
    assert [row["contactid"] for row in body_of(response)["value"]] == [child]


def test_retrieve_without_select_lists_every_property(api: Api) -> None:
    """§4.6: every property comes back (null when unset); lookup shadows are not properties."""
    rid = api.create("contacts", {"lastname": "x"})
    body = body_of(api("GET", f"contacts({rid})"))
    assert body["lastname"] == "x"
    assert body["firstname"] is None
    assert "_parentcustomerid_value" in body
    assert "parentcustomerid" not in body
    assert "parentcustomeridname" not in body


def test_query_lookup_annotation(api: Api) -> None:
    """§2.2: include-annotations adds lookuplogicalname to `_x_value` in collections too."""
    account = api.create("accounts", {"name": "a"})
    api.create(
        "contacts",
        {"lastname": "c", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
    )
    response = api(
        "GET",
        "contacts",
        query="$select=_parentcustomerid_value",
        prefer='odata.include-annotations="*"',
    )
    [row] = body_of(response)["value"]
    assert row["_parentcustomerid_value"] == account
    assert row["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert response.header("Preference-Applied") == 'odata.include-annotations="*"'
