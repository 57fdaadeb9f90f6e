"""Limits at run time: ``--web-servers``, ``GET`` / ``PUT /_emulator/limits``, and the budgets
per user per web server (§7.1, §7.2, §7.3)."""

from __future__ import annotations

import http.cookiejar
import subprocess
import threading
import typing as t

import pytest
import requests

from dataverse_emulator.state.budget import Budgets, LimitExceeded, Limits
from dataverse_emulator.testing import emulator_process

if t.TYPE_CHECKING:
    from pathlib import Path

    from dataverse_emulator.testing import EmulatorProcess


def control(emulator: EmulatorProcess, method: str, name: str, body: t.Any = None):
    return requests.request(
        method,
        f"{emulator.base_url}/_emulator/{name}",
        json=body,
        verify=emulator.ca_path,
        timeout=10,
    )


def cookieless(session: requests.Session) -> requests.Session:
    """``session`` never sends the affinity cookie back (§7.2: spread over every server)."""
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return session


def test_web_servers_each_limit_concurrency(tmp_path: Path):
    """``--web-servers 2`` (shown in the banner): cookie-less requests are spread over both
    servers and each admits the concurrency limit on its own (§7.1, §7.2): with a limit of 2
    per server, 6 simultaneous slow requests of one user get 4 answers and 2 immediate 429s
    0x80072326; Retry-After, x-ms-dop-hint and the remaining-budget headers on each."""
    with emulator_process(
        tmp_path / "data", "--web-servers", "2", stdout=subprocess.PIPE
    ) as emulator:
        assert control(emulator, "GET", "limits").json()["web_servers"] == 2
        assert control(emulator, "PUT", "limits", {"concurrent": 2}).status_code == 200
        sessions = [cookieless(emulator.api_session()) for _ in range(6)]
        url = f"{emulator.base_url}/api/data/v9.2/contacts/Microsoft.Dynamics.CRM.CreateMultiple"
        for session in sessions:  # connections open before the race
            assert session.get(f"{emulator.base_url}/api/data/v9.2/WhoAmI", timeout=10).ok
        body = {
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"C{n}"}
                for n in range(150)  # 1.5 s of server time (§9.3 cost model)
            ]
        }
        barrier = threading.Barrier(len(sessions))
        responses: list[requests.Response] = []

        def send(session: requests.Session) -> None:
            barrier.wait(timeout=10)
            responses.append(session.post(url, json=body, timeout=30))

        threads = [threading.Thread(target=send, args=(s,)) for s in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(r.status_code for r in responses) == [200] * 4 + [429] * 2
        for refused in (r for r in responses if r.status_code == 429):
            assert refused.json()["error"]["code"] == "0x80072326"
            assert refused.headers["Retry-After"] == "1"
            assert refused.headers["x-ms-dop-hint"] == "4"
            assert refused.headers["x-ms-ratelimit-burst-remaining-xrm-requests"].isdigit()
        emulator.process.terminate()
        banner = emulator.process.communicate(timeout=15)[0]
    assert "Web servers         2" in banner


def test_put_limits_changes_the_next_answer_and_reset_restores(tmp_path: Path):
    """``PUT /_emulator/limits`` changes ``x-ms-dop-hint`` from the next answer on (injected 429s
    too); bad documents answer 400 naming the problem and change nothing; ``reset`` restores
    the start-up limits (``--dop-hint 48``)."""
    with emulator_process(tmp_path / "data", "--dop-hint", "48", "--latency", "zero") as emulator:
        api = emulator.api_session()
        who = f"{emulator.base_url}/api/data/v9.2/WhoAmI"
        start = {
            "dop_hint": 48,
            "web_servers": 1,
            "requests": 6000,
            "execution_seconds": 1200.0,
            "concurrent": 52,
            "window_seconds": 300.0,
        }
        assert control(emulator, "GET", "limits").json() == start
        assert api.get(who, timeout=10).headers["x-ms-dop-hint"] == "48"
        changed = control(emulator, "PUT", "limits", {"dop_hint": 12, "web_servers": 3})
        assert changed.json() == {**start, "dop_hint": 12, "web_servers": 3}
        assert api.get(who, timeout=10).headers["x-ms-dop-hint"] == "12"
        control(emulator, "PUT", "faults", [{"action": "throttle", "times": 1}])
        assert api.get(who, timeout=10).headers["x-ms-dop-hint"] == "12"
        for bad, message in [
            ({"dop_hint": 0}, "dop_hint must be at least 1, not 0"),
            ({"web_servers": "2"}, "web_servers must be a whole number, not '2'"),
            ({"concurrent": 2.5}, "concurrent must be a whole number, not 2.5"),
            ({"execution_seconds": -1}, "execution_seconds must be positive, not -1"),
            ({"dop": 4}, "unknown limit dop: expected some of dop_hint, web_servers"),
            ([4], "expected an object with some of dop_hint, web_servers"),
        ]:
            refused = control(emulator, "PUT", "limits", bad)
            assert refused.status_code == 400
            assert refused.json()["error"].startswith(message)
        assert control(emulator, "GET", "limits").json()["dop_hint"] == 12
        assert control(emulator, "POST", "reset").status_code == 204
        assert control(emulator, "GET", "limits").json() == start
        assert api.get(who, timeout=10).headers["x-ms-dop-hint"] == "48"


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (Limits(requests=1), "0x80072322"),
        (Limits(execution_seconds=1.0), "0x80072321"),
        (Limits(concurrent=1), "0x80072326"),
    ],
)
def test_every_limit_is_per_user_per_server(limits, code):
    """§7.1: each limit applies to one user on one web server; the others keep their budget."""
    budgets = Budgets(limits, clock=lambda: 1000.0)
    exhausted = budgets.of("a", 0)
    exhausted.admit()
    if code == "0x80072321":
        exhausted.release(2.0)
    with pytest.raises(LimitExceeded) as refused:
        exhausted.admit()
    assert refused.value.code == code
    budgets.of("a", 1).admit()
    budgets.of("b", 0).admit()


def test_retune_applies_to_open_windows():
    """A change applies from the next request on to the windows already open; clear restores
    the start-up limits."""
    budgets = Budgets(Limits(requests=3), clock=lambda: 1000.0)
    budget = budgets.of("a")
    budget.admit()
    budget.admit()
    budgets.retune(Limits(requests=2))
    with pytest.raises(LimitExceeded):
        budget.admit()
    assert budget.remaining_requests == 0
    budgets.clear()
    assert budgets.limits == Limits(requests=3)
    assert budgets.of("a").remaining_requests == 3
