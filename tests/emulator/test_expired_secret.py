"""An expired client secret (reference §1.3: 401 ``invalid_client``, AADSTS7000222)."""

from __future__ import annotations

import msal
import pytest

from dataverse_emulator.testing import https_session

pytestmark = pytest.mark.usefixtures("reset_emulator")


def token_response(server, client_id: str, secret: str):
    with https_session(server) as session:
        return session.post(
            f"{server.authority}/oauth2/v2.0/token",
            data={
                "client_id": client_id,
                "client_secret": secret,
                "grant_type": "client_credentials",
                "scope": f"{server.base_url}/.default",
            },
            headers={"client-request-id": "6a1c1c7e-52b0-4a7c-9d44-3a2a1b6f0c11"},
            timeout=30,
        )


def test_expired_secret_answers_aadsts7000222(emulator):
    """§1.3: 401, ``invalid_client``, error_codes [7000222], the documented text with the
    app id, trace and correlation ids; the secret itself never appears in the answer."""
    user = emulator.user(1)
    assert emulator.admin.expire_secret(user.client_id)["secret_expired"] is True
    response = token_response(emulator, user.client_id, user.secret)
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000222]
    assert body["error_description"].startswith(
        f"AADSTS7000222: The provided client secret keys for app '{user.client_id}' are expired. "
        "Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, "
        "or consider using certificate credentials for added security: "
        "https://aka.ms/certCreds.\r\nTrace ID: "
    )
    assert body["correlation_id"] == "6a1c1c7e-52b0-4a7c-9d44-3a2a1b6f0c11"
    assert body["error_uri"] == "https://login.microsoftonline.com/error?code=7000222"
    assert user.secret not in response.text
    assert emulator.admin.counters()["token_errors"] == 1


def test_wrong_secret_stays_7000215_and_other_users_unaffected(emulator):
    """§1.3: a wrong secret is still AADSTS7000215; other users still get tokens; reset
    (or ``{"expired": false}``) renews the secret."""
    user, other = emulator.user(1), emulator.user(0)
    emulator.admin.expire_secret(user.client_id)
    assert token_response(emulator, user.client_id, "wrong").json()["error_codes"] == [7000215]
    assert token_response(emulator, other.client_id, other.secret).status_code == 200
    emulator.admin.expire_secret(user.client_id, expired=False)
    assert token_response(emulator, user.client_id, user.secret).status_code == 200
    emulator.admin.expire_secret(user.client_id)
    emulator.admin.reset()
    assert token_response(emulator, user.client_id, user.secret).status_code == 200


def test_msal_returns_the_error(emulator):
    """§1.6: MSAL returns a 4xx token error as a dict (it does not raise)."""
    user = emulator.user(1)
    emulator.admin.expire_secret(user.client_id)
    app = msal.ConfidentialClientApplication(
        user.client_id,
        client_credential=user.secret,
        authority=emulator.authority,
        instance_discovery=False,
        http_client=https_session(emulator),
    )
    result = app.acquire_token_for_client(scopes=[f"{emulator.base_url}/.default"])
    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000222]
