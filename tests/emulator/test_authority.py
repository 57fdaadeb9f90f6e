"""The emulated Entra authority and the Web API's token check, over real HTTPS."""

from __future__ import annotations

import re
import time
import uuid

import jwt
import msal
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dataverse_emulator.authority import ASSERTION_TYPE
from dataverse_emulator.faults import classify
from dataverse_emulator.http import Response
from dataverse_emulator.pki import thumbprints
from dataverse_emulator.server import EmulatorServer
from dataverse_emulator.state.users import ApplicationUser
from dataverse_emulator.testing import acquire_token, https_session
from dataverse_emulator.tokens import TokenError, TokenService


def standin_wire(request, env):
    request.context["operation_kind"] = classify(request.method, request.path)
    request.context["operation_count"] = 1
    return Response(200, [("OData-Version", "4.0")], b'{"value":[]}')


@pytest.fixture(scope="module")
def server():
    with EmulatorServer(latency="zero", wire_handler=standin_wire) as running:
        yield running


@pytest.fixture
def http(server):
    with https_session(server) as session:
        yield session


def msal_app(server, credential, client_id=None, http_client=None):
    session = http_client or https_session(server)
    return msal.ConfidentialClientApplication(
        client_id or server.users.first.client_id,
        client_credential=credential,
        authority=server.authority,
        instance_discovery=False,
        http_client=session,
    )


