"""Fault injection (reference §7.8, §10 F1/F2/F11, §10.2): seeded rules, first match wins."""

from __future__ import annotations

import time

import msal
import pytest
import requests

from dataverse_emulator.faults import FaultRule, Faults, classify, entity_set
from dataverse_emulator.http import Request, Response
from dataverse_emulator.state.errors import Kind
from dataverse_emulator.state.store import RecordRule
from dataverse_emulator.testing import api_session, https_session

BULK = "/api/data/v9.2/accounts/Microsoft.Dynamics.CRM.CreateMultiple"
GUID = "00000000-0000-0000-0000-000000000001"
BROKEN = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
"""What requests raises when the connection breaks mid-response (IncompleteRead)."""


class Recorder:
    """Stand-in wire that records what reached it (faults must never write state)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, request, env):
        self.calls.append(f"{request.method} {request.path}")
        request.context["operation_kind"] = classify(request.method, request.path)
        request.context["operation_count"] = 1
        return Response(204, [("OData-Version", "4.0")])


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "/api/data/v9.2/accounts", "read"),
        ("GET", "/api/data/v9.2/WhoAmI", "read"),
        ("GET", "/api/data/v9.2/EntityDefinitions(LogicalName='account')", "metadata"),
        ("GET", "/api/data/v9.2/$metadata", "metadata"),
        ("POST", "/api/data/v9.2/accounts", "single"),
        ("PATCH", "/api/data/v9.2/accounts(accountnumber='A1')", "single"),
        ("DELETE", "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)", "single"),
        ("POST", "/api/data/v9.2/$batch", "batch"),
        ("POST", BULK, "bulk"),
        ("POST", "/api/data/v9.2/contacts/Microsoft.Dynamics.CRM.UpsertMultiple", "bulk"),
        ("POST", "/api/data/v9.2/AddListMembersList", "bulk"),
        ("POST", f"/api/data/v9.2/lists({GUID})/Microsoft.Dynamics.CRM.AddMemberList", "single"),
        ("POST", f"/api/data/v9.2/lists({GUID})/listcontact_association/$ref", "single"),
        ("DELETE", f"/api/data/v9.2/lists({GUID})/listcontact_association({GUID})/$ref", "single"),
        ("GET", "/other", "other"),
        ("POST", "/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token", "token"),
        ("GET", "/t/v2.0/.well-known/openid-configuration", "discovery"),
        ("GET", "/t/discovery/v2.0/keys", "discovery"),
    ],
)
def test_classify(method, path, kind):
    """§6 / §5 / §3: kinds a rule can match before wire has run."""
    assert classify(method, path) == kind


def test_entity_set():
    """§2.1: the resource is the entity set name (or $batch)."""
    assert entity_set("/api/data/v9.2/accounts(accountnumber='x')") == "accounts"
    assert entity_set(BULK) == "accounts"
    assert entity_set("/api/data/v9.2/$batch") == "$batch"
    assert entity_set("/_emulator/health") is None


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "explode"},
        {"action": "error", "status": 418},
        {"action": "throttle", "probability": 2},
        {"action": "delay", "bogus": 1},
        {"status": 500},
        {"action": "revoke_tokens", "revoke": "some"},
        {"action": "error", "path": "accounts("},
        {"action": "error", "times": "twice"},
        {"action": "redirect", "operation": "token"},
        {"action": "redirect", "status": 200, "location": "https://elsewhere.test/"},
    ],
)
def test_malformed_rules_are_refused(rule):
    """docs/emulator-faults.md: unknown actions, keys and statuses are errors."""
    with pytest.raises(ValueError):
        Faults([rule])


def decisions(seed, count=60):
    faults = Faults({"seed": seed, "rules": [{"action": "error", "probability": 0.3}]})
    request = Request("POST", "/api/data/v9.2/accounts")
    return [faults.decide(request) is not None for _ in range(count)]


def test_same_seed_same_sequence():
    """Reproducible faults: same seed → same sequence; another seed → another sequence."""
    first = decisions(7)
    assert first == decisions(7)
    assert first != decisions(8)
    assert 5 < sum(first) < 35


def test_after_times_and_first_match_wins():
    """Rules become active after `after` matches, fire `times` times; the first firing rule
    answers and later rules see the request only if earlier ones did not fire."""
    faults = Faults(
        [
            {"action": "throttle", "operation": "bulk", "after": 2, "times": 2, "name": "storm"},
            {"action": "error", "status": 503, "entity_set": "accounts", "name": "fallback"},
        ]
    )
    bulk = Request("POST", BULK)
    fired = [(faults.decide(bulk) or FaultRule("delay", name="none")).name for _ in range(5)]
    assert fired == ["fallback", "fallback", "storm", "storm", "fallback"]
    assert faults.decide(Request("GET", "/api/data/v9.2/contacts")) is None
    counters = faults.to_json()["rules"]
    assert (counters[0]["matched"], counters[0]["fired"]) == (5, 2)
    faults.reset()
    assert [(r.matched, r.fired) for r in faults.rules] == [(0, 0), (0, 0)]


def test_reset_restores_startup_plan():
    """POST /_emulator/reset: faults go back to the start-up plan with fresh counters."""
    faults = Faults([{"action": "error", "times": 1}], seed=3)
    request = Request("GET", "/api/data/v9.2/accounts")
    assert faults.decide(request) is not None
    assert faults.decide(request) is None
    faults.load([])
    faults.reset()
    assert faults.decide(request) is not None


def test_throttle_storm_over_https(emulator_factory):
    """§7.8 / §10 F1: an injected 429 carries Retry-After (scaled by --time-scale, rounded
    up) and the §7.1 code; nothing reaches wire."""
    wire = Recorder()
    server = emulator_factory(
        latency="zero",
        time_scale=0.1,
        wire_handler=wire,
        faults=[{"action": "throttle", "operation": "bulk", "retry_after": 25, "times": 2}],
    )
    session = api_session(server)
    for _ in range(2):
        response = session.post(f"{server.base_url}{BULK}", json={"Targets": []}, timeout=5)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.json()["error"]["code"] == "0x80072322"
    assert wire.calls == []
    assert session.post(f"{server.base_url}{BULK}", json={}, timeout=5).status_code == 204
    assert server.admin.counters()["throttled"] == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_dataverse_shaped(emulator_factory, status):
    """§4.8 / §2.5: injected 5xx answers carry {"error": {"code", "message"}}."""
    server = emulator_factory(
        latency="zero", wire_handler=Recorder(), faults=[{"action": "error", "status": status}]
    )
    response = api_session(server).get(f"{server.api_url}/accounts", timeout=5)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message"}
    assert response.headers["OData-Version"] == "4.0"


def test_reset_breaks_connection_before_anything_ran(emulator_factory):
    """§10 F11: a connection reset mid-response; the write never ran."""
    wire = Recorder()
    server = emulator_factory(
        latency="zero", wire_handler=wire, faults=[{"action": "reset", "times": 1}]
    )
    session = api_session(server)
    with pytest.raises(BROKEN):
        session.post(f"{server.api_url}/accounts", json={}, timeout=5)
    assert wire.calls == []
    assert session.post(f"{server.api_url}/accounts", json={}, timeout=5).status_code == 204
    assert server.admin.counters()["requests"]["single"] == {"reset": 1, "204": 1}


def test_drop_lands_the_write_but_loses_the_answer(emulator_factory):
    """§10.2: "a client timeout after the server committed" — the write landed, the answer
    was lost."""
    wire = Recorder()
    server = emulator_factory(
        latency="zero", wire_handler=wire, faults=[{"action": "drop", "method": "POST"}]
    )
    session = api_session(server)
    with pytest.raises(BROKEN):
        session.post(f"{server.api_url}/accounts", json={}, timeout=5)
    assert wire.calls == ["POST /api/data/v9.2/accounts"]


def test_delay_beats_client_timeout(emulator_factory):
    """§10 F11: a request slower than the client's timeout (delay scaled by --time-scale)."""
    server = emulator_factory(
        latency="zero",
        time_scale=0.5,
        wire_handler=Recorder(),
        faults=[{"action": "delay", "seconds": 2, "times": 1}],
    )
    session = api_session(server)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(f"{server.api_url}/accounts", timeout=0.4)
    assert session.get(f"{server.api_url}/accounts", timeout=5).status_code == 204


