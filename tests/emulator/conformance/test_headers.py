"""Conformance: the headers real Web API answers carry, on every answer (issue 13 item 5).

- §2.3: ``REQ_ID`` and ``x-ms-service-request-id`` on every response, success or error.
- §7.3: ``x-ms-dop-hint``, a setting of the environment ("Send parallel requests",
  https://learn.microsoft.com/power-apps/developer/data-platform/send-parallel-requests; its
  capture shows 48).
- §7.4: ``x-ms-ratelimit-burst-remaining-xrm-requests`` and
  ``x-ms-ratelimit-time-remaining-xrm-requests`` ("Service protection API limits",
  https://learn.microsoft.com/power-apps/developer/data-platform/api-limits): what is left of
  the caller's budgets, on every answer, also with ``latency="zero"``. Their format is not on
  that page; Microsoft's capture in "Use PowerShell and Visual Studio Code with the Dataverse
  Web API" (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/use-ps-and-vscode-web-api)
  shows ``5999`` (plain integer) and ``1,200.00`` (nominal seconds, thousands grouped, two
  decimals).
"""

from __future__ import annotations

import re
import uuid

import pytest
from conformance_support import Dataverse, msal_token

from dataverse_emulator.state.budget import Limits

BURST = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME = "x-ms-ratelimit-time-remaining-xrm-requests"


def client(server):
    """A Web API client for the primary user, with a token from real MSAL."""
    return Dataverse(server, msal_token(server.target_config)["access_token"])


def seconds(value):
    """``1,199.98`` -> 1199.98 (the header groups thousands)."""
    return float(value.replace(",", ""))


def assert_request_id(response):
    """§2.3: a GUID in ``REQ_ID``, the same in ``x-ms-service-request-id``."""
    request_id = response.headers["REQ_ID"]
    assert uuid.UUID(request_id)
    assert response.headers["x-ms-service-request-id"] == request_id


def test_request_id_on_every_answer(dv):
    """§2.3: ``REQ_ID`` is on successes (200, 204) as on errors (404), not on errors only."""
    contact_id = dv.create("contacts", {"lastname": "Ids"})
    answers = [
        dv.get("WhoAmI"),
        dv.get(f"contacts({contact_id})?$select=lastname"),
        dv.patch(f"contacts({contact_id})", json={"firstname": "A"}),
        dv.get(f"contacts({uuid.uuid4()})"),
    ]
    assert [r.status_code for r in answers] == [200, 200, 204, 404]
    for response in answers:
        assert_request_id(response)
    assert len({r.headers["REQ_ID"] for r in answers}) == len(answers)


@pytest.mark.parametrize("latency", ["zero", "realistic"])
def test_rate_limit_headers_on_every_answer(emulator_factory, latency):
    """§7.4 (api-limits page): the informational headers on every answer. With no latency
    nothing is limited, but the budget model still counts: the first answer reports the full
    budget less this request, each later one a request less; time left never exceeds the
    1,200 s budget and shrinks as requests run."""
    server = emulator_factory(latency=latency, time_scale=0.01)
    dv = client(server)
    limits = Limits()
    answers = [dv.get("WhoAmI"), dv.post("contacts", json={"lastname": "H"}), dv.get("WhoAmI")]
    assert [r.status_code for r in answers] == [200, 204, 200]
    bursts = [int(r.headers[BURST]) for r in answers]
    assert bursts == [limits.requests - 1, limits.requests - 2, limits.requests - 3]
    times = [seconds(r.headers[TIME]) for r in answers]
    assert all(0 < left <= limits.execution_seconds for left in times)
    assert times == sorted(times, reverse=True)
    assert times[-1] < limits.execution_seconds


@pytest.mark.parametrize("latency", ["zero", "realistic"])
def test_rate_limit_header_format(emulator_factory, latency):
    """§7.4: requests left as a plain integer (``5999``), execution time left in nominal seconds
    with thousands grouped and two decimals (``1,200.00``), also under ``time_scale``."""
    server = emulator_factory(latency=latency, time_scale=0.01)
    answer = client(server).get("WhoAmI")
    assert re.fullmatch(r"[1-9][0-9]*", answer.headers[BURST])
    assert re.fullmatch(r"1,[12][0-9]{2}\.[0-9]{2}", answer.headers[TIME])


def test_error_answers_carry_rate_limit_headers(emulator_factory):
    """§7.4 on errors too: a 404 counts against the budget like any request."""
    server = emulator_factory(latency="zero")
    dv = client(server)
    missing = dv.get(f"contacts({uuid.uuid4()})")
    assert missing.status_code == 404
    assert int(missing.headers[BURST]) == Limits().requests - 1
    assert TIME in missing.headers
    assert_request_id(missing)


@pytest.mark.parametrize("latency", ["zero", "realistic"])
def test_dop_hint_is_an_environment_setting(emulator_factory, latency):
    """§7.3 (send-parallel-requests page): the hint describes the environment; Microsoft's
    capture shows 48. Set to 48, every answer reports 48: successes, errors, and the service's
    own 429 (§7.1) when limits are enforced."""
    server = emulator_factory(
        latency=latency, time_scale=0.005, limits=Limits(dop_hint=48, requests=2)
    )
    dv = client(server)
    answers = [dv.get("WhoAmI"), dv.get(f"contacts({uuid.uuid4()})"), dv.get("WhoAmI")]
    assert [r.status_code for r in answers] == (
        [200, 404, 200] if latency == "zero" else [200, 404, 429]
    )
    for response in answers:
        assert response.headers["x-ms-dop-hint"] == "48"
        assert_request_id(response)
        assert BURST in response.headers


def test_dop_hint_default_is_four(emulator_factory):
    """§7.3: Microsoft's samples on a trial environment report 4, the default."""
    server = emulator_factory(latency="zero")
    assert client(server).get("WhoAmI").headers["x-ms-dop-hint"] == "4"


@pytest.mark.parametrize("value", [0, -1])
def test_dop_hint_must_be_positive(value):
    """§7.3: the hint is a degree of parallelism, at least 1."""
    with pytest.raises(ValueError, match="dop_hint must be at least 1"):
        Limits(dop_hint=value)


def test_injected_throttle_carries_the_service_headers(emulator_factory):
    """docs/emulator-faults.md ``throttle``: an injected 429 looks like the service's own
    (§7.8): ``Retry-After``, the §7.1 body, ``x-ms-dop-hint`` (§7.3) and the request ids (§2.3)."""
    server = emulator_factory(latency="zero", limits=Limits(dop_hint=48))
    dv = client(server)
    server.admin.set_faults([{"action": "throttle", "operation": "read", "times": 1}])
    throttled = dv.get("WhoAmI")
    dv.assert_error(throttled, 429, "0x80072322")
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["x-ms-dop-hint"] == "48"
    assert_request_id(throttled)
    assert dv.get("WhoAmI").status_code == 200