def token_form(server, **overrides):
    user = server.users.first
    form = {
        "client_id": user.client_id,
        "client_secret": user.secret,
        "grant_type": "client_credentials",
        "scope": f"{server.base_url}/.default",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def test_msal_secret_gets_token_with_two_requests_then_cache(server):
    """§1.6: MSAL sends exactly one discovery GET and one token POST; the second call is a cache
    hit. §1.2: token_type Bearer, expires_in 3599, ext_expires_in."""
    server.admin.reset()
    app = msal_app(server, server.users.first.secret)
    scopes = [f"{server.base_url}/.default"]
    result = app.acquire_token_for_client(scopes=scopes)
    assert result["token_source"] == "identity_provider"
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    again = app.acquire_token_for_client(scopes=scopes)
    assert again["token_source"] == "cache"
    counters = server.admin.counters()
    assert counters["discovery_requests"] == 1
    assert counters["token_requests"] == 1


def test_token_claims(server):
    """§0.1 / Appendix A.2: a signed JWT whose aud is the org URL, with appid, oid and tid."""
    user = server.users.first
    token = msal_app(server, user.secret).acquire_token_for_client(
        scopes=[f"{server.base_url}/.default"]
    )["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == server.base_url
    assert claims["appid"] == user.client_id
    assert claims["oid"] == user.object_id
    assert claims["tid"] == server.tenant_id
    # iat is the issue second rounded down, exp rounded up: the token lives at least expires_in
    assert claims["exp"] - claims["iat"] in {3599, 3600}
    keys = https_session(server).get(f"{server.authority}/discovery/v2.0/keys", timeout=10)
    jwk = jwt.PyJWKSet.from_dict(keys.json())[jwt.get_unverified_header(token)["kid"]]
    jwt.decode(token, jwk.key, algorithms=["RS256"], audience=server.base_url)


@pytest.mark.parametrize("form", ["sha1", "sha256"])
def test_msal_certificate(server, http, form):
    """§1.1: certificate credential = client_assertion_type jwt-bearer + a signed assertion;
    §1.7: MSAL's {"private_key", "thumbprint"} (x5t, RS256) and {"private_key",
    "public_certificate"} (x5t#S256, PS256)."""
    user = server.users.with_certificate
    credential = {"private_key": server.pki.client_key.read_text()}
    if form == "sha1":
        credential["thumbprint"] = thumbprints(user.certificate_pem)[0]
    else:
        credential["public_certificate"] = user.certificate_pem.decode()
    app = msal_app(server, credential, client_id=user.client_id)
    result = app.acquire_token_for_client(scopes=[f"{server.base_url}/.default"])
    assert "access_token" in result, result.get("error_description")
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["appid"] == user.client_id
    assert claims["appidacr"] == "2"
    api = http.get(
        f"{server.api_url}/accounts",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        timeout=10,
    )
    assert api.status_code == 200


def test_msal_refreshes_after_short_lifetime(emulator_factory):
    """§1.6: a token with < 5 min left counts as expired, so MSAL goes back to the token
    endpoint; §1.5: an expired token gets 401 from the Web API, a fresh one works."""
    server = emulator_factory(latency="zero", token_lifetime=1, wire_handler=standin_wire)
    app = msal_app(server, server.users.first.secret)
    scopes = [f"{server.base_url}/.default"]
    first = app.acquire_token_for_client(scopes=scopes)
    time.sleep(2.1)  # exp is whole seconds rounded up: a 1 s token lives 1 to 2 s
    second = app.acquire_token_for_client(scopes=scopes)
    assert second["token_source"] == "identity_provider"
    assert second["access_token"] != first["access_token"]
    http = https_session(server)
    url = f"{server.api_url}/accounts"
    stale = http.get(url, headers={"Authorization": f"Bearer {first['access_token']}"}, timeout=5)
    assert stale.status_code == 401
    fresh = http.get(url, headers={"Authorization": f"Bearer {second['access_token']}"}, timeout=5)
    assert fresh.status_code == 200
    assert server.admin.counters()["token_requests"] == 2


def assert_entra_error(response, status, error, code):
    """§1.3 shape: error, error_description (AADSTS text, Trace ID, Correlation ID, Timestamp),
    error_codes, timestamp, trace_id, correlation_id, error_uri."""
    assert response.status_code == status
    body = response.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert re.fullmatch(
        rf"AADSTS{code}: .+\r\nTrace ID: {body['trace_id']}\r\n"
        rf"Correlation ID: {body['correlation_id']}\r\nTimestamp: {re.escape(body['timestamp'])}",
        body["error_description"],
        flags=re.DOTALL,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    return body


@pytest.mark.parametrize(
    ("overrides", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_id": str(uuid.UUID(int=7))}, 400, "unauthorized_client", 700016),
        ({"scope": "https://127.0.0.1/user.read"}, 400, "invalid_scope", 70011),
        ({"scope": "https://other.crm.dynamics.com/.default"}, 400, "invalid_resource", 500011),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"grant_type": None}, 400, "invalid_request", 900144),
        ({"client_secret": None}, 400, "invalid_request", 7000218),
    ],
    ids=[
        "bad-secret",
        "unknown-client",
        "bad-scope",
        "unknown-resource",
        "wrong-grant",
        "no-grant",
        "no-credential",
    ],
)
def test_token_errors(server, http, overrides, status, error, code):  # noqa: PLR0917 - parametrized
    """§1.3 table: bad secret 401 invalid_client AADSTS7000215, unknown client 400
    unauthorized_client AADSTS700016, scope and grant errors, missing secret AADSTS7000218."""
    response = http.post(
        f"{server.authority}/oauth2/v2.0/token", data=token_form(server, **overrides), timeout=10
    )
    body = assert_entra_error(response, status, error, code)
    if code == 7000215:
        assert "Invalid client secret provided" in body["error_description"]
        assert server.users.first.secret not in response.text


def test_bad_secret_message_and_correlation_id(server, http):
    """§1.3: AADSTS7000215 text names the app; Entra echoes the caller's client-request-id as
    the correlation id (MSAL sends one, §1.6)."""
    response = http.post(
        f"{server.authority}/oauth2/v2.0/token",
        data=token_form(server, client_secret="nope"),
        headers={"client-request-id": "11111111-2222-3333-4444-555555555555"},
        timeout=10,
    )
    body = assert_entra_error(response, 401, "invalid_client", 7000215)
    assert body["correlation_id"] == "11111111-2222-3333-4444-555555555555"
    assert (
        f"for a secret added to app '{server.users.first.client_id}'."
        in (body["error_description"])
    )


def test_unknown_tenant(server, http):
    """§1.3: unknown tenant → 400 AADSTS90002, invalid_request at the token endpoint and
    invalid_tenant on OIDC discovery; a malformed tenant → AADSTS900023."""
    other = str(uuid.UUID(int=1))
    token = http.post(
        f"{server.base_url}/{other}/oauth2/v2.0/token", data=token_form(server), timeout=10
    )
    body = assert_entra_error(token, 400, "invalid_request", 90002)
    assert f"Tenant '{other}' not found." in body["error_description"]
    discovery = http.get(
        f"{server.base_url}/{other}/v2.0/.well-known/openid-configuration", timeout=10
    )
    assert_entra_error(discovery, 400, "invalid_tenant", 90002)
    malformed = http.post(
        f"{server.base_url}/not_a_tenant!/oauth2/v2.0/token", data=token_form(server), timeout=10
    )
    assert_entra_error(malformed, 400, "invalid_request", 900023)


def test_msal_returns_bad_secret_as_dict(server):
    """§1.6: a 4xx from the token endpoint is returned by MSAL as a dict, not raised."""
    result = msal_app(server, "wrong-secret").acquire_token_for_client(
        scopes=[f"{server.base_url}/.default"]
    )
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]


