"""Routing, versions, headers and cost-model facts of ``wire.handle`` (§2, §4.9)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import pytest

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.wire import handle

BASE = "https://127.0.0.1:8443"


@dataclass(frozen=True)
class User:
    client_id: str = "app-1"
    systemuser_id: str = "11111111-1111-4111-8111-111111111111"
    business_unit_id: str = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def env() -> Environment:
    return Environment.create(seed=5, users=[User()])


def send(
    env: Environment, method: str, path: str, query: str = "", **context: object
) -> tuple[Response, Request]:
    request = Request(method, path, query=query, base_url=BASE, context=dict(context))
    return handle(request, env), request


def error_of(response: Response) -> dict[str, str]:
    return orjson.loads(response.body)["error"]


def test_bad_version_segment(env: Environment) -> None:
    """§2.1: a bad version segment -> 400 0x80060888 "Requested API Version ..."."""
    response, _ = send(env, "GET", "/api/data/v9.1x/accounts")
    assert response.status == 400
    error = error_of(response)
    assert error["code"] == "0x80060888"
    assert error["message"].startswith("Requested API Version 'v9.1x' was not understood.")
    assert error["message"].endswith("(example: /api/data/v7.2/)")


def test_unknown_entity_set_is_case_sensitive(env: Environment) -> None:
    """§2.1: `Account` instead of `accounts` -> 404 "Resource not found for the segment"."""
    response, _ = send(env, "GET", "/api/data/v9.2/Account")
    assert response.status == 404
    assert error_of(response) == {
        "code": "0x80060888",
        "message": "Resource not found for the segment 'Account'.",
    }


def test_wrong_method_is_405(env: Environment) -> None:
    """§2.5: DELETE on a collection -> 405."""
    response, _ = send(env, "DELETE", "/api/data/v9.2/accounts")
    assert response.status == 405
    assert "does not support http method 'DELETE'" in error_of(response)["message"]


def test_malformed_key_is_query_syntax_error(env: Environment) -> None:
    """§4.3: a malformed key segment -> 400 0x8006088a "Bad Request - Error in query syntax."."""
    response, _ = send(env, "GET", "/api/data/v9.2/accounts(accountnumber='A1)")
    assert response.status == 400
    assert error_of(response) == {
        "code": "0x8006088a",
        "message": "Bad Request - Error in query syntax.",
    }


@pytest.mark.parametrize("path", ["/api/data/v9.2/WhoAmI", "/api/data/v9.2/WhoAmI()"])
def test_who_am_i(env: Environment, path: str) -> None:
    """§2.4: WhoAmI answers the caller's ids with the documented context and headers."""
    response, request = send(env, "GET", path, user=User())
    assert response.status == 200
    assert response.header("Content-Type") == "application/json; odata.metadata=minimal"
    assert response.header("OData-Version") == "4.0"
    body = orjson.loads(response.body)
    assert body == {
        "@odata.context": f"{BASE}/api/data/v9.2/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": User.business_unit_id,
        "UserId": User.systemuser_id,
        "OrganizationId": env.organization_id,
    }
    assert request.context["operation_kind"] == "other"


def test_every_answer_has_odata_version_and_request_id(env: Environment) -> None:
    """§2.3: OData-Version on every response; a service request id for support."""
    for method, path in [("GET", "/api/data/v9.2/accounts"), ("GET", "/api/data/v9.2/nope")]:
        response, _ = send(env, method, path)
        assert response.header("OData-Version") == "4.0"
        assert response.header("x-ms-service-request-id")


def test_metadata_is_routed(env: Environment) -> None:
    """§3.1: EntityDefinitions requests go to the metadata handler."""
    response, request = send(
        env, "GET", "/api/data/v9.2/EntityDefinitions(LogicalName='account')", "$select=LogicalName"
    )
    assert response.status == 200
    assert orjson.loads(response.body)["LogicalName"] == "account"
    assert request.context["operation_kind"] == "metadata"


def test_operation_kinds(env: Environment) -> None:
    """Cost model input: reads, single writes and bulk are told apart."""
    _, read = send(env, "GET", "/api/data/v9.2/accounts")
    assert read.context["operation_kind"] == "read"
    create = Request("POST", "/api/data/v9.2/accounts", base_url=BASE, body=b'{"name":"a"}')
    handle(create, env)
    assert (create.context["operation_kind"], create.context["operation_count"]) == ("single", 1)


def test_bulk_availability_probe(env: Environment) -> None:
    """§6.5: the sdkmessagefilters probe is non-empty only where bulk messages exist."""
    query = (
        "$select=sdkmessagefilterid&$filter=sdkmessageid/name eq @message and "
        "primaryobjecttypecode eq @table&@message='CreateMultiple'&@table='{}'"
    )
    ok, _ = send(env, "GET", "/api/data/v9.2/sdkmessagefilters", query.format("account"))
    assert len(orjson.loads(ok.body)["value"]) == 1
    none, _ = send(env, "GET", "/api/data/v9.2/sdkmessagefilters", query.format("listmember"))
    assert orjson.loads(none.body)["value"] == []


def test_unexpected_error_is_dataverse_500(
    env: Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """§4.9 "Generic": a failure inside the emulator still answers 500 0x80040216."""

    def broken(*_: object) -> None:
        raise RuntimeError

    monkeypatch.setattr(env.store, "rows", broken)
    response, _ = send(env, "GET", "/api/data/v9.2/accounts")
    assert response.status == 500
    assert error_of(response) == {"code": "0x80040216", "message": "An unexpected error occurred."}
