"""Conformance: hostile or malformed requests are refused, never executed or crashed on.

§2.6 (``$batch`` parts for another host or with a wrong ``Content-Length``, deep ``$filter``),
§8 (values of the optional headers) and §1.5 (an application the environment blocks, Learn:
https://learn.microsoft.com/power-platform/admin/control-app-access-environment).
"""

from __future__ import annotations

import json

import pytest
from conformance_support import Dataverse, msal_token, new_boundary

INVALID_ARGUMENT = "0x80040203"


def part(method, url, body=None, *, length=None):
    """One ``application/http`` part (§5.1), with an optional inner ``Content-Length``."""
    data = "" if body is None else json.dumps(body)
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary", ""]
    lines.append(f"{method} {url} HTTP/1.1")
    if body is not None:
        lines.append("Content-Type: application/json; type=entry")
    if length is not None:
        lines.append(f"Content-Length: {length(len(data.encode()))}")
    lines += ["", data]
    return "\r\n".join(lines)


def batch(dv, *parts):
    boundary = new_boundary("batch")
    body = "".join(f"--{boundary}\r\n{p}\r\n" for p in parts) + f"--{boundary}--\r\n"
    return dv.batch(body, boundary)


def test_part_for_another_host_refuses_the_whole_batch(dv):
    """§2.6: a part whose absolute URL names another host is never run, nor is anything else
    in the batch: 400 ``0x80060888`` as a plain JSON error (§5.4)."""
    response = batch(
        dv,
        part("POST", f"{dv.api_url}/contacts", {"lastname": "Here"}),
        part("POST", "https://elsewhere.example/api/data/v9.2/contacts", {"lastname": "There"}),
    )
    error = dv.assert_error(response, 400, "0x80060888")
    assert "elsewhere.example" in error["message"]
    assert dv.rows("contacts") == []


@pytest.mark.parametrize("url", ["http://{host}/api/data/v9.2/contacts", "{api}/contacts"])
def test_part_for_another_scheme_or_port_is_refused(dv, url):
    """§2.6: the origin is scheme, host and port: plain http, or another port, is another
    service."""
    host = dv.base_url.removeprefix("https://")
    other = dv.base_url.rsplit(":", 1)[0] + ":1/api/data/v9.2"
    response = batch(dv, part("POST", url.format(host=host, api=other), {"lastname": "X"}))
    dv.assert_error(response, 400, "0x80060888")
    assert dv.rows("contacts") == []


@pytest.mark.parametrize("wrong", [lambda n: n - 5, lambda n: n + 5, lambda _: "ten"])
def test_part_with_wrong_content_length_is_refused(dv, wrong):
    """§2.6: a ``Content-Length`` shorter or longer than the body (or not a number) refuses the
    batch: 400 ``0x80048d19``; nothing is written."""
    response = batch(
        dv,
        part("POST", "/api/data/v9.2/contacts", {"lastname": "First"}),
        part("POST", "/api/data/v9.2/contacts", {"lastname": "Second"}, length=wrong),
    )
    dv.assert_error(response, 400, "0x80048d19")
    assert dv.rows("contacts") == []


def test_part_with_right_content_length_runs(dv):
    """§5.1: a correct inner ``Content-Length`` is fine."""
    response = batch(
        dv, part("POST", "/api/data/v9.2/contacts", {"lastname": "Kept"}, length=lambda n: n)
    )
    assert response.status_code == 200, response.text
    assert [r["lastname"] for r in dv.rows("contacts", "$select=lastname")] == ["Kept"]


def test_deep_filter_is_400_not_500(dv):
    """§2.6: a ``$filter`` nested 5,000 levels deep → 400 ``0x80060888`` "The recursion limit
    has been exceeded."; the server keeps answering."""
    deep = "(" * 5000 + "lastname eq 'x'" + ")" * 5000
    dv.assert_error(
        dv.get(f"contacts?$filter={deep}"),
        400,
        "0x80060888",
        "The recursion limit has been exceeded.",
    )
    dv.assert_error(dv.get("contacts?$filter=" + "not " * 3000 + "donotemail"), 400, "0x80060888")
    assert dv.get("WhoAmI").status_code == 200


def test_ten_thousand_deep_filter_in_a_batch_is_400(dv):
    """§2.6 and §5.1 (GET URLs in a batch may be 64 KB): 10,000 levels → the part is 400."""
    deep = "(" * 10_000 + "lastname eq 'x'" + ")" * 10_000
    response = batch(dv, part("GET", f"/api/data/v9.2/contacts?$filter={deep}"))
    [answer] = dv.parts(response)
    dv.assert_error(answer, 400, "0x80060888", "The recursion limit has been exceeded.")


