"""Conformance: Entra token endpoint (§1.1-§1.3), bearer checks (§1.5) and WhoAmI (§2.4)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import msal
import pytest
from conformance_support import GUID, JSON_CONTENT_TYPE, ODATA_HEADERS, msal_token, trusting_session

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
UNAUTHENTICATED = {
    "error": {
        "code": "0x8005F101",
        "message": "The requested resource requires authentication.",
    }
}


@pytest.fixture
def config(conformance_server):
    conformance_server.admin.reset()
    return conformance_server.target_config


@pytest.fixture
def http(config):
    with trusting_session(config["ca_bundle"]) as session:
        yield session


def token_post(http, config, tenant=None, **overrides):
    form = {
        "client_id": config["client_id"],
        "client_secret": config["client_secret"],
        "grant_type": "client_credentials",
        "scope": f"{config['dynamics_url']}/.default",
    }
    form.update(overrides)
    form = {name: value for name, value in form.items() if value is not None}
    tenant = tenant or config["tenant_id"]
    url = f"{config['authority_host']}/{tenant}/oauth2/v2.0/token"
    return http.post(url, data=form, timeout=30)


def assert_aadsts(response, status, error, code, description_start):
    """§1.3: ``error``, ``error_description`` (AADSTS text + trace lines), ``error_codes``,
    ``timestamp``, ``trace_id``, ``correlation_id``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert "no-store" in response.headers["Cache-Control"]  # the recorded 401's headers
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    description = body["error_description"]
    assert description.startswith(f"AADSTS{code}: {description_start}"), description
    assert "\r\nTrace ID: " in description
    assert "\r\nCorrelation ID: " in description
    assert "\r\nTimestamp: " in description
    assert TIMESTAMP.match(body["timestamp"]), body["timestamp"]
    assert GUID.match(body["trace_id"])
    assert GUID.match(body["correlation_id"])
    assert "access_token" not in body
    return body


def test_token_success_shape(http, config):
    """§1.2: 200 ``{"token_type":"Bearer","expires_in":3599,"access_token":…}``; §1.1: no
    refresh token in the client-credentials flow; §1.6: ``ext_expires_in`` ≥ 3599."""
    response = token_post(http, config)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert isinstance(body["ext_expires_in"], int)
    assert body["ext_expires_in"] >= 3599
    assert body["access_token"].count(".") == 2  # a JWT
    assert "refresh_token" not in body


def test_msal_gets_token_then_serves_from_cache(config):
    """§1.6: MSAL with ``instance_discovery=False`` and a CA-trusting ``http_client`` gets a
    token from the identity provider (one discovery GET, one token POST)."""
    result = msal_token(config)
    assert result["token_type"] == "Bearer"
    assert result["token_source"] == "identity_provider"
    assert result["expires_in"] == 3599


def test_bad_secret_is_401_invalid_client(http, config):
    """§1.3: wrong client secret → 401 ``invalid_client`` AADSTS7000215."""
    response = token_post(http, config, client_secret="not-the-secret")
    body = assert_aadsts(
        response,
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app "
        f"'{config['client_id']}'.",
    )
    assert "not-the-secret" not in response.text
    assert body.get("error_uri", "https://login.microsoftonline.com/error?code=7000215") == (
        "https://login.microsoftonline.com/error?code=7000215"
    )


def test_bad_secret_is_returned_by_msal_as_a_dict(config):
    """§1.6: a wrong secret → MSAL returns ``{'error': 'invalid_client', …AADSTS7000215…}``."""
    result = msal_token(config, client_secret="not-the-secret")
    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS7000215: ")
    assert "access_token" not in result


def test_unknown_client_is_400_unauthorized_client(http, config):
    """§1.3: unknown client id → 400 ``unauthorized_client`` AADSTS700016."""
    client_id = str(uuid.uuid4())
    response = token_post(http, config, client_id=client_id)
    assert_aadsts(
        response,
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory "
        f"'{config['tenant_id']}'. This can happen if the application has not been installed "
        "by the administrator of the tenant or consented to by any user in the tenant. You "
        "may have sent your authentication request to the wrong tenant.",
    )


def test_unknown_tenant_is_400_aadsts90002(http, config):
    """§1.3: unknown tenant → 400 ``invalid_request`` AADSTS90002 at the token endpoint."""
    tenant = str(uuid.uuid4())
    response = token_post(http, config, tenant=tenant)
    assert_aadsts(
        response,
        400,
        "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and "
        "are signing into the correct cloud. Check with your subscription administrator, this "
        "may happen if there are no active subscriptions for the tenant.",
    )