def test_slow_write_lands_after_the_client_gave_up(emulator_factory):
    """§7.5: a client timeout does not stop the operation; under 2 minutes it still lands."""
    server = emulator_factory(
        latency="zero",
        time_scale=0.01,
        faults=[{"action": "delay", "seconds": 60, "method": "POST", "times": 1}],
    )
    session = api_session(server)
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.post(f"{server.api_url}/accounts", json={"name": "Late"}, timeout=0.1)
    assert server.admin.snapshot().get("account", []) == []
    deadline = time.monotonic() + 10
    while not server.admin.snapshot().get("account") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [row["name"] for row in server.admin.snapshot()["account"]] == ["Late"]


def test_operation_past_two_minutes_is_rolled_back(emulator_factory):
    """§7.5 (Analyze plug-in performance): past the 2-minute limit the operation is canceled
    and rolled back with a TimeoutException; time_scale shrinks the limit with the delay."""
    server = emulator_factory(
        latency="zero",
        time_scale=0.01,
        faults=[{"action": "delay", "seconds": 150, "method": "POST", "times": 1}],
    )
    session = api_session(server)
    answer = session.post(f"{server.api_url}/accounts", json={"name": "Never"}, timeout=10)
    assert answer.status_code == 500
    assert "TimeoutException" in answer.json()["error"]["message"]
    time.sleep(0.5)
    assert server.admin.snapshot().get("account", []) == []