def test_http_basic_client_authentication(server, http):
    """§1.1: HTTP Basic client authentication (RFC 6749 §2.3.1) is also accepted."""
    user = server.users.first
    response = http.post(
        f"{server.authority}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": f"{server.base_url}/.default"},
        auth=(user.client_id, user.secret),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def signed_assertion(server, key, audience=None, exp_offset=600, thumbprint=None):
    user = server.users.with_certificate
    now = int(time.time())
    return jwt.encode(
        {
            "aud": audience or f"{server.authority}/oauth2/v2.0/token",
            "iss": user.client_id,
            "sub": user.client_id,
            "iat": now,
            "exp": now + exp_offset,
            "jti": str(uuid.uuid4()),
        },
        key,
        algorithm="RS256",
        headers={"x5t": jwt.utils.base64url_encode(bytes.fromhex(thumbprint)).decode()},
    )


@pytest.mark.parametrize("problem", ["foreign-key", "expired", "audience", "unknown-cert"])
def test_bad_client_assertion(server, http, problem):
    """§1.1: the assertion is verified against the registered certificate (thumbprint,
    signature, aud, exp); failures are 401 invalid_client in the §1.3 shape."""
    user = server.users.with_certificate
    registered = thumbprints(user.certificate_pem)[0]
    own_key = serialization.load_pem_private_key(server.pki.client_key.read_bytes(), None)
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kwargs = {
        "foreign-key": {"key": foreign_key, "thumbprint": registered},
        "expired": {"key": own_key, "thumbprint": registered, "exp_offset": -60},
        "audience": {"key": own_key, "thumbprint": registered, "audience": "https://x/token"},
        "unknown-cert": {"key": own_key, "thumbprint": "AB" * 20},
    }[problem]
    response = http.post(
        f"{server.authority}/oauth2/v2.0/token",
        data={
            "client_id": user.client_id,
            "grant_type": "client_credentials",
            "scope": f"{server.base_url}/.default",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed_assertion(server, **kwargs),
        },
        timeout=10,
    )
    code = 700024 if problem == "expired" else 700027
    assert_entra_error(response, 401, "invalid_client", code)


def test_secret_user_cannot_use_someone_elses_certificate(server, http):
    """§1.1: the certificate must be registered on the application named by client_id."""
    own_key = serialization.load_pem_private_key(server.pki.client_key.read_bytes(), None)
    registered = thumbprints(server.users.with_certificate.certificate_pem)[0]
    response = http.post(
        f"{server.authority}/oauth2/v2.0/token",
        data={
            "client_id": server.users.first.client_id,
            "grant_type": "client_credentials",
            "scope": f"{server.base_url}/.default",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed_assertion(server, own_key, thumbprint=registered),
        },
        timeout=10,
    )
    assert_entra_error(response, 401, "invalid_client", 700027)


