"""Service protection (reference §7.1, §7.8): windows with a fake clock, then over HTTPS."""

from __future__ import annotations

import http.cookiejar
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dataverse_emulator.costs import CostModel
from dataverse_emulator.faults import classify
from dataverse_emulator.http import Response
from dataverse_emulator.state.budget import Budget, Budgets, LimitExceeded, Limits
from dataverse_emulator.testing import api_session, https_session


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_request_limit_and_retry_after():
    """§7.1: 6,000 requests per 300 s → 0x80072322 with the documented message; §7.8:
    Retry-After is when the oldest request leaves the window."""
    clock = Clock()
    budget = Budget(Limits(requests=3), clock=clock)
    for _ in range(3):
        budget.admit()
        budget.release(0.0)
        clock.now += 10
    with pytest.raises(LimitExceeded) as caught:
        budget.admit()
    assert caught.value.code == "0x80072322"
    assert caught.value.message == (
        "Number of requests exceeded the limit of 3 over time window of 300 seconds."
    )
    assert caught.value.retry_after == 270  # first request at t=1000 leaves at 1300; now 1030
    clock.now = 1300.0
    budget.admit()


def test_default_messages_quote_documented_limits():
    """§7.1: the exact messages for 6000 requests and 1,200,000 milliseconds."""
    clock = Clock()
    budget = Budget(Limits(), clock=clock)
    budget.admit()
    budget.release(1200.0)
    with pytest.raises(LimitExceeded) as caught:
        budget.admit()
    assert caught.value.code == "0x80072321"
    assert caught.value.message == (
        "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds "
        "over time window of 300 seconds. Decrease number of concurrent requests or reduce the "
        "duration of requests and try again later."
    )


def test_execution_limit_bites_only_after_exceeded():
    """§7.1: "Request-count and execution-time limits take effect only after the window is
    exceeded"; Retry-After is when enough execution time has left the window."""
    clock = Clock()
    budget = Budget(Limits(execution_seconds=10), clock=clock)
    budget.admit()
    clock.now += 6
    budget.release(6.0)  # finished at 1006
    budget.admit()  # 6 s < 10 s: still admitted
    clock.now += 5
    budget.release(5.0)  # finished at 1011, total 11 s
    with pytest.raises(LimitExceeded) as caught:
        budget.admit()
    assert caught.value.code == "0x80072321"
    assert caught.value.retry_after == 295  # 1006 + 300 - 1011
    clock.now = 1306.0
    budget.admit()


def test_concurrency_limit_is_immediate():
    """§7.1: 52 concurrent requests → 0x80072326 at once."""
    budget = Budget(Limits(concurrent=2), clock=Clock())
    budget.admit()
    budget.admit()
    with pytest.raises(LimitExceeded) as caught:
        budget.admit()
    assert caught.value.code == "0x80072326"
    assert caught.value.message == "Number of concurrent requests exceeded the limit of 2."
    assert caught.value.retry_after == 1
    budget.release(0.1)
    budget.admit()


def test_time_scale_shrinks_window_and_execution_budget():
    """Time scale: window 300 s * F, execution budget * F, Retry-After * F rounded up; messages
    keep the nominal figures (§7.1)."""
    clock = Clock()
    budget = Budget(Limits(requests=1), scale=0.01, clock=clock)
    budget.admit()
    budget.release(0.0)
    clock.now += 0.5
    with pytest.raises(LimitExceeded) as caught:
        budget.admit()
    assert caught.value.retry_after == 3  # 3 s window, 2.5 s left → 3
    assert "over time window of 300 seconds" in caught.value.message
    clock.now += 2.6
    budget.admit()


def test_remaining_figures():
    """§7.4: remaining requests and nominal remaining execution time."""
    clock = Clock()
    budget = Budget(Limits(), scale=0.5, clock=clock)
    budget.admit()
    budget.release(10.0)  # scaled seconds = 20 nominal
    assert budget.remaining_requests == 5999
    assert budget.remaining_execution_seconds == pytest.approx(1180.0)


def test_budgets_are_per_user():
    """§7.1: "Each authenticated user is limited independently." """
    budgets = Budgets(Limits(requests=1), clock=Clock())
    budgets.of("a").admit()
    with pytest.raises(LimitExceeded):
        budgets.of("a").admit()
    budgets.of("b").admit()
    budgets.clear()
    budgets.of("a").admit()


