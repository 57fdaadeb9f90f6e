"""Conformance: malformed requests get Dataverse-shaped 4xx answers; concurrent clients.

Every bad request below must be answered with the §4.8 error body (never a stack trace or an
HTML page) and leave the server answering; §2.5 lists the statuses Dataverse uses.
"""

from __future__ import annotations

import threading

import pytest
from conformance_support import Dataverse, msal_token

MALFORMED_BODIES = [
    b'{"lastname": "unterminated',
    b"{'lastname': 'single quotes'}",
    b"",
    b'["an", "array"]',
    b'"a string"',
    b"\xff\xfe\x00binary",
]


@pytest.mark.parametrize("body", MALFORMED_BODIES)
def test_malformed_json_body_is_400(dv, body):
    """§4.8 / §2.5: a body that is not a JSON object → 400 with the error body; nothing is
    stored; the server still answers."""
    response = dv.post("contacts", data=body, headers={"Content-Type": "application/json"})
    dv.assert_error(response, 400)
    assert dv.rows("contacts") == []
    assert dv.get("WhoAmI").status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "$filter=lastname eq",
        "$filter=(lastname eq 'x'",
        "$filter=lastname eq 'unterminated",
        "$filter=lastname wibble 'x'",
        "$top=abc",
        "$top=-1",
        "$orderby=lastname sideways",
        "$select=",
        "$count=maybe",
    ],
)
def test_bad_odata_syntax_is_400(dv, query):
    """§2.5: 400 for an invalid argument, in the §4.8 error shape (a query syntax error was
    observed as 0x8006088a "Bad Request - Error in query syntax.", §4.3)."""
    dv.assert_error(dv.get(f"contacts?{query}"), 400)
    assert dv.get("WhoAmI").status_code == 200


@pytest.mark.parametrize("segment", ["nosuchset", "Account", "Contacts"])
def test_unknown_entity_set_is_404(dv, segment):
    """§2.1: unknown entity set → 404 0x80060888 "Resource not found for the segment '<x>'.";
    names are case-sensitive (``Account``)."""
    dv.assert_error(
        dv.get(segment),
        404,
        "0x80060888",
        f"Resource not found for the segment '{segment}'.",
    )


def test_bad_api_version_is_400(dv):
    """§2.1: bad version segment → 400 0x80060888 "Requested API Version 'data' was not
    understood. …"."""
    response = dv.session.get(f"{dv.base_url}/api/data/data/WhoAmI", timeout=30)
    dv.assert_error(
        response,
        400,
        "0x80060888",
        "Requested API Version 'data' was not understood. Please provide in the format "
        "/api/data/v<Major>.<Minor>/ (example: /api/data/v7.2/)",
    )


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "PUT"])
def test_wrong_method_on_collection_is_405(dv, method):
    """§2.5: 405 for the wrong method on a resource, e.g. DELETE/PATCH on a collection."""
    dv.create("contacts", {"lastname": "Survivor"})
    dv.assert_error(dv.request(method, "contacts", json={"lastname": "X"}), 405)
    assert [row["lastname"] for row in dv.rows("contacts", "$select=lastname")] == ["Survivor"]


def test_oversized_body_is_413(emulator_factory):
    """§2.5 / §7.5: "Request too large" → 413, in the error shape; the server answers
    afterwards."""
    server = emulator_factory(latency="zero", max_body_bytes=4096)

    dv = Dataverse(server, msal_token(server.target_config)["access_token"])
    response = dv.post("contacts", json={"lastname": "x" * 10_000})
    dv.assert_error(response, 413)
    assert dv.get("WhoAmI").status_code == 200
    assert dv.rows("contacts") == []


def test_server_answers_after_abuse(dv):
    """Issue item 8: after a burst of malformed requests the server still serves writes."""
    for body in MALFORMED_BODIES:
        dv.post("contacts", data=body, headers={"Content-Type": "application/json"})
    dv.get("contacts?$filter=(((")
    dv.post("$batch", data=b"garbage", headers={"Content-Type": "multipart/mixed; boundary=x"})
    record_id = dv.create("contacts", {"lastname": "Still here"})
    assert dv.get(f"contacts({record_id})?$select=lastname").json()["lastname"] == "Still here"


def test_concurrent_clients_see_consistent_state(dv):
    """Issue item 8: threads creating distinct rows at once: every create succeeds, ids are
    distinct, and every row is stored exactly once."""
    threads_count, per_thread = 6, 10
    ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def work(index):
        client = Dataverse(dv.server, dv.token)
        with client.session:
            for row in range(per_thread):
                response = client.post("contacts", json={"lastname": f"T{index}-{row}"})
                with lock:
                    if response.status_code == 204:
                        ids.append(response.headers["OData-EntityId"])
                    else:
                        failures.append(response.text)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    total = threads_count * per_thread
    assert len(set(ids)) == total
    body = dv.get("contacts?$select=lastname&$count=true").json()
    assert body["@odata.count"] == total
    names = sorted(row["lastname"] for row in body["value"])
    assert names == sorted(f"T{i}-{r}" for i in range(threads_count) for r in range(per_thread))