def test_long_and_chain_is_not_nesting(dv):
    """§2.6: 10,000 ``and`` terms are a flat chain, not recursion: answered 200."""
    dv.create("contacts", {"lastname": "x"})
    chain = " and ".join(["lastname eq 'x'"] * 2_000)
    response = batch(dv, part("GET", f"/api/data/v9.2/contacts?$filter={chain}&$select=lastname"))
    [answer] = dv.parts(response)
    assert answer.status == 200, answer.body
    assert [r["lastname"] for r in answer.json()["value"]] == ["x"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("MSCRM.BypassBusinessLogicExecution", "CustomSync"),
        ("MSCRM.BypassBusinessLogicExecution", "CustomAsync"),
        ("MSCRM.BypassBusinessLogicExecution", "CustomSync,CustomAsync"),
        ("MSCRM.BypassBusinessLogicExecution", "CustomAsync, CustomSync"),
        ("MSCRM.BypassBusinessLogicExecutionStepIds", "43484684-97df-ee11-904d-00224831e991"),
        ("MSCRM.BypassCustomPluginExecution", "true"),
        ("MSCRM.BypassCustomPluginExecution", "false"),
        ("MSCRM.SuppressCallbackRegistrationExpanderJob", "true"),
        ("MSCRM.SuppressDuplicateDetection", "false"),
        ("MSCRM.BypassBusinessLogicExecution", "null"),
    ],
)
def test_documented_optional_header_values_are_accepted(dv, header, value):
    """§8 (https://learn.microsoft.com/power-apps/developer/data-platform/bypass-custom-business-logic):
    the documented values write as usual (the primary user holds every privilege)."""
    response = dv.post("contacts", json={"lastname": "Ok"}, headers={header: value})
    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("MSCRM.BypassBusinessLogicExecution", "true"),
        ("MSCRM.BypassBusinessLogicExecution", "All"),
        ("MSCRM.BypassBusinessLogicExecution", "CustomSync,CustomSync"),
        ("MSCRM.BypassBusinessLogicExecution", "CustomSync,"),
        ("MSCRM.BypassBusinessLogicExecutionStepIds", "step-1"),
        ("MSCRM.BypassCustomPluginExecution", "yes"),
        ("MSCRM.SuppressCallbackRegistrationExpanderJob", "1"),
        ("MSCRM.SuppressDuplicateDetection", "maybe"),
    ],
)
def test_other_optional_header_values_are_refused(dv, header, value):
    """§8: any other value → 400 ``0x80040203`` naming the header; nothing is written, on a
    read too, and inside ``$batch`` as the part's error."""
    error = dv.assert_error(
        dv.post("contacts", json={"lastname": "No"}, headers={header: value}),
        400,
        INVALID_ARGUMENT,
    )
    assert header in error["message"]
    assert value in error["message"]
    dv.assert_error(dv.get("contacts", headers={header: value}), 400, INVALID_ARGUMENT)
    assert dv.rows("contacts") == []


def test_optional_header_value_inside_batch_part(dv):
    """§8 with §5.4: a part with an undocumented bypass value fails alone."""
    boundary = new_boundary("batch")
    inner = part("POST", "/api/data/v9.2/contacts", {"lastname": "No"}).replace(
        "Content-Type: application/json; type=entry",
        "Content-Type: application/json; type=entry\r\nMSCRM.BypassBusinessLogicExecution: Sync",
    )
    body = f"--{boundary}\r\n{inner}\r\n--{boundary}--\r\n"
    [answer] = dv.parts(dv.batch(body, boundary))
    dv.assert_error(answer, 400, INVALID_ARGUMENT)
    assert dv.rows("contacts") == []


def test_restricted_application_gets_0x80095ffc(dv, conformance_server):
    """§1.5 (app access control, https://learn.microsoft.com/power-platform/admin/control-app-access-environment):
    a blocked app still gets a token, but every Web API call answers 403 ``0x80095ffc``; lifting
    the block (or a reset) lets it through again."""
    client_id = conformance_server.target_config["client_id"]
    user = conformance_server.admin.restrict_api_access(client_id)
    assert user["api_restricted"] is True
    token = msal_token(conformance_server.target_config)
    assert "access_token" in token, token.get("error")
    message = (
        f"Access to Dataverse API is restricted for this application Id : '{client_id}'. "
        "Please contact your administrator for more information."
    )
    fresh = Dataverse(conformance_server, token["access_token"])
    with fresh.session:
        dv.assert_error(fresh.get("WhoAmI"), 403, "0x80095ffc", message)
        dv.assert_error(fresh.post("contacts", json={"lastname": "No"}), 403, "0x80095ffc")
        conformance_server.admin.restrict_api_access(client_id, restricted=False)
        assert fresh.get("WhoAmI").status_code == 200
    conformance_server.admin.restrict_api_access(client_id)
    conformance_server.admin.reset()
    assert dv.get("WhoAmI").status_code == 200
