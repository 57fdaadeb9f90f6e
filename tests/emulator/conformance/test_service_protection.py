"""Conformance: service protection limits, 429 + Retry-After, parallelism hints (§7).

Private emulators run with ``latency="realistic"``, a small ``time_scale`` and small
configured limits (§11 #15: limits are configurable); messages quote the configured numbers.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from conformance_support import JSON_CONTENT_TYPE, Dataverse, msal_token

from dataverse_emulator.state.budget import Limits


def client(server, user_index=0):
    """A Web API client for the ``user_index``-th user listed in ``users.json``."""
    config = dict(server.target_config)
    users = json.loads((server.data_dir / "users.json").read_text(encoding="utf-8"))["users"]
    config["client_id"] = users[user_index]["client_id"]
    config["client_secret"] = users[user_index]["client_secret"]
    return Dataverse(server, msal_token(config)["access_token"])


def assert_throttled(response, code, message):
    """§7.8: 429, ``Retry-After`` in whole seconds, JSON error with the §7.1 code/message;
    §7.3, §7.4: ``x-ms-dop-hint`` and the remaining-budget headers, as on every answer; §7.2:
    the affinity cookie of the server that refused."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert response.headers["OData-Version"] == "4.0"
    assert int(response.headers["x-ms-dop-hint"]) >= 1
    assert int(response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) >= 0
    time_left = response.headers["x-ms-ratelimit-time-remaining-xrm-requests"]
    assert float(time_left.replace(",", "")) >= 0
    assert "ARRAffinity" in response.cookies
    assert response.json() == {"error": {"code": code, "message": message}}
    return retry_after


def contacts(count):
    return {
        "Targets": [
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"C{i}"}
            for i in range(count)
        ]
    }


def test_request_count_limit(emulator_factory):
    """§7.1: the request-count limit bites once the window total is exceeded → 429
    0x80072322 "Number of requests exceeded the limit of N over time window of 300
    seconds."; after ``Retry-After`` seconds the user is admitted again (§7.7)."""
    server = emulator_factory(latency="realistic", time_scale=0.005, limits=Limits(requests=3))
    dv = client(server)
    for _ in range(3):
        assert dv.get("WhoAmI").status_code == 200
    retry_after = assert_throttled(
        dv.get("WhoAmI"),
        "0x80072322",
        "Number of requests exceeded the limit of 3 over time window of 300 seconds.",
    )
    assert retry_after <= 2  # the window is 300 s x 0.005
    time.sleep(retry_after)
    assert dv.get("WhoAmI").status_code == 200


def test_limits_are_per_user(emulator_factory):
    """§7.1: "Each authenticated user is limited independently"."""
    server = emulator_factory(latency="realistic", time_scale=0.05, limits=Limits(requests=2))
    first, second = client(server, 0), client(server, 1)
    for _ in range(2):
        assert first.get("WhoAmI").status_code == 200
    assert first.get("WhoAmI").status_code == 429
    assert second.get("WhoAmI").status_code == 200


def test_batch_counts_as_one_request(emulator_factory):
    """§5.4 / §7.1: "A batch can contain up to 1000 operations and will avoid the number of
    requests limit" — a ``$batch`` counts as one request."""
    server = emulator_factory(latency="realistic", time_scale=0.05, limits=Limits(requests=2))
    dv = client(server)
    boundary = "batch_1"
    part = (
        "--batch_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        "\r\nPOST /api/data/v9.2/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"lastname": "B"}\r\n'
    )
    response = dv.batch(part * 5 + "--batch_1--\r\n", boundary)
    assert response.status_code == 200, response.text
    assert dv.get("WhoAmI").status_code == 200
    assert dv.get("WhoAmI").status_code == 429


def test_execution_time_limit(emulator_factory):
    """§7.1: the combined execution-time limit → 429 0x80072321 "Combined execution time of
    incoming requests exceeded limit of N milliseconds over time window of 300 seconds. …";
    §6.5: a bulk request's execution time accrues per record."""
    server = emulator_factory(
        latency="realistic", time_scale=0.01, limits=Limits(execution_seconds=1.0)
    )
    dv = client(server)
    response = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json=contacts(100))
    assert response.status_code == 200, response.text
    assert_throttled(
        dv.get("WhoAmI"),
        "0x80072321",
        "Combined execution time of incoming requests exceeded limit of 1,000 milliseconds "
        "over time window of 300 seconds. Decrease number of concurrent requests or reduce the "
        "duration of requests and try again later.",
    )


def test_concurrency_limit(emulator_factory):
    """§7.1: "exceeding the number of concurrent requests will immediately return an error"
    → 429 0x80072326 "Number of concurrent requests exceeded the limit of N."."""
    server = emulator_factory(latency="realistic", time_scale=1.0, limits=Limits(concurrent=1))
    clients = [client(server) for _ in range(4)]
    for each in clients:
        assert each.get("WhoAmI").status_code == 200  # connections open before the race
    barrier = threading.Barrier(len(clients))
    responses = []
    lock = threading.Lock()

    def send(dv):
        barrier.wait(timeout=10)
        response = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json=contacts(20))
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=send, args=(each,)) for each in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(response.status_code for response in responses)
    assert len(statuses) == 4
    assert 200 in statuses
    throttled = [response for response in responses if response.status_code == 429]
    assert throttled, statuses
    for response in throttled:
        assert_throttled(
            response, "0x80072326", "Number of concurrent requests exceeded the limit of 1."
        )


@pytest.mark.parametrize("latency", ["zero", "realistic"])
def test_dop_hint_and_informational_headers(emulator_factory, latency):
    """§7.3: size parallelism from the integer ``x-ms-dop-hint`` response header; §7.4: the
    informational ``x-ms-ratelimit-*`` headers (debugging only) on every answer, also when
    limits are not enforced."""
    server = emulator_factory(latency=latency, time_scale=0.01)
    dv = client(server)
    first = dv.get("WhoAmI")
    assert first.status_code == 200
    assert int(first.headers["x-ms-dop-hint"]) >= 1
    created = dv.post("contacts", json={"lastname": "Hint"})
    assert int(created.headers["x-ms-dop-hint"]) >= 1
    remaining = int(first.headers["x-ms-ratelimit-burst-remaining-xrm-requests"])
    later = int(created.headers["x-ms-ratelimit-burst-remaining-xrm-requests"])
    assert later < remaining
    assert "x-ms-ratelimit-time-remaining-xrm-requests" in created.headers
