"""TokenProvider with real MSAL against the emulator's Entra token endpoint (§1.1 to §1.7).

What reached the authority is read from the emulator's counters (``requests["token"]`` and
``requests["discovery"]`` by outcome), never from the provider under test.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from target_dynamics import auth
from target_dynamics.auth import Credentials, TokenProvider
from target_dynamics.errors import AuthError
from target_dynamics.transport import make_session, trust_context

TENANT = "tenant-1"
SECRET = "s3cr3t-value"


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Backoff delays of milliseconds (Retry-After from the emulator is still obeyed)."""
    monkeypatch.setattr(auth, "BACKOFF_BASE_SECONDS", 0.01)
    monkeypatch.setattr(auth, "BACKOFF_CAP_SECONDS", 0.05)


def provider(server, *, secret: str | None = None, tenant: str | None = None, **options):
    config = server.target_config
    return TokenProvider(
        Credentials(
            tenant or config["tenant_id"],
            config["client_id"],
            client_secret=secret or config["client_secret"],
        ),
        authority_host=config["authority_host"],
        resource_url=config["dynamics_url"],
        session=make_session(trust_context(config["ca_bundle"])),
        **options,
    )


def authority_requests(server, kind: str = "token") -> dict[str, int]:
    return server.admin.counters()["requests"].get(kind, {})


def test_token_is_fetched_once_then_cached(reset_emulator):
    """§1.1 scope `{org}/.default` (the emulator refuses any other); §1.6: a second call is a
    cache hit, and no instance discovery leaves the machine for a non-Microsoft host."""
    tokens = provider(reset_emulator)
    assert tokens.token() == tokens.token()
    assert authority_requests(reset_emulator) == {"200": 1}
    assert authority_requests(reset_emulator, "discovery") == {"200": 1}


def test_invalidate_forces_a_new_token(reset_emulator):
    """§10 F2: after a 401 the next call goes to the identity provider."""
    tokens = provider(reset_emulator)
    first = tokens.token()
    tokens.invalidate()
    assert tokens.token() != first
    assert authority_requests(reset_emulator) == {"200": 2}


def test_refresh_before_expiry(emulator_factory):
    """§1.6: a token with under 5 minutes left is not served from the cache."""
    server = emulator_factory(latency="zero", token_lifetime=120)
    tokens = provider(server)
    tokens.token()
    tokens.token()
    assert authority_requests(server) == {"200": 2}


@pytest.mark.parametrize(
    ("rule", "failed"),
    [
        ({"action": "error", "status": 503, "times": 2}, {"503": 2}),
        ({"action": "error", "status": 500, "times": 1}, {"500": 1}),
        ({"action": "throttle", "retry_after": 1, "times": 1}, {"429": 1}),
        ({"action": "reset", "times": 2}, {"reset": 2}),
        ({"action": "drop", "times": 1}, {"reset": 1}),
    ],
    ids=["503", "500", "429-AADSTS90033", "reset", "drop"],
)
def test_blips_at_the_token_endpoint_are_retried(reset_emulator, rule, failed):
    """Entra's temporarily_unavailable (AADSTS90033) as 429 / 5xx, and broken connections, are
    retried. MSAL replays a 429 / 5xx from its HTTP cache (5 s without Retry-After, §1.6); every
    retry here still reaches the endpoint (the failures are counted there)."""
    reset_emulator.admin.set_faults([{**rule, "operation": "token"}])
    assert provider(reset_emulator).token()
    assert authority_requests(reset_emulator) == {**failed, "200": 1}


def test_blip_at_discovery_is_retried(reset_emulator):
    """A 503 on the OpenID configuration MSAL reads first (start-up) is retried too."""
    reset_emulator.admin.set_faults(
        [{"action": "error", "status": 503, "operation": "discovery", "times": 2}]
    )
    assert provider(reset_emulator).token()
    assert authority_requests(reset_emulator, "discovery") == {"503": 2, "200": 1}


def test_waiting_threads_share_one_fetch(reset_emulator):
    """Only one thread asks the identity provider; the others get its token."""
    reset_emulator.admin.set_faults(
        [{"action": "error", "status": 503, "operation": "token", "times": 2}]
    )
    tokens = provider(reset_emulator)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(tokens.token())) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert len(results) == 6
    assert authority_requests(reset_emulator) == {"503": 2, "200": 1}


def test_outage_longer_than_the_budget_fails_clearly_then_at_once(reset_emulator):
    """An outage is retried for retry_budget_seconds in total; after that every caller fails at
    once with what kept failing and what to do, without asking the identity provider again."""
    reset_emulator.admin.set_faults([{"action": "error", "status": 503, "operation": "token"}])
    tokens = provider(reset_emulator, retry_budget_seconds=0.3)
    with pytest.raises(AuthError) as caught:
        tokens.token()
    message = str(caught.value)
    assert f"The identity provider at {reset_emulator.authority} kept failing for" in message
    assert "retry budget 0 s" in message
    assert "last error: HTTP 503" in message
    assert "run the pipeline again" in message
    asked = authority_requests(reset_emulator)["503"]
    assert asked > 1
    with pytest.raises(AuthError, match="kept failing"):
        tokens.token()
    assert authority_requests(reset_emulator) == {"503": asked}