def test_discovery_document(server, http):
    """§1.6 / A.2: discovery names https authorization and token endpoints under /{tenant}/."""
    body = http.get(f"{server.authority}/v2.0/.well-known/openid-configuration", timeout=10).json()
    assert body["token_endpoint"] == f"{server.authority}/oauth2/v2.0/token"
    assert body["authorization_endpoint"] == f"{server.authority}/oauth2/v2.0/authorize"
    assert body["issuer"] == f"{server.authority}/v2.0"
    assert body["jwks_uri"] == f"{server.authority}/discovery/v2.0/keys"


def expect_401(server, http, headers):
    response = http.get(f"{server.api_url}/accounts", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f"Bearer authorization_uri={server.base_url}/{server.tenant_id}/oauth2/authorize, "
        f"resource_id={server.base_url}/"
    )
    assert response.json() == {
        "error": {
            "code": "0x8005F101",
            "message": "The requested resource requires authentication.",
        }
    }


def test_web_api_401_without_or_with_bad_token(server, http):
    """§1.5 / §11 #1: missing or invalid bearer → 401 with WWW-Authenticate: Bearer
    authorization_uri=…/{tenant}/oauth2/authorize, resource_id={org}/."""
    expect_401(server, http, {})
    expect_401(server, http, {"Authorization": "Bearer not-a-jwt"})
    expect_401(server, http, {"Authorization": "Basic Zm9vOmJhcg=="})


def test_web_api_401_for_token_of_another_emulator(server, http, emulator_factory):
    """§1.5: a token signed by another authority (another run) is refused."""
    other = emulator_factory(latency="zero", wire_handler=standin_wire)
    foreign = acquire_token(other)
    expect_401(server, http, {"Authorization": f"Bearer {foreign}"})


def test_revoked_token_gets_401(server, http):
    """§10 F2: tokens revoked mid-run → 401; a new token works again."""
    token = acquire_token(server)
    ok = http.get(
        f"{server.api_url}/accounts", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert ok.status_code == 200
    assert server.admin.revoke_tokens(server.users.first.client_id) >= 1
    expect_401(server, http, {"Authorization": f"Bearer {token}"})
    fresh = acquire_token(server)
    again = http.get(
        f"{server.api_url}/accounts", headers={"Authorization": f"Bearer {fresh}"}, timeout=10
    )
    assert again.status_code == 200


def test_get_on_token_endpoint(server, http):
    """§1.3 shape for AADSTS900561: the token endpoint only accepts POST."""
    response = http.get(f"{server.authority}/oauth2/v2.0/token", timeout=10)
    body = assert_entra_error(response, 400, "invalid_request", 900561)
    assert "Received a GET request." in body["error_description"]


def test_msal_oidc_authority(server):
    """§1.6: oidc_authority="https://127.0.0.1:P/T/v2.0" works (issuer equals it)."""
    app = msal.ConfidentialClientApplication(
        server.users.first.client_id,
        client_credential=server.users.first.secret,
        oidc_authority=f"{server.authority}/v2.0",
        http_client=https_session(server),
    )
    result = app.acquire_token_for_client(scopes=[f"{server.base_url}/.default"])
    assert result.get("token_type") == "Bearer", result.get("error_description")


def test_a_token_lives_at_least_its_lifetime():
    """§1.2: ``expires_in`` is a promise: a token issued late in a second is still valid a
    whole lifetime later (whole-second ``exp`` rounds up, never down)."""
    now = [100.9]
    tokens = TokenService("tenant", lifetime=1, clock=lambda: now[0])
    user = ApplicationUser(
        client_id="app", name="app", systemuser_id="u", business_unit_id="", object_id="o"
    )
    token = tokens.issue(user, "https://org.example", certificate=False)
    now[0] = 101.85
    assert tokens.verify(token, "https://org.example")["exp"] == 102
    now[0] = 102.0
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, "https://org.example")