def test_missing_secret_is_400_aadsts7000218(http, config):
    """§1.3: neither secret nor assertion → 400 ``invalid_request`` AADSTS7000218."""
    response = token_post(http, config, client_secret=None)
    assert_aadsts(
        response,
        400,
        "invalid_request",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


def test_other_grant_type_is_400_unsupported_grant_type(http, config):
    """§A.2: another grant → 400 ``unsupported_grant_type``."""
    response = token_post(http, config, grant_type="password")
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "unsupported_grant_type"


def assert_challenge(response, config):
    """§1.5: 401 + ``WWW-Authenticate: Bearer authorization_uri=…/{tenant}/oauth2/authorize,
    resource_id={org}/`` parsed as the .NET ServiceClient does; §11 #1: empty body or the
    0x8005F101 error; §2.3: ``REQ_ID`` and ``x-ms-service-request-id`` as on every response."""
    assert response.status_code == 401, response.text
    assert response.headers["OData-Version"] == "4.0"  # §2.3: on every response
    assert response.headers["REQ_ID"] == response.headers["x-ms-service-request-id"]  # §2.3
    scheme, _, params = response.headers["WWW-Authenticate"].partition(" ")
    assert scheme == "Bearer"
    pairs = dict(item.strip().split("=", 1) for item in params.split(","))
    assert pairs == {
        "authorization_uri": (f"{config['authority_host']}/{config['tenant_id']}/oauth2/authorize"),
        "resource_id": f"{config['dynamics_url']}/",
    }
    if response.content:
        assert response.json() == UNAUTHENTICATED


def test_missing_bearer_is_401_with_challenge(http, config):
    """§1.5: an unauthenticated GET gets 401 with the ``WWW-Authenticate`` challenge."""
    response = http.get(f"{config['dynamics_url']}/api/data/v9.2/WhoAmI", headers=ODATA_HEADERS)
    assert_challenge(response, config)


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer ", "bearer"],
)
def test_invalid_bearer_is_401_with_challenge(http, config, authorization):
    """§1.5: a malformed or non-bearer ``Authorization`` header → 401 + challenge."""
    headers = {**ODATA_HEADERS, "Authorization": authorization}
    response = http.get(f"{config['dynamics_url']}/api/data/v9.2/contacts", headers=headers)
    assert_challenge(response, config)


def test_tampered_token_is_401_with_challenge(http, config, session_token):
    """§1.5: a token whose signature does not verify (``TamperedAuthTicket``) → 401."""
    header, payload, signature = session_token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {forged}"}
    response = http.get(f"{config['dynamics_url']}/api/data/v9.2/WhoAmI", headers=headers)
    assert_challenge(response, config)


def test_expired_token_is_401_with_challenge(emulator_factory):
    """§1.5: an expired token (``ExpiredAuthTicket``) → 401 + challenge."""
    # exp is whole seconds rounded up, so a 1 s token is valid for 1 to 2 s: 2.1 s later it has
    # surely expired.
    server = emulator_factory(latency="zero", token_lifetime=1)
    config = server.target_config
    result = msal_token(config)
    token = result["access_token"]
    with trusting_session(config["ca_bundle"]) as http:
        url = f"{config['dynamics_url']}/api/data/v9.2/WhoAmI"
        headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
        assert http.get(url, headers=headers, timeout=30).status_code == 200
        time.sleep(2.1)
        assert_challenge(http.get(url, headers=headers, timeout=30), config)


@pytest.mark.parametrize("path", ["WhoAmI", "WhoAmI()"])
def test_whoami(dv, path):
    """§2.4: 200, ``application/json; odata.metadata=minimal``, OData-Version 4.0, context
    ``$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse`` and three GUIDs; ``WhoAmI()`` too.
    §7.3: Microsoft's samples call WhoAmI to read ``x-ms-dop-hint``."""
    response = dv.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE
    assert response.headers["OData-Version"] == "4.0"
    assert int(response.headers["x-ms-dop-hint"]) >= 1
    body = response.json()
    assert set(body) == {"@odata.context", "BusinessUnitId", "UserId", "OrganizationId"}
    assert body["@odata.context"] == (
        f"{dv.api_url}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
    )
    for name in ("BusinessUnitId", "UserId", "OrganizationId"):
        assert GUID.match(body[name]), body


def test_whoami_ids_name_real_rows(dv):
    """§2.4: ``UserId`` is the caller's systemuser and ``BusinessUnitId`` its business unit;
    rows the caller creates are owned by that user."""
    body = dv.get("WhoAmI").json()
    assert body["UserId"] != body["BusinessUnitId"]
    created = dv.post(
        "contacts", json={"lastname": "Mine"}, headers={"Prefer": "return=representation"}
    )
    assert created.json()["_ownerid_value"] == body["UserId"]
    user = dv.get(f"systemusers({body['UserId']})?$select=_businessunitid_value")
    assert user.status_code == 200, user.text
    assert user.json()["_businessunitid_value"] == body["BusinessUnitId"]
    unit = dv.get(f"businessunits({body['BusinessUnitId']})")
    assert unit.status_code == 200, unit.text


def users_file(server):
    """The documented ``users.json`` next to ``ca.pem``: every registered user."""
    return json.loads((server.data_dir / "users.json").read_text(encoding="utf-8"))["users"]


