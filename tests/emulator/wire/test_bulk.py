"""Bulk messages through ``wire.handle`` (§6)."""

from __future__ import annotations

import time

import orjson
import pytest

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.wire import handle

BASE = "https://127.0.0.1:8443"
ROOT = f"{BASE}/api/data/v9.2"
ACCOUNT = "Microsoft.Dynamics.CRM.account"


@pytest.fixture
def env() -> Environment:
    return Environment.create(seed=13)


def bulk(
    env: Environment, entity_set: str, message: str, targets: list[dict[str, object]]
) -> tuple[Response, Request]:
    request = Request(
        "POST",
        f"/api/data/v9.2/{entity_set}/Microsoft.Dynamics.CRM.{message}",
        headers={"content-type": "application/json; charset=utf-8"},
        body=orjson.dumps({"Targets": targets}),
        base_url=BASE,
    )
    return handle(request, env), request


def error_of(response: Response) -> dict[str, str]:
    return orjson.loads(response.body)["error"]


def test_create_multiple_returns_ids_in_order(env: Environment) -> None:
    """§6.1, §11 #12: 200 with @odata.context and Ids in request order."""
    targets = [{"@odata.type": ACCOUNT, "name": f"n{i}"} for i in range(3)]
    response, request = bulk(env, "accounts", "CreateMultiple", targets)
    assert response.status == 200
    body = orjson.loads(response.body)
    assert (
        body["@odata.context"] == f"{ROOT}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse"
    )
    names = [env.store.retrieve("account", rid)["name"] for rid in body["Ids"]]
    assert names == ["n0", "n1", "n2"]
    assert (request.context["operation_kind"], request.context["operation_count"]) == ("bulk", 3)


def test_missing_odata_type_fails(env: Environment) -> None:
    """§4.6: @odata.type is required on every Targets item."""
    response, _ = bulk(env, "accounts", "CreateMultiple", [{"name": "x"}])
    assert response.status == 400
    assert "without a type name" in error_of(response)["message"]
    assert env.store.count("account") == 0


def test_wrong_odata_type_fails(env: Environment) -> None:
    """§6.1: the type must name the table of the entity set."""
    for type_name in ("Microsoft.Dynamics.CRM.contact", "Microsoft.Dynamics.CRM.nosuchtable"):
        response, _ = bulk(env, "accounts", "CreateMultiple", [{"@odata.type": type_name}])
        assert response.status == 400
    assert env.store.count("account") == 0


def test_one_bad_row_rolls_back_everything(env: Environment) -> None:
    """§6.5: on standard tables one bad row fails the request with that row's error."""
    targets = [
        {"@odata.type": ACCOUNT, "name": "ok"},
        {"@odata.type": ACCOUNT, "name": "x" * 161},
        {"@odata.type": ACCOUNT, "name": "also ok"},
    ]
    response, _ = bulk(env, "accounts", "CreateMultiple", targets)
    assert response.status == 400
    assert error_of(response)["code"] == "0x80044331"
    assert env.store.count("account") == 0


def test_duplicate_keys_in_create_multiple_fail(env: Environment) -> None:
    """§6.5: two rows with the same key in one CreateMultiple fail the whole request."""
    targets = [{"@odata.type": ACCOUNT, "accountnumber": "A"} for _ in range(2)]
    response, _ = bulk(env, "accounts", "CreateMultiple", targets)
    assert response.status == 412
    assert env.store.count("account") == 0


def test_update_multiple(env: Environment) -> None:
    """§6.2: targets carry the primary key; 204; a duplicate key only applies the first."""
    rid = env.store.create("account", {"name": "a"})["accountid"]
    targets = [
        {"@odata.type": ACCOUNT, "accountid": rid, "name": "first"},
        {"@odata.type": ACCOUNT, "accountid": rid, "name": "second"},
    ]
    response, _ = bulk(env, "accounts", "UpdateMultiple", targets)
    assert response.status == 204
    assert response.body == b""
    assert env.store.retrieve("account", rid)["name"] == "first"


