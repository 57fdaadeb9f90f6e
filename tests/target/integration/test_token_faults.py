"""Entra blips and hostile answers at the token endpoint, through the target (issue 8, items 4, 8).

Blips (503, 429 AADSTS90033, broken connections) at start-up, at a token refresh and after a 401
are retried and every record lands; permanent errors end the run at once with the hint; a
redirect to plain http is refused and the secret never leaves for it. What landed and what the
authority saw is read from the emulator, never from the target.
"""

from __future__ import annotations

import typing as t

import pytest

from target_dynamics import auth
from target_dynamics.target import TargetDynamics

if t.TYPE_CHECKING:
    import subprocess
    from pathlib import Path

COUNT = 6
BLIPS = {
    "503": {"action": "error", "status": 503, "times": 2},
    "429-AADSTS90033": {"action": "throttle", "retry_after": 1, "times": 1},
    "reset": {"action": "reset", "times": 2},
}


def messages(singer) -> list[dict]:
    """The people SCHEMA and COUNT records, ``t<i>@x.org`` (no last name)."""
    records = [{"emailaddress1": f"t{i}@x.org"} for i in range(COUNT)]
    return [
        singer.PEOPLE_SCHEMA,
        *({"type": "RECORD", "stream": "people", "record": r} for r in records),
    ]


def landed(server) -> set[str]:
    return {r["emailaddress1"] for r in server.admin.snapshot().get("contact", [])}


def token_requests(server) -> dict[str, int]:
    return server.admin.counters()["requests"].get("token", {})


def fired(server) -> list[int]:
    return [rule["fired"] for rule in server.admin.faults()["rules"]]


def run_in_process(server, singer, **config: t.Any) -> None:
    """One run of the target over :func:`messages`, one record per batch (a request, a token
    each)."""
    target = TargetDynamics(
        config={**server.target_config, "entity": "contact", "batch_size_rows": 1, **config}
    )
    singer.listen(target, messages(singer))


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Backoff delays of milliseconds for in-process runs (Retry-After is still obeyed)."""
    monkeypatch.setattr(auth, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr(auth, "BACKOFF_CAP_SECONDS", 0.05)


@pytest.mark.parametrize("blip", list(BLIPS))
def test_blip_at_start_up(reset_emulator, blip, singer):
    """The first token request of the run meets the blip; the run completes."""
    reset_emulator.admin.set_faults([{**BLIPS[blip], "operation": "token"}])
    run_in_process(reset_emulator, singer)
    assert landed(reset_emulator) == {f"t{i}@x.org" for i in range(COUNT)}
    assert token_requests(reset_emulator)["200"] == 1
    assert fired(reset_emulator) == [BLIPS[blip]["times"]]


@pytest.mark.parametrize("blip", list(BLIPS))
def test_blip_at_refresh(emulator_factory, blip, singer):
    """Tokens live 120 s, so MSAL fetches one before every request (§1.6); the third fetch, in
    the middle of the run, meets the blip."""
    server = emulator_factory(
        latency="zero",
        token_lifetime=120,
        faults=[{**BLIPS[blip], "operation": "token", "after": 2}],
    )
    run_in_process(server, singer)
    assert landed(server) == {f"t{i}@x.org" for i in range(COUNT)}
    assert token_requests(server)["200"] > 2
    assert fired(server) == [BLIPS[blip]["times"]]


@pytest.mark.parametrize("blip", list(BLIPS))
def test_blip_after_a_401(reset_emulator, blip, singer):
    """Tokens revoked mid-run (§10 F2): the 401 drops the token and the new fetch meets the blip."""
    reset_emulator.admin.set_faults(
        [
            {"action": "revoke_tokens", "revoke": "all", "after": 3, "times": 1},
            {**BLIPS[blip], "operation": "token", "after": 1},
        ]
    )
    run_in_process(reset_emulator, singer)
    assert landed(reset_emulator) == {f"t{i}@x.org" for i in range(COUNT)}
    assert token_requests(reset_emulator)["200"] == 2
    assert fired(reset_emulator) == [1, BLIPS[blip]["times"]]


def run_cli(server, singer, tmp_path: Path, **config: t.Any) -> subprocess.CompletedProcess[str]:
    settings = {**server.target_config, "entity": "contact", **config}
    return singer.cli(settings, messages(singer), tmp_path)


@pytest.mark.parametrize(
    ("config", "hint", "requests"),
    [
        (
            {"client_secret": "not-the-secret-value"},
            "Use the client secret *value*, not its secret ID.",
            {"401": 1},
        ),
        (
            {"tenant_id": "contoso.onmicrosoft.com"},
            "Check tenant_id: your directory's id",
            {},
        ),
    ],
    ids=["AADSTS7000215", "unknown-tenant"],
)
def test_permanent_errors_end_the_run_at_once(  # noqa: PLR0917 - fixtures and parameters
    reset_emulator, tmp_path, config, hint, requests, singer
):
    """No retry, no waiting out the budget: one refused request, the hint, no secret."""
    done = run_cli(reset_emulator, singer, tmp_path, **config)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count(hint) == 1
    for secret in {config.get("client_secret"), reset_emulator.target_config["client_secret"]}:
        assert not secret or secret not in done.stdout + done.stderr
    assert token_requests(reset_emulator) == requests
    assert landed(reset_emulator) == set()


def test_redirect_to_http_is_refused_and_the_secret_stays(
    reset_emulator, tmp_path, listener, singer
):
    """Item 8: a 307 from the token endpoint to http:// is not followed; the run stops naming the
    authority and the redirect target; the listener never sees the secret (or anything)."""
    reset_emulator.admin.set_faults(
        [
            {
                "action": "redirect",
                "status": 307,
                "operation": "token",
                "location": f"{listener.url}/steal",
            }
        ]
    )
    done = run_cli(reset_emulator, singer, tmp_path)
    secret = reset_emulator.target_config["client_secret"]
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        done.stderr.count(
            f"The identity provider at {reset_emulator.authority} answered 307 redirecting to "
            f"{listener.url}; token requests never follow redirects"
        )
        == 1
    )
    assert listener.received == []
    assert secret not in done.stdout + done.stderr
    assert token_requests(reset_emulator) == {"307": 1}