def test_token_revocation_mid_run_and_client_match(emulator_factory):
    """§10 F2: tokens revoked mid-run → 401 for that user only (rule matches client_id)."""
    server = emulator_factory(latency="zero", wire_handler=Recorder())
    first, second = api_session(server), api_session(server, server.user(1))
    server.admin.set_faults(
        [
            {
                "action": "revoke_tokens",
                "client_id": server.users.first.client_id,
                "after": 1,
                "times": 1,
            }
        ]
    )
    url = f"{server.api_url}/accounts"
    assert first.get(url, timeout=5).status_code == 204
    assert second.get(url, timeout=5).status_code == 204
    revoked = first.get(url, timeout=5)
    assert revoked.status_code == 401
    assert "WWW-Authenticate" in revoked.headers
    assert second.get(url, timeout=5).status_code == 204
    assert api_session(server).get(url, timeout=5).status_code == 204


def test_record_rules_through_the_server(emulator_factory):
    """§10 F10 / F8: record-level rules live in env.store.record_rules — a plug-in error 400
    0x80040265 and duplicate detection 500 0x80040333 on chosen records only."""
    server = emulator_factory(latency="zero")
    server.env.store.record_rules.extend(
        [
            RecordRule(
                "account", {"name": "Plugin"}, Kind.BAD_REQUEST, "0x80040265", "Plug-in failed."
            ),
            RecordRule(
                "account",
                {"name": "Twin"},
                Kind.SERVER_ERROR,
                "0x80040333",
                "A record was not created or updated because a duplicate of the current record "
                "already exists.",
            ),
        ]
    )
    session = api_session(server)
    url = f"{server.api_url}/accounts"
    plugin = session.post(url, json={"name": "Plugin"}, timeout=5)
    assert (plugin.status_code, plugin.json()["error"]["code"]) == (400, "0x80040265")
    twin = session.post(url, json={"name": "Twin"}, timeout=5)
    assert (twin.status_code, twin.json()["error"]["code"]) == (500, "0x80040333")
    assert session.post(url, json={"name": "Fine"}, timeout=5).status_code == 204
    assert [row["name"] for row in server.admin.snapshot()["account"]] == ["Fine"]


def test_token_endpoint_faults_apply_only_when_named(emulator_factory):
    """Appendix A.2: 429/503 with Retry-After at the token endpoint, in Entra's §1.3 shape; §1.6:
    MSAL raises on a 5xx. Rules without operation "token" leave the authority alone."""
    server = emulator_factory(
        latency="zero",
        wire_handler=Recorder(),
        faults=[
            {"action": "error", "status": 503, "operation": "token", "retry_after": 2, "times": 1},
            {"action": "throttle", "operation": "token", "times": 1},
            {"action": "error", "status": 500},
        ],
    )
    http = https_session(server)
    app = msal.ConfidentialClientApplication(
        server.users.first.client_id,
        client_credential=server.users.first.secret,
        authority=server.authority,
        instance_discovery=False,
        http_client=http,
    )
    with pytest.raises(msal.exceptions.MsalServiceError):
        app.acquire_token_for_client(scopes=[f"{server.base_url}/.default"])
    form = {
        "client_id": server.users.first.client_id,
        "client_secret": server.users.first.secret,
        "grant_type": "client_credentials",
        "scope": f"{server.base_url}/.default",
    }
    throttled = http.post(f"{server.authority}/oauth2/v2.0/token", data=form, timeout=5)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "5"
    body = throttled.json()
    assert (body["error"], body["error_codes"]) == ("temporarily_unavailable", [90033])
    assert body["error_description"].startswith("AADSTS90033: A transient error has occurred.")
    healthy = http.post(f"{server.authority}/oauth2/v2.0/token", data=form, timeout=5)
    assert healthy.status_code == 200
    api = http.get(
        f"{server.api_url}/accounts",
        headers={"Authorization": f"Bearer {healthy.json()['access_token']}"},
        timeout=5,
    )
    assert api.status_code == 500
    assert server.admin.counters()["requests"]["token"] == {"503": 1, "429": 1, "200": 1}