def test_discovery_document(http, config):
    """§A.2: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` → ``issuer``,
    ``authorization_endpoint``, ``token_endpoint``, ``jwks_uri`` on the request's host."""
    host, tenant = config["authority_host"], config["tenant_id"]
    response = http.get(f"{host}/{tenant}/v2.0/.well-known/openid-configuration", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        name: body[name]
        for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    } == {
        "issuer": f"{host}/{tenant}/v2.0",
        "authorization_endpoint": f"{host}/{tenant}/oauth2/v2.0/authorize",
        "token_endpoint": f"{host}/{tenant}/oauth2/v2.0/token",
        "jwks_uri": f"{host}/{tenant}/discovery/v2.0/keys",
    }


def test_msal_with_oidc_authority(config):
    """§1.6: ``oidc_authority="https://127.0.0.1:P/T/v2.0"`` works (the ``issuer`` must equal
    it)."""
    app = msal.ConfidentialClientApplication(
        config["client_id"],
        client_credential=config["client_secret"],
        oidc_authority=f"{config['authority_host']}/{config['tenant_id']}/v2.0",
        http_client=trusting_session(config["ca_bundle"]),
    )
    result = app.acquire_token_for_client(scopes=[f"{config['dynamics_url']}/.default"])
    assert result.get("token_type") == "Bearer", result.get("error_description")


def test_msal_certificate_credential(conformance_server, config):
    """§1.1 / §1.7: a certificate user authenticates with a signed client assertion
    (``client_credential={"private_key", "thumbprint"}``) and can call the Web API."""
    user = next(entry for entry in users_file(conformance_server) if "certificate" in entry)
    credential = {
        "private_key": Path(user["private_key"]).read_text(encoding="utf-8"),
        "thumbprint": user["thumbprint"],
    }
    app = msal.ConfidentialClientApplication(
        user["client_id"],
        client_credential=credential,
        authority=f"{config['authority_host']}/{config['tenant_id']}",
        instance_discovery=False,
        http_client=trusting_session(config["ca_bundle"]),
    )
    result = app.acquire_token_for_client(scopes=[f"{config['dynamics_url']}/.default"])
    assert "access_token" in result, result.get("error_description")
    with trusting_session(config["ca_bundle"]) as http:
        headers = {**ODATA_HEADERS, "Authorization": f"Bearer {result['access_token']}"}
        response = http.get(
            f"{config['dynamics_url']}/api/data/v9.2/WhoAmI", headers=headers, timeout=30
        )
    assert response.status_code == 200, response.text


def test_http_basic_client_authentication(http, config):
    """§1.1: HTTP Basic client authentication (RFC 6749 §2.3.1) is also accepted."""
    url = f"{config['authority_host']}/{config['tenant_id']}/oauth2/v2.0/token"
    response = http.post(
        url,
        data={"grant_type": "client_credentials", "scope": f"{config['dynamics_url']}/.default"},
        auth=(config["client_id"], config["client_secret"]),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"


def test_scopes_for_two_resources_are_400(http, config):
    """§1.3: scopes for more than one resource → 400 ``invalid_scope`` AADSTS700022."""
    scope = f"{config['dynamics_url']}/.default https://graph.microsoft.com/.default"
    response = token_post(http, config, scope=scope)
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["error"], body["error_codes"]) == ("invalid_scope", [700022])
    assert body["error_description"].startswith("AADSTS700022: ")


def test_revoked_token_is_401(conformance_server, config):
    """§1.5: a token the service no longer accepts → 401 + challenge (revoked through the
    control API, which also revokes the suite's token until the reset below)."""
    token = msal_token(config)["access_token"]
    url = f"{config['dynamics_url']}/api/data/v9.2/WhoAmI"
    headers = {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}
    try:
        with trusting_session(config["ca_bundle"]) as http:
            assert http.get(url, headers=headers, timeout=30).status_code == 200
            conformance_server.admin.revoke_tokens(config["client_id"])
            assert_challenge(http.get(url, headers=headers, timeout=30), config)
    finally:
        conformance_server.admin.reset()


def test_discovery_for_unknown_tenant_is_400(http, config):
    """§1.3: unknown tenant at OIDC discovery → 400 ``invalid_tenant`` AADSTS90002."""
    tenant = str(uuid.uuid4())
    response = http.get(
        f"{config['authority_host']}/{tenant}/v2.0/.well-known/openid-configuration", timeout=30
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [90002]
    assert body["error_description"].startswith(f"AADSTS90002: Tenant '{tenant}' not found.")


def test_malformed_tenant_is_400_aadsts900023(http, config):
    """§1.3: malformed tenant id → 400 ``invalid_request`` AADSTS900023."""
    response = token_post(http, config, tenant="not_a_tenant!")
    assert_aadsts(
        response,
        400,
        "invalid_request",
        900023,
        "Specified tenant identifier 'not_a_tenant!' is neither a valid DNS name, nor a valid "
        "external domain.",
    )
