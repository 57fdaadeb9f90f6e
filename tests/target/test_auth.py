"""TokenProvider against a mocked Entra token endpoint (§1.1 to §1.6)."""

from __future__ import annotations

import re
import urllib.parse

import pytest
import requests

from target_dynamics.auth import CLOUD_AUTHORITY_HOSTS, Credentials, TokenProvider
from target_dynamics.errors import AuthError

AUTHORITY = "https://login.example.test"
TENANT = "tenant-1"
SECRET = "s3cr3t-value"
DISCOVERY = f"{AUTHORITY}/{TENANT}/v2.0/.well-known/openid-configuration"
TOKEN_URL = f"{AUTHORITY}/{TENANT}/oauth2/v2.0/token"


@pytest.fixture
def idp(requests_mock):
    requests_mock.get(
        DISCOVERY,
        json={
            "authorization_endpoint": f"{AUTHORITY}/{TENANT}/oauth2/v2.0/authorize",
            "token_endpoint": TOKEN_URL,
            "issuer": f"{AUTHORITY}/{TENANT}/v2.0",
        },
    )
    return requests_mock


def provider(secret=SECRET):
    return TokenProvider(
        Credentials(TENANT, "client-1", client_secret=secret),
        authority_host=AUTHORITY,
        resource_url="https://org.crm.dynamics.com/",
        session=requests.Session(),
        timeout=7,
    )


def token_posts(mock):
    return [r for r in mock.request_history if r.url == TOKEN_URL]


def test_token_is_fetched_once_then_cached(idp):
    """§1.1 scope `{org}/.default`; §1.6: a second call is a cache hit (no HTTP)."""
    idp.post(TOKEN_URL, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "at-1"})
    tokens = provider()
    assert tokens.token() == "at-1"
    assert tokens.token() == "at-1"
    (post,) = token_posts(idp)
    form = urllib.parse.parse_qs(post.text)
    assert form["scope"] == ["https://org.crm.dynamics.com/.default"]
    assert form["grant_type"] == ["client_credentials"]
    assert post.timeout == 7
    assert not any("discovery/instance" in r.url for r in idp.request_history)


def test_invalidate_forces_a_new_token(idp):
    """§10 F2: after a 401 the next call goes to the identity provider."""
    idp.post(
        TOKEN_URL,
        [
            {"json": {"token_type": "Bearer", "expires_in": 3599, "access_token": "at-1"}},
            {"json": {"token_type": "Bearer", "expires_in": 3599, "access_token": "at-2"}},
        ],
    )
    tokens = provider()
    assert tokens.token() == "at-1"
    tokens.invalidate()
    assert tokens.token() == "at-2"
    assert len(token_posts(idp)) == 2


def test_refresh_before_expiry(idp):
    """§1.6: a token with under 5 minutes left is not served from the cache."""
    idp.post(
        TOKEN_URL,
        [
            {"json": {"token_type": "Bearer", "expires_in": 120, "access_token": "short"}},
            {"json": {"token_type": "Bearer", "expires_in": 3599, "access_token": "fresh"}},
        ],
    )
    tokens = provider()
    assert tokens.token() == "short"
    assert tokens.token() == "fresh"


def test_wrong_secret_is_actionable_and_secret_free(idp):
    """§1.3: 401 invalid_client AADSTS7000215 -> AuthError naming the fix, never the secret."""
    idp.post(
        TOKEN_URL,
        status_code=401,
        json={
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
            "error_codes": [7000215],
        },
    )
    with pytest.raises(AuthError) as caught:
        provider().token()
    message = str(caught.value)
    assert "AADSTS7000215" in message
    assert "secret *value*" in message
    assert "Trace ID" not in message
    assert SECRET not in message


def test_network_failure_is_auth_error(idp):
    idp.post(TOKEN_URL, exc=requests.ConnectionError("refused"))
    with pytest.raises(AuthError, match=re.escape(f"Token request to {AUTHORITY}/{TENANT} failed")):
        provider().token()


def test_credentials():
    """§1.7: certificate credential shape; a secret or a full certificate is required."""
    cert = Credentials(TENANT, "c", certificate_private_key="PEM", certificate_thumbprint="AB")
    assert cert.client_credential() == {"private_key": "PEM", "thumbprint": "AB"}
    assert Credentials(TENANT, "c", client_secret=SECRET).client_credential() == SECRET
    assert SECRET not in repr(Credentials(TENANT, "c", client_secret=SECRET))
    with pytest.raises(AuthError, match="No credential"):
        Credentials(TENANT, "c", certificate_thumbprint="AB").client_credential()


def test_cloud_hosts():
    """§1.4 sovereign clouds."""
    assert CLOUD_AUTHORITY_HOSTS["gcc_high"] == "https://login.microsoftonline.us"
    assert CLOUD_AUTHORITY_HOSTS["china"] == "https://login.partner.microsoftonline.cn"
    assert set(CLOUD_AUTHORITY_HOSTS) == {"public", "gcc", "gcc_high", "dod", "china"}