def test_authority_redirect_and_discovery_faults(emulator_factory):
    """docs/emulator-faults.md: a `redirect` rule answers its status and Location instead of the
    token endpoint (the request goes no further); `discovery` rules apply to the OpenID
    configuration in front of the authority, in Entra's §1.3 transient shape."""
    server = emulator_factory(
        latency="zero",
        wire_handler=Recorder(),
        faults=[
            {
                "action": "redirect",
                "operation": "token",
                "location": "http://127.0.0.1:9/steal",
                "times": 1,
            },
            {"action": "error", "status": 503, "operation": "discovery", "times": 1},
        ],
    )
    http = https_session(server)
    form = {
        "client_id": server.users.first.client_id,
        "client_secret": server.users.first.secret,
        "grant_type": "client_credentials",
        "scope": f"{server.base_url}/.default",
    }
    token_url = f"{server.authority}/oauth2/v2.0/token"
    redirected = http.post(token_url, data=form, timeout=5, allow_redirects=False)
    assert (redirected.status_code, redirected.content) == (307, b"")
    assert redirected.headers["Location"] == "http://127.0.0.1:9/steal"
    assert http.post(token_url, data=form, timeout=5).status_code == 200
    discovery = f"{server.authority}/v2.0/.well-known/openid-configuration"
    unavailable = http.get(discovery, timeout=5)
    assert unavailable.status_code == 503
    assert unavailable.json()["error"] == "temporarily_unavailable"
    assert "token_endpoint" in http.get(discovery, timeout=5).json()
    counters = server.admin.counters()
    assert counters["requests"]["token"] == {"307": 1, "200": 1}
    assert counters["requests"]["discovery"] == {"503": 1, "200": 1}


CATASTROPHIC = [
    "(a+)+$",
    "(a|ab)*c",
    r"(\w+\s?)*$",
    "(.*)*x",
    "(?>a+)+",
    ".*a.*b",
    "a{0,1000}b{0,1000}",
    "a?b?c?d?e?",
    r"(a)\1",
    "(?=contacts)",
    "x" * 201,
]


@pytest.mark.parametrize("path", CATASTROPHIC)
def test_catastrophic_paths_are_refused(path):
    """docs/emulator-faults.md "Safe paths": patterns that could backtrack catastrophically
    are refused when the rule is made, naming the reason."""
    with pytest.raises(ValueError, match=r"backtrack catastrophically|longer than 200"):
        FaultRule(action="error", path=path)


@pytest.mark.parametrize(
    "path",
    [
        "/api/data/",
        "UpdateMultiple|batch",
        r"/contacts\(",
        r"accounts\(.*\)",
        r"\d{4}-\d{2}",
        "[ab]+c",
    ],
)
def test_safe_paths_are_accepted(path):
    """docs/emulator-faults.md "Safe paths": the patterns rules are written with still work."""
    assert FaultRule(action="error", path=path).path == path


def test_catastrophic_path_is_refused_over_https(emulator_factory):
    """docs/emulator-faults.md: ``PUT /_emulator/faults`` answers 400 with the reason; the
    plan is unchanged and the control API and the Web API keep answering."""
    server = emulator_factory(latency="zero")
    with pytest.raises(requests.HTTPError) as refused:
        server.admin.set_faults([{"action": "error", "path": "(a+)+$"}])
    assert refused.value.response.status_code == 400
    assert "backtrack catastrophically" in refused.value.response.json()["error"]
    assert server.admin.faults()["rules"] == []
    session = api_session(server)
    long_path = f"{server.base_url}/api/data/v9.2/{'a' * 8000}!"
    assert session.get(long_path, timeout=5).status_code in {400, 404}
    assert server.admin.health() == {"status": "ok"}
