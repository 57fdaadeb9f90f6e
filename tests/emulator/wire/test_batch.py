"""``$batch`` through ``wire.handle`` (§5). Bodies are written by hand, as clients send them."""

from __future__ import annotations

import re

import orjson
import pytest

from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.environment import Environment
from dataverse_emulator.wire import handle

BASE = "https://127.0.0.1:8443"
ROOT = f"{BASE}/api/data/v9.2"


@pytest.fixture
def env() -> Environment:
    return Environment.create(seed=17)


def part(method: str, url: str, body: dict[str, object] | None = None, content_id: str = "") -> str:
    head = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    if content_id:
        head += f"Content-ID: {content_id}\r\n"
    inner = f"{method} {url} HTTP/1.1\r\n"
    if body is not None:
        inner += "Content-Type: application/json; type=entry\r\n\r\n" + orjson.dumps(body).decode()
    else:
        inner += "\r\n"
    return f"{head}\r\n{inner}\r\n"


def change_set(parts: list[str], boundary: str = "changeset_1") -> str:
    inner = "".join(f"--{boundary}\r\n{p}" for p in parts) + f"--{boundary}--\r\n"
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{inner}'


def batch(env: Environment, items: list[str], prefer: str = "") -> tuple[Response, Request]:
    body = "".join(f"--batch_1\r\n{item}" for item in items) + "--batch_1--\r\n"
    headers = {"content-type": 'multipart/mixed; boundary="batch_1"'}
    if prefer:
        headers["prefer"] = prefer
    request = Request(
        "POST", "/api/data/v9.2/$batch", headers=headers, body=body.encode(), base_url=BASE
    )
    return handle(request, env), request


def statuses(response: Response) -> list[int]:
    return [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3})", response.body)]


def test_plain_creates(env: Environment) -> None:
    """§5.3: 200 multipart (batchresponse_ boundary); creates carry Location + OData-EntityId."""
    response, request = batch(
        env,
        [
            part("POST", "/api/data/v9.2/accounts", {"name": "a"}),
            part("POST", f"{ROOT}/accounts", {"name": "b"}),
        ],
    )
    assert response.status == 200
    assert response.header("OData-Version") == "4.0"
    assert (response.header("Content-Type") or "").startswith(
        "multipart/mixed; boundary=batchresponse_"
    )
    assert statuses(response) == [204, 204]
    assert response.body.count(b"Location: https://127.0.0.1:8443/api/data/v9.2/accounts(") == 2
    assert response.body.count(b"OData-EntityId: ") == 2
    assert env.store.count("account") == 2
    assert (request.context["operation_kind"], request.context["operation_count"]) == ("batch", 2)


def test_change_set_content_id_references(env: Environment) -> None:
    """§5.2: $n in a later body (@odata.bind) and URL (PATCH $1) inside the change set."""
    response, _ = batch(
        env,
        [
            change_set(
                [
                    part("POST", "/api/data/v9.2/accounts", {"name": "parent"}, "1"),
                    part(
                        "POST",
                        "/api/data/v9.2/contacts",
                        {"lastname": "child", "parentcustomerid_account@odata.bind": "$1"},
                        "2",
                    ),
                    part("PATCH", "$1", {"name": "renamed"}, "3"),
                ]
            )
        ],
    )
    assert response.status == 200
    assert b"changesetresponse_" in response.body
    assert b"Content-ID: 1" in response.body
    assert statuses(response) == [204, 204, 204]
    [account] = env.store.rows("account")
    [contact] = env.store.rows("contact")
    assert account["name"] == "renamed"
    assert contact["parentcustomerid"] == account["accountid"]


def test_failing_change_set_rolls_back(env: Environment) -> None:
    """§5.2, §5.4: one failure rolls back the change set; its response holds the error part."""
    response, _ = batch(
        env,
        [
            change_set(
                [
                    part("POST", "/api/data/v9.2/accounts", {"name": "a"}, "1"),
                    part("POST", "/api/data/v9.2/accounts", {"name": "x" * 161}, "2"),
                ]
            )
        ],
    )
    assert response.status == 400
    assert statuses(response) == [400]
    assert b"REQ_ID: " in response.body
    assert b"0x80044331" in response.body
    assert env.store.count("account") == 0