def standin_wire(request, env):
    request.context["operation_kind"] = classify(request.method, request.path)
    request.context["operation_count"] = 1
    return Response(204, [("OData-Version", "4.0")])


def test_429_over_https_then_recovers(emulator_factory):
    """§7.8: 429 with Retry-After, Dataverse error body and the matching §7.1 code; a second
    user is unaffected; after Retry-After the first user is served again (time scale 0.01)."""
    server = emulator_factory(
        latency="realistic",
        time_scale=0.01,
        limits=Limits(requests=3),
        wire_handler=standin_wire,
    )
    first, second = api_session(server), api_session(server, server.user(1))
    url = f"{server.api_url}/accounts"
    for _ in range(3):
        ok = first.post(url, json={}, timeout=5)
        assert ok.status_code == 204
        assert ok.headers["x-ms-dop-hint"] == "4"
    throttled = first.post(url, json={}, timeout=5)
    assert throttled.status_code == 429
    assert throttled.json() == {
        "error": {
            "code": "0x80072322",
            "message": "Number of requests exceeded the limit of 3 over time window of 300 "
            "seconds.",
        }
    }
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 3
    assert throttled.headers["Content-Type"] == "application/json; odata.metadata=minimal"
    assert second.post(url, json={}, timeout=5).status_code == 204
    time.sleep(3.05)
    assert first.post(url, json={}, timeout=5).status_code == 204
    assert server.admin.counters()["throttled"] == 1


def test_informational_headers(emulator_factory):
    """§7.3/§7.4: x-ms-dop-hint and the x-ms-ratelimit-* headers on every answer."""
    server = emulator_factory(latency="realistic", time_scale=0.01, wire_handler=standin_wire)
    session = api_session(server)
    response = session.get(f"{server.api_url}/accounts", timeout=5)
    assert response.headers["x-ms-dop-hint"] == "4"
    assert response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "5999"
    remaining = float(
        response.headers["x-ms-ratelimit-time-remaining-xrm-requests"].replace(",", "")
    )
    assert 1199.0 < remaining < 1200.0


def test_latency_zero_disables_limits(emulator_factory):
    """--latency zero turns the limits off (client CPU benchmarks) but keeps x-ms-dop-hint."""
    server = emulator_factory(latency="zero", limits=Limits(requests=1), wire_handler=standin_wire)
    session = api_session(server)
    for _ in range(3):
        response = session.post(f"{server.api_url}/accounts", json={}, timeout=5)
        assert response.status_code == 204
        assert response.headers["x-ms-dop-hint"] == "4"


def test_concurrency_429_over_https(emulator_factory):
    """§7.1: exceeding the concurrent-request limit answers 0x80072326 immediately."""
    server = emulator_factory(
        latency="realistic",
        costs=CostModel(request_base=1.0),
        limits=Limits(concurrent=2),
        wire_handler=standin_wire,
    )
    token = api_session(server).headers["Authorization"]
    url = f"{server.api_url}/accounts"

    def call(_):
        with https_session(server) as session:
            return session.get(url, headers={"Authorization": token}, timeout=10)

    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(call, range(4)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [204, 204, 429, 429]
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == "0x80072326"
    assert refused.headers["Retry-After"] == "1"


def test_limits_per_web_server_and_affinity_cookie(emulator_factory):
    """§7.1: each web server enforces the limits independently; §7.2: the ARRAffinity cookie pins
    a client to one server, a client that drops it is spread over all of them."""
    server = emulator_factory(
        latency="realistic",
        time_scale=0.01,
        limits=Limits(requests=2, web_servers=2),
        wire_handler=standin_wire,
    )
    url = f"{server.api_url}/accounts"
    pinned = api_session(server)
    first = pinned.get(url, timeout=5)
    assert first.cookies.get("ARRAffinity")
    assert [pinned.get(url, timeout=5).status_code for _ in range(2)] == [204, 429]
    spread = api_session(server, server.user(1))
    spread.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    statuses = [spread.get(url, timeout=5).status_code for _ in range(5)]
    assert statuses == [204, 204, 204, 204, 429]