def test_update_multiple_missing_record(env: Environment) -> None:
    """§6.5: "<Table> With Ids = <guid> Do Not Exist", nothing applied."""
    rid = env.store.create("account", {"name": "a"})["accountid"]
    missing = "00000000-0000-0000-0000-000000000009"
    targets = [
        {"@odata.type": ACCOUNT, "accountid": rid, "name": "changed"},
        {"@odata.type": ACCOUNT, "accountid": missing, "name": "x"},
    ]
    response, _ = bulk(env, "accounts", "UpdateMultiple", targets)
    assert response.status == 404
    assert error_of(response)["message"] == f"Account With Ids = {missing} Do Not Exist"
    assert env.store.retrieve("account", rid)["name"] == "a"


def test_upsert_multiple_by_odata_id(env: Environment) -> None:
    """§6.3: @odata.id addresses by alternate key; creates and updates; 204."""
    env.store.create("account", {"name": "old", "accountnumber": "1"})
    targets = [
        {"@odata.type": ACCOUNT, "name": "new", "@odata.id": "accounts(accountnumber='1')"},
        {"@odata.type": ACCOUNT, "name": "two", "@odata.id": "accounts(accountnumber='2')"},
    ]
    response, _ = bulk(env, "accounts", "UpsertMultiple", targets)
    assert response.status == 204
    rows = {r["accountnumber"]: r["name"] for r in env.store.rows("account")}
    assert rows == {"1": "new", "2": "two"}


def test_upsert_multiple_key_in_body_fails_on_create_path(env: Environment) -> None:
    """§6.3 pitfall: key column also in the body -> 400 0x80040216 on create, fine on update."""
    env.store.create("account", {"name": "old", "accountnumber": "1"})
    update = [
        {"@odata.type": ACCOUNT, "accountnumber": "1", "@odata.id": "accounts(accountnumber='1')"}
    ]
    assert bulk(env, "accounts", "UpsertMultiple", update)[0].status == 204
    create = [
        {"@odata.type": ACCOUNT, "accountnumber": "9", "@odata.id": "accounts(accountnumber='9')"}
    ]
    response, _ = bulk(env, "accounts", "UpsertMultiple", create)
    assert response.status == 400
    assert error_of(response) == {"code": "0x80040216", "message": "An unexpected error occurred."}


def test_upsert_multiple_duplicate_keys_fail(env: Environment) -> None:
    """§6.3: duplicate keys in one UpsertMultiple payload -> error, nothing written."""
    target = {"@odata.type": ACCOUNT, "name": "n", "@odata.id": "accounts(accountnumber='1')"}
    response, _ = bulk(env, "accounts", "UpsertMultiple", [dict(target), dict(target)])
    assert response.status >= 400
    assert env.store.count("account") == 0


def test_unsupported_table_answers_like_dataverse(env: Environment) -> None:
    """§6.5, F13: a table without bulk messages -> SdkEntityDoesNotSupportMessage."""
    response, _ = bulk(env, "listmembers", "CreateMultiple", [])
    assert response.status == 400
    assert error_of(response) == {
        "code": "0x80040800",
        "message": "The 'CreateMultiple' method does not support entities of type 'listmember'. "
        "MessageProcessorCache returned MessageProcessor.Empty. ",
    }


def test_create_multiple_thousand_rows_is_fast(env: Environment) -> None:
    """Appendix A.3: ≥ 20k records/s; 1,000 rows well under a second even on a busy machine."""
    targets = [
        {
            "@odata.type": "Microsoft.Dynamics.CRM.contact",
            "firstname": f"F{i}",
            "lastname": f"L{i}",
            "emailaddress1": f"u{i}@example.com",
            "birthdate": "1990-01-02",
            "numberofchildren": 2,
        }
        for i in range(1000)
    ]
    started = time.perf_counter()
    response, _ = bulk(env, "contacts", "CreateMultiple", targets)
    elapsed = time.perf_counter() - started
    assert response.status == 200
    assert len(orjson.loads(response.body)["Ids"]) == 1000
    assert elapsed < 0.5


def test_create_multiple_with_binds(env: Environment) -> None:
    """§6.1, §4.6: Targets may bind lookups by alternate key."""
    account = env.store.create("account", {"name": "a", "accountnumber": "A1"})["accountid"]
    target = {
        "@odata.type": "Microsoft.Dynamics.CRM.contact",
        "lastname": "c",
        "parentcustomerid_account@odata.bind": "/accounts(accountnumber='A1')",
    }
    response, _ = bulk(env, "contacts", "CreateMultiple", [target])
    assert response.status == 200
    [rid] = orjson.loads(response.body)["Ids"]
    assert env.store.retrieve("contact", rid)["parentcustomerid"] == account