def test_stop_at_first_failure(env: Environment) -> None:
    """§5.4: no continue-on-error: stop; top status = the failure; earlier writes stay."""
    response, _ = batch(
        env,
        [
            part("POST", "/api/data/v9.2/accounts", {"name": "ok"}),
            part("POST", "/api/data/v9.2/accounts", {"name": "x" * 161}),
            part("POST", "/api/data/v9.2/accounts", {"name": "never"}),
        ],
    )
    assert response.status == 400
    assert statuses(response) == [204, 400]
    assert [r["name"] for r in env.store.rows("account")] == ["ok"]


def test_continue_on_error(env: Environment) -> None:
    """§5.4: with odata.continue-on-error, 200 and every part answered."""
    response, _ = batch(
        env,
        [
            part("POST", "/api/data/v9.2/accounts", {"name": "x" * 161}),
            part("POST", "/api/data/v9.2/accounts", {"name": "ok"}),
        ],
        prefer="odata.continue-on-error",
    )
    assert response.status == 200
    assert statuses(response) == [400, 204]
    assert env.store.count("account") == 1


def test_get_part_is_streaming_json(env: Environment) -> None:
    """§5.3: collection GETs come back with odata.streaming=true."""
    env.store.create("account", {"name": "a"})
    response, _ = batch(env, [part("GET", "/api/data/v9.2/accounts?$select=name")])
    assert statuses(response) == [200]
    assert b"application/json; odata.metadata=minimal; odata.streaming=true" in response.body
    assert b'"name":"a"' in response.body


def test_undeclared_content_id(env: Environment) -> None:
    """§5.2: "$1" outside a change set -> 400 "Content-ID Reference: '$1' does not exist ..."."""
    response, _ = batch(
        env,
        [part("POST", "/api/data/v9.2/contacts", {"parentcustomerid_account@odata.bind": "$1"})],
    )
    assert response.status == 400
    assert b"Content-ID Reference: '$1' does not exist in the batch context." in response.body


def test_more_than_1000_operations(env: Environment) -> None:
    """§5.1: at most 1,000 operations; more is rejected as a whole (JSON error, nothing runs)."""
    response, _ = batch(env, [part("POST", "/api/data/v9.2/accounts", {"name": "a"})] * 1001)
    assert response.status == 400
    assert "error" in orjson.loads(response.body)
    assert env.store.count("account") == 0


def test_malformed_body_is_json_error(env: Environment) -> None:
    """§5.4: a malformed batch is a plain JSON error, not multipart."""
    request = Request(
        "POST",
        "/api/data/v9.2/$batch",
        headers={"content-type": "application/json"},
        body=b"{}",
        base_url=BASE,
    )
    response = handle(request, env)
    assert response.status == 400
    assert "error" in orjson.loads(response.body)


def test_bare_lf_dialect(env: Environment) -> None:
    """§5.5: dataverse-api sends bare LF and an extra blank line before the body."""
    body = (
        "--batch_x\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        f"POST {ROOT}/accounts HTTP/1.1\nContent-Type: application/json; type=entry\n\n\n"
        '{"name": "x1"}\n\n--batch_x--\n'
    )
    request = Request(
        "POST",
        "/api/data/v9.2/$batch",
        headers={"content-type": "multipart/mixed; boundary=batch_x", "if-none-match": "null"},
        body=body.encode(),
        base_url=BASE,
    )
    response = handle(request, env)
    assert response.status == 200
    assert [r["name"] for r in env.store.rows("account")] == ["x1"]


def test_content_id_property_url(env: Environment) -> None:
    """§5.2: `PUT $1/lastname` with {"value": ...} addresses the record created as $1."""
    response, _ = batch(
        env,
        [
            change_set(
                [
                    part("POST", "/api/data/v9.2/contacts", {"lastname": "old"}, "1"),
                    part("PUT", "$1/lastname", {"value": "new"}, "2"),
                ]
            )
        ],
    )
    assert statuses(response) == [204, 204]
    assert [r["lastname"] for r in env.store.rows("contact")] == ["new"]


def test_metadata_get_parts(env: Environment) -> None:
    """§3.9: clients send ``EntityDefinitions`` GETs inside ``$batch`` (airbyte's dialect)."""
    url = (
        "/api/data/v9.2/EntityDefinitions(LogicalName='contact')/Attributes/"
        "Microsoft.Dynamics.CRM.DateTimeAttributeMetadata?$select=LogicalName,DateTimeBehavior"
    )
    response, _ = batch(
        env, [part("GET", url), part("GET", f"{ROOT}/EntityDefinitions(LogicalName='nosuch')")]
    )
    assert statuses(response) == [200, 404]
    assert b'"LogicalName":"birthdate"' in response.body
