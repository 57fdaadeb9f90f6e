"""Headers of the token check's answers: what every Web API answer carries (§2.3, §7.3).

docs/dataverse.md §2.3 (Microsoft Learn, "Compose HTTP requests and handle errors",
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors):
``REQ_ID`` and ``x-ms-service-request-id`` are on every response, errors included; §1.5: the 401
carries ``WWW-Authenticate``. The environment's ``x-ms-dop-hint`` is on every answer
(docs/emulator-admin-api.md); the ``x-ms-ratelimit-*`` headers count a caller's budget, and a
401 has no caller (§11 #1).
"""

from __future__ import annotations

import pytest

from dataverse_emulator.testing import api_session, https_session

RATE_LIMIT_HEADERS = (
    "x-ms-ratelimit-burst-remaining-xrm-requests",
    "x-ms-ratelimit-time-remaining-xrm-requests",
)


def assert_every_answer_headers(response, dop_hint: str) -> None:
    assert response.headers["REQ_ID"]
    assert response.headers["x-ms-service-request-id"] == response.headers["REQ_ID"]
    assert response.headers["x-ms-dop-hint"] == dop_hint
    assert response.headers["OData-Version"] == "4.0"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-jwt", "Basic Zm9vOmJhcg=="])
def test_401_carries_request_id_and_dop_hint_but_no_budget(reset_emulator, authorization):
    """A missing or bad token: 401 + challenge, the request id pair and the dop hint."""
    headers = {"Authorization": authorization} if authorization else {}
    with https_session(reset_emulator) as http:
        response = http.get(f"{reset_emulator.api_url}/WhoAmI", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    assert_every_answer_headers(response, "4")
    assert not any(name in response.headers for name in RATE_LIMIT_HEADERS)


def test_401_request_ids_differ_and_dop_hint_follows_the_limits(emulator_factory):
    """Each answer has its own id; the hint is the environment's current setting (§7.3)."""
    server = emulator_factory(latency="zero")
    server.admin.set_limits(dop_hint=48)
    with https_session(server) as http:
        first, second = (http.get(f"{server.api_url}/WhoAmI", timeout=10) for _ in range(2))
    assert_every_answer_headers(first, "48")
    assert first.headers["REQ_ID"] != second.headers["REQ_ID"]


def test_403_for_a_blocked_application_carries_the_same_headers(emulator_factory):
    """§1.5: the 403 ``0x80095ffc`` of an application the environment blocks."""
    server = emulator_factory(latency="zero")
    session = api_session(server)
    server.admin.restrict_api_access(server.target_config["client_id"])
    response = session.get(f"{server.api_url}/WhoAmI", timeout=10)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "0x80095ffc"
    assert_every_answer_headers(response, "4")