def test_retry_after_beyond_the_budget_gives_up_at_once(reset_emulator):
    """A Retry-After that would end after the budget is not waited out."""
    reset_emulator.admin.set_faults(
        [{"action": "throttle", "operation": "token", "retry_after": 600}]
    )
    with pytest.raises(AuthError) as caught:
        provider(reset_emulator, retry_budget_seconds=30).token()
    assert "temporarily_unavailable: AADSTS90033" in str(caught.value)
    assert authority_requests(reset_emulator) == {"429": 1}


def test_wrong_secret_fails_at_once_with_hint_and_without_secret(reset_emulator):
    """§1.3: 401 invalid_client AADSTS7000215 -> AuthError naming the fix, never the secret,
    after one request (permanent errors are not retried)."""
    with pytest.raises(AuthError) as caught:
        provider(reset_emulator, secret=SECRET).token()
    message = str(caught.value)
    assert "AADSTS7000215" in message
    assert "secret *value*" in message
    assert "Trace ID" not in message
    assert SECRET not in message
    assert authority_requests(reset_emulator) == {"401": 1}


def test_unknown_tenant_fails_at_once(reset_emulator):
    """§1.3 AADSTS90002 at discovery (400): no retry, a hint naming tenant_id."""
    with pytest.raises(AuthError) as caught:
        provider(reset_emulator, tenant="contoso.onmicrosoft.com").token()
    assert "Check tenant_id: your directory's id" in str(caught.value)
    assert authority_requests(reset_emulator, "discovery") == {"400": 1}
    assert authority_requests(reset_emulator) == {}


def test_wrong_thumbprint_fails_at_once(reset_emulator):
    """§1.7: a certificate the app does not know is AADSTS700027, not retried."""
    users = json.loads((reset_emulator.data_dir / "users.json").read_text())
    [cert_user] = [u for u in users["users"] if "thumbprint" in u]
    config = reset_emulator.target_config
    tokens = TokenProvider(
        Credentials(
            config["tenant_id"],
            cert_user["client_id"],
            certificate_private_key=Path(cert_user["private_key"]).read_text(),
            certificate_thumbprint="AB" * 20,
        ),
        authority_host=config["authority_host"],
        resource_url=config["dynamics_url"],
        session=make_session(trust_context(config["ca_bundle"])),
    )
    with pytest.raises(AuthError, match=r"AADSTS700027.*Check certificate_thumbprint"):
        tokens.token()
    assert authority_requests(reset_emulator) == {"401": 1}


def test_untrusted_certificate_fails_at_once(reset_emulator):
    """TLS verification failures are configuration, not blips: ca_bundle is named."""
    config = reset_emulator.target_config
    tokens = TokenProvider(
        Credentials(config["tenant_id"], config["client_id"], config["client_secret"]),
        authority_host=config["authority_host"],
        resource_url=config["dynamics_url"],
        session=make_session(trust_context(None)),
    )
    with pytest.raises(
        AuthError, match=r"TLS verification of https://127\.0\.0\.1:.* set ca_bundle"
    ):
        tokens.token()


@pytest.mark.parametrize(("operation", "status"), [("token", 307), ("discovery", 302)])
def test_redirect_to_http_is_refused(reset_emulator, listener, operation, status):
    """A redirected token request would carry the secret: never followed; the error names the
    authority and where it pointed, not the secret; nothing reaches the http listener."""
    reset_emulator.admin.set_faults(
        [
            {
                "action": "redirect",
                "status": status,
                "operation": operation,
                "location": f"{listener.url}/steal?x=1",
            }
        ]
    )
    config = reset_emulator.target_config
    with pytest.raises(AuthError) as caught:
        provider(reset_emulator).token()
    message = str(caught.value)
    assert f"at {reset_emulator.authority} answered {status} redirecting to {listener.url};" in (
        message
    )
    assert config["client_secret"] not in message
    assert listener.received == []
    assert authority_requests(reset_emulator, operation) == {str(status): 1}


def test_http_authority_is_never_called(listener):
    """§1.6: an http authority is refused before anything is sent."""
    tokens = TokenProvider(
        Credentials(TENANT, "client-1", client_secret=SECRET),
        authority_host=listener.url,
        resource_url="https://org.crm.dynamics.com",
        session=make_session(trust_context(None)),
    )
    with pytest.raises(AuthError, match="should consist of an https url"):
        tokens.token()
    assert listener.received == []


def test_credentials():
    """§1.7: certificate credential shape; a secret or a full certificate is required."""
    cert = Credentials(TENANT, "c", certificate_private_key="PEM", certificate_thumbprint="AB")
    assert cert.client_credential() == {"private_key": "PEM", "thumbprint": "AB"}
    assert Credentials(TENANT, "c", client_secret=SECRET).client_credential() == SECRET
    assert SECRET not in repr(Credentials(TENANT, "c", client_secret=SECRET))
    with pytest.raises(AuthError, match="No credential"):
        Credentials(TENANT, "c", certificate_thumbprint="AB").client_credential()
