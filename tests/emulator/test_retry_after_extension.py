"""Ignoring ``Retry-After`` extends the wait (reference §7.1: "If the application continues to
send such demanding requests, the duration will be extended"; rule in ``state/budget.py``)."""

from __future__ import annotations

import time

import pytest

from dataverse_emulator.faults import classify
from dataverse_emulator.http import Response
from dataverse_emulator.state.budget import Budget, LimitExceeded, Limits
from dataverse_emulator.testing import api_session


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(budget: Budget) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as caught:
        budget.admit()
    return caught.value


def test_each_early_request_adds_the_original_penalty():
    """A 429 asks for 270 s; a request 10 s later gets 270 + 270 - 10 = 530 s, and so on,
    capped at one window (300 s) from now; same code and message."""
    clock = Clock()
    budget = Budget(Limits(requests=3), clock=clock)
    for _ in range(3):
        budget.admit()
        budget.release(0.0)
        clock.now += 10
    first = refused(budget)
    assert (first.retry_after, first.extended) == (270, False)  # until 1300
    clock.now += 10
    second = refused(budget)
    assert second.extended
    assert second.code == first.code
    assert second.message == first.message
    assert second.retry_after == 300  # 1300 + 270 = 1570, capped at 1040 + 300 = 1340
    clock.now = 1339.0
    assert refused(budget).retry_after == 271  # 1340 + 270 = 1610
    clock.now = 1610.0
    budget.admit()  # the extended wait has passed
    budget.release(0.0)


@pytest.mark.parametrize("honour", [True, False])
def test_scaled_wait_honoured_or_extended(honour):
    """Time scale 0.01 (3 s window): waiting ``Retry-After`` is admitted without extension;
    a request 0.5 s early moves the wait 2 s further."""
    clock = Clock()
    budget = Budget(Limits(requests=1), scale=0.01, clock=clock)
    budget.admit()
    budget.release(0.0)
    clock.now += 1.0
    wait = refused(budget)
    assert wait.retry_after == 2  # exact wait 2.0 s, until 1003.0
    if honour:
        clock.now += wait.retry_after
        budget.admit()
        return
    clock.now += 1.5
    assert refused(budget).extended  # until 1005.0
    clock.now = 1004.9
    assert refused(budget).retry_after == 3  # until min(1007.0, 1007.9)
    clock.now = 1007.0
    budget.admit()


def test_execution_limit_is_extended_too():
    clock = Clock()
    budget = Budget(Limits(execution_seconds=10), clock=clock)
    budget.admit()
    clock.now += 11
    budget.release(11.0)
    assert refused(budget).retry_after == 300
    clock.now += 1
    extended = refused(budget)
    assert extended.extended
    assert extended.code == "0x80072321"
    assert extended.retry_after == 300  # capped at one window


def test_only_a_sender_that_saw_the_429_extends_it():
    """Requests on another connection, or within the grace, may have been in flight: they get
    the remaining wait (not extended) and their connection counts as told; a told connection
    sending again after the grace extends the wait."""
    clock = Clock()
    budget = Budget(Limits(requests=1), clock=clock)
    budget.admit("a")
    budget.release(0.0)
    with pytest.raises(LimitExceeded) as first:
        budget.admit("a")  # wait 300 s, until 1300
    assert not first.value.extended
    clock.now += 100
    with pytest.raises(LimitExceeded) as in_flight:
        budget.admit("b")
    assert (in_flight.value.extended, in_flight.value.retry_after) == (False, 200)
    clock.now += 1
    with pytest.raises(LimitExceeded) as again:
        budget.admit("b")
    assert again.value.extended
    assert again.value.retry_after == 300  # 1300 + 300, capped at 1101 + 300
    with pytest.raises(LimitExceeded) as told:
        budget.admit("a")
    assert told.value.extended
    with pytest.raises(LimitExceeded) as fresh:
        budget.admit("c")
    clock.now += 0.2  # within the 0.25 s grace: maybe sent before "c" saw its 429
    with pytest.raises(LimitExceeded) as racing:
        budget.admit("c")
    clock.now += 0.1
    with pytest.raises(LimitExceeded) as ignoring:
        budget.admit("c")
    assert (fresh.value.extended, racing.value.extended, ignoring.value.extended) == (
        False,
        False,
        True,
    )


def test_concurrency_429_stays_immediate():
    """§7.1: the concurrency limit answers at once; a freed slot admits the next request."""
    budget = Budget(Limits(concurrent=1), clock=Clock())
    budget.admit()
    assert not refused(budget).extended
    budget.release(0.1)
    budget.admit()


def standin_wire(request, env):
    request.context["operation_kind"] = classify(request.method, request.path)
    request.context["operation_count"] = 1
    return Response(204, [("OData-Version", "4.0")])


def test_extension_over_https_with_time_scale(emulator_factory):
    """Over HTTPS (time scale 0.01: 3 s window): an early request on the connection that got
    the 429 gets a longer Retry-After and counts in ``throttle_extensions``; after the
    extended wait the user is served."""
    server = emulator_factory(
        latency="realistic", time_scale=0.01, limits=Limits(requests=2), wire_handler=standin_wire
    )
    url = f"{server.api_url}/accounts"
    with api_session(server) as session:
        for _ in range(2):
            assert session.post(url, json={}, timeout=5).status_code == 204
        first = session.post(url, json={}, timeout=5)
        assert first.status_code == 429
        time.sleep(0.3)  # past the 0.25 s grace, well before Retry-After
        early = session.post(url, json={}, timeout=5)
        assert early.status_code == 429
        assert early.json() == first.json()
        assert int(early.headers["Retry-After"]) >= int(first.headers["Retry-After"])
        counters = server.admin.counters()
        assert counters["throttle_extensions"] == 1
        assert counters["throttled"] == 2
        time.sleep(int(early.headers["Retry-After"]) + 0.05)
        assert session.post(url, json={}, timeout=5).status_code == 204
    server.admin.reset()
    assert server.admin.counters()["throttle_extensions"] == 0
