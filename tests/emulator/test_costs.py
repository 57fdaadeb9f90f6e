"""The cost model (reference §9.1, §9.3) and the server time the emulator really takes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dataverse_emulator.costs import CostModel
from dataverse_emulator.faults import classify
from dataverse_emulator.http import Response
from dataverse_emulator.testing import api_session, https_session


def standin_wire(request, env):
    request.context["operation_kind"] = classify(request.method, request.path)
    request.context["operation_count"] = 1
    return Response(204, [("OData-Version", "4.0")])


@pytest.mark.parametrize(
    ("kind", "count", "path", "seconds"),
    [
        ("read", 1, "/api/data/v9.2/accounts", 0.015),
        ("metadata", 1, "/api/data/v9.2/EntityDefinitions", 0.015),
        ("single", 1, "/api/data/v9.2/accounts", 0.050),
        ("batch", 10, "/api/data/v9.2/$batch", 0.415),
        ("bulk", 1000, "/api/data/v9.2/accounts/Microsoft.Dynamics.CRM.CreateMultiple", 10.015),
        ("bulk", 100, "/api/data/v9.2/accounts/Microsoft.Dynamics.CRM.UpsertMultiple", 3.015),
        ("bulk", 100, "/api/data/v9.2/AddListMembersList", 1.015),
    ],
)
def test_default_server_times(kind, count, path, seconds):
    """§9.3: single create ≈ 40-60 ms; $batch ≈ 40 ms per operation; bulk ≈ 10 ms per created
    and ≈ 30 ms per updated record; every request pays the base."""
    assert CostModel().server_time(kind, count, path) == pytest.approx(seconds)


def test_ceilings_follow_from_the_defaults():
    """§9.3: 4 server-seconds per second per user gives ≈ 80 single creates/s (request count
    caps at 20/s), ≈ 100 $batch records/s and ≈ 400 CreateMultiple records/s."""
    model = CostModel()
    assert 4 / model.server_time("batch", 1000, "/$batch") * 1000 == pytest.approx(100, rel=0.01)
    bulk = model.server_time("bulk", 1000, "/x/Microsoft.Dynamics.CRM.CreateMultiple")
    assert 4 / bulk * 1000 == pytest.approx(400, rel=0.01)


def test_server_really_takes_the_time_without_blocking(emulator_factory):
    """The emulator waits the modelled time (asyncio.sleep): a 0.3 s write takes ≥ 0.3 s, a
    read costs only the base, and two slow writes in parallel take ≈ one write's time."""
    server = emulator_factory(
        latency="realistic",
        costs=CostModel(request_base=0.01, single_write=0.3),
        wire_handler=standin_wire,
    )
    session = api_session(server)
    token = session.headers["Authorization"]
    url = f"{server.api_url}/accounts"
    started = time.perf_counter()
    assert session.post(url, json={}, timeout=5).status_code == 204
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    session.get(url, timeout=5)
    assert time.perf_counter() - started < 0.25

    def write(_):
        with https_session(server) as other:
            return other.post(url, json={}, headers={"Authorization": token}, timeout=5)

    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        assert [r.status_code for r in pool.map(write, range(2))] == [204, 204]
    assert time.perf_counter() - started < 0.55


def test_execution_budget_is_charged_scaled(emulator_factory):
    """§7.1 execution budget counts the server time; --time-scale shrinks the real wait while
    the remaining figure stays nominal (§7.4 header)."""
    server = emulator_factory(
        latency="realistic",
        time_scale=0.1,
        costs=CostModel(request_base=0.0, single_write=2.0),
        wire_handler=standin_wire,
    )
    session = api_session(server)
    started = time.perf_counter()
    response = session.post(f"{server.api_url}/accounts", json={}, timeout=5)
    elapsed = time.perf_counter() - started
    assert 0.2 <= elapsed < 1.0
    remaining = float(
        response.headers["x-ms-ratelimit-time-remaining-xrm-requests"].replace(",", "")
    )
    # 2 s of nominal server time, plus what a loaded machine adds to the measured wait (scaled
    # back up tenfold); unscaled charging would leave 1,199.8 or 1,180.
    assert 1197.0 <= remaining <= 1198.05
