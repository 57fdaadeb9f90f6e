"""The control API under /_emulator/ (docs/emulator-admin-api.md), over HTTPS."""

from __future__ import annotations

import pytest

from dataverse_emulator.testing import api_session, https_session, running_emulator

ACCOUNT = {"name": "Contoso"}


@pytest.fixture(scope="module")
def server():
    with running_emulator(latency="zero") as running:
        yield running


@pytest.fixture
def fresh(server):
    server.admin.reset()
    return server


def test_health_needs_no_token(fresh):
    """Control endpoints live off the Dataverse namespace and need no bearer token."""
    response = https_session(fresh).get(f"{fresh.base_url}/_emulator/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_counters_by_kind_and_outcome(fresh):
    """Counters: requests by kind and outcome, token and discovery requests, 401s (A.2)."""
    session = api_session(fresh)
    session.post(f"{fresh.api_url}/accounts", json=ACCOUNT, timeout=5)
    session.get(f"{fresh.api_url}/accounts", timeout=5)
    https_session(fresh).get(f"{fresh.api_url}/accounts", timeout=5)
    counters = fresh.admin.counters()
    assert counters["requests"]["single"] == {"204": 1}
    assert counters["requests"]["read"] == {"200": 1, "401": 1}
    assert counters["operations"]["single"] == 1
    assert counters["token_requests"] == 1
    assert counters["unauthorized"] == 1
    assert counters["throttled"] == 0


def test_snapshot_and_reset(fresh):
    """Snapshot dumps the store; reset brings back the start-up state (records, counters)."""
    session = api_session(fresh)
    assert session.post(f"{fresh.api_url}/accounts", json=ACCOUNT, timeout=5).status_code == 204
    names = [row.get("name") for row in fresh.admin.snapshot().get("account", [])]
    assert names == ["Contoso"]
    fresh.admin.reset()
    assert fresh.admin.snapshot().get("account", []) == []
    assert fresh.admin.counters()["requests"] == {}
    # a token issued before the reset still works (reset clears revocations, not keys)
    assert session.get(f"{fresh.api_url}/accounts", timeout=5).status_code == 200


def test_faults_get_put_and_validation(fresh):
    """PUT /_emulator/faults replaces the rules; GET shows them with counters; a malformed
    plan is a 400 and leaves the old rules in place."""
    plan = {"seed": 5, "rules": [{"action": "error", "status": 503, "name": "down"}]}
    assert fresh.admin.set_faults(plan)["rules"][0]["name"] == "down"
    session = api_session(fresh)
    assert session.get(f"{fresh.api_url}/accounts", timeout=5).status_code == 503
    state = fresh.admin.faults()
    assert state["seed"] == 5
    assert (state["rules"][0]["matched"], state["rules"][0]["fired"]) == (1, 1)
    bad = https_session(fresh).put(
        f"{fresh.base_url}/_emulator/faults", json=[{"action": "nope"}], timeout=5
    )
    assert bad.status_code == 400
    assert "nope" in bad.json()["error"]
    assert fresh.admin.faults()["rules"][0]["name"] == "down"
    fresh.admin.reset()
    assert fresh.admin.faults()["rules"] == []


def test_revoke_tokens_one_user_or_all(fresh):
    """POST /_emulator/revoke-tokens: {"client_id"} revokes one user's tokens, {} all (§10 F2)."""
    first, second = api_session(fresh), api_session(fresh, fresh.user(1))
    url = f"{fresh.api_url}/WhoAmI"
    assert fresh.admin.revoke_tokens(fresh.user(1).client_id) == 1
    assert first.get(url, timeout=5).status_code == 200
    assert second.get(url, timeout=5).status_code == 401
    assert fresh.admin.revoke_tokens() >= 1  # earlier tests' tokens count too
    assert first.get(url, timeout=5).status_code == 401


def test_unknown_endpoint_and_method(fresh):
    """Unknown control endpoints are 404; a known one with the wrong method is 405."""
    http = https_session(fresh)
    assert http.get(f"{fresh.base_url}/_emulator/nothing", timeout=5).status_code == 404
    assert http.get(f"{fresh.base_url}/_emulator/reset", timeout=5).status_code == 405


def test_operations_count_bulk_records(fresh):
    """§7.6: every Targets item counts; the counters report operations per kind."""
    session = api_session(fresh)
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": f"n{i}"} for i in range(7)]
    response = session.post(
        f"{fresh.api_url}/accounts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": targets},
        timeout=5,
    )
    assert response.status_code == 200
    counters = fresh.admin.counters()
    assert counters["requests"]["bulk"] == {"200": 1}
    assert counters["operations"]["bulk"] == 7
