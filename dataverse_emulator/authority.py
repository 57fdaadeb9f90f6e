"""The emulated Microsoft Entra ID authority (reference §1.1 to §1.3, §1.6, Appendix A.2).

Serves, for the emulated tenant, exactly what MSAL's confidential client reads:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``
- ``POST /{tenant}/oauth2/v2.0/token`` (client credentials with a secret, HTTP Basic client
  authentication or a certificate-signed JWT client assertion)
- ``GET /{tenant}/discovery/v2.0/keys``

Failures use Entra's JSON shape (§1.3). Codes the reference does not list (AADSTS900144
missing parameter, AADSTS900561 wrong method, AADSTS70003 unsupported grant type, AADSTS500011
unknown resource, AADSTS700024 / AADSTS700027 bad client assertion, AADSTS50027 malformed
assertion) follow Entra's published error texts; the exact wording of those is not pinned down
by the reference.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import typing as t
import urllib.parse
import uuid

import jwt
import orjson
from cryptography import x509

from dataverse_emulator.http import Request, Response
from dataverse_emulator.pki import thumbprints

if t.TYPE_CHECKING:
    from dataverse_emulator.counters import Counters
    from dataverse_emulator.http import Handler
    from dataverse_emulator.state.users import ApplicationUser, Users
    from dataverse_emulator.tokens import TokenService

TENANT_DOMAIN = "dataverse-emulator.onmicrosoft.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

_ROUTE = re.compile(
    r"^/(?P<tenant>[^/]+)/(?P<endpoint>v2\.0/\.well-known/openid-configuration|"
    r"oauth2/v2\.0/token|discovery/v2\.0/keys)$"
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_DNS = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,}$")
_JSON = "application/json; charset=utf-8"


class AuthorityError(Exception):
    """A token-endpoint failure: HTTP status, OAuth ``error`` and AADSTS code + text."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.code = code
        self.message = message


def _missing(name: str) -> AuthorityError:
    return AuthorityError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _unknown_tenant(tenant: str, error: str) -> AuthorityError:
    return AuthorityError(
        400,
        error,
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    )


class Authority:
    """Answers the Entra endpoints of one tenant; passes every other request to ``inner``."""

    def __init__(
        self,
        tenant_id: str,
        users: Users,
        tokens: TokenService,
        counters: Counters,
        inner: Handler,
    ) -> None:
        self.tenant_id = tenant_id
        self._users = users
        self._tokens = tokens
        self._counters = counters
        self._inner = inner

    async def __call__(self, request: Request) -> Response:
        """Serve an authority endpoint, or delegate."""
        match = _ROUTE.match(request.path)
        if match is None:
            return await self._inner(request)
        tenant, endpoint = match["tenant"], match["endpoint"]
        request.context["operation_kind"] = _kind(endpoint)
        try:
            if endpoint == "oauth2/v2.0/token":
                self._counters.token_requests += 1
                self._check_tenant(tenant, "invalid_request")
                return self._token(request, tenant)
            self._check_tenant(tenant, "invalid_tenant")
            if endpoint.startswith("v2.0"):
                self._counters.discovery_requests += 1
                return _json(200, self._configuration(request.base_url, tenant))
            return _json(200, self._tokens.jwks())
        except AuthorityError as exc:
            self._counters.token_errors += 1
            return entra_error(exc, request.headers.get("client-request-id"))

    def _check_tenant(self, tenant: str, error: str) -> None:
        if tenant.lower() in {self.tenant_id.lower(), TENANT_DOMAIN}:
            return
        if not (_GUID.match(tenant) or _DNS.match(tenant)):
            raise AuthorityError(
                400,
                "invalid_request",
                900023,
                f"Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a "
                "valid external domain.",
            )
        raise _unknown_tenant(tenant, error)

    def _configuration(self, base_url: str, tenant: str) -> dict[str, t.Any]:
        root = f"{base_url}/{tenant}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base_url}/{self.tenant_id}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _token(self, request: Request, tenant: str) -> Response:
        if request.method != "POST":
            raise AuthorityError(
                400,
                "invalid_request",
                900561,
                "The endpoint only accepts POST, OPTIONS requests. Received a "
                f"{request.method} request.",
            )
        form = _form(request.body)
        basic = _basic_credentials(request.headers.get("authorization", ""))
        grant_type = form.get("grant_type")
        if not grant_type:
            raise _missing("grant_type")
        if grant_type != "client_credentials":
            raise AuthorityError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        client_id = form.get("client_id") or (basic[0] if basic else "")
        if not client_id:
            raise _missing("client_id")
        scope = form.get("scope")
        if not scope:
            raise _missing("scope")
        user = self._users.get(client_id)
        if user is None:
            raise AuthorityError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may "
                "have sent your authentication request to the wrong tenant.",
            )
        secret = form.get("client_secret") or (basic[1] if basic else None)
        assertion = form.get("client_assertion")
        if assertion and form.get("client_assertion_type") == ASSERTION_TYPE:
            token_endpoint = f"{request.base_url}/{tenant}/oauth2/v2.0/token"
            _verify_assertion(assertion, user, token_endpoint)
        elif secret is not None:
            _check_secret(user, secret)
        else:
            raise AuthorityError(
                400,
                "invalid_request",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        audience = self._resource(scope, request.base_url, tenant)
        token = self._tokens.issue(user, audience, certificate=assertion is not None)
        lifetime = self._tokens.lifetime
        return _json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": token,
            },
        )

    def _resource(self, scope: str, base_url: str, tenant: str) -> str:
        """Validate ``scope`` (one resource's ``/.default``) and return the org URL."""
        scopes = scope.split()
        resources = {s.rsplit("/", 1)[0].rstrip("/") for s in scopes if "/" in s}
        if len(resources) > 1:
            raise AuthorityError(
                400,
                "invalid_scope",
                700022,
                "The provided value for the input parameter scope is not valid because it "
                f"contains more than one resource. Scope {scope} is not valid.",
            )
        invalid = next((s for s in scopes if not s.endswith("/.default")), None)
        if invalid is not None or len(scopes) != 1:
            raise AuthorityError(
                400,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid. The scope "
                f"{invalid or scope} is not valid.",
            )
        resource = scopes[0].removesuffix("/.default").rstrip("/")
        if resource != base_url:
            raise AuthorityError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{tenant}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You "
                "might have sent your authentication request to the wrong tenant.",
            )
        return resource


def _check_secret(user: ApplicationUser, secret: str) -> None:
    """A wrong secret is AADSTS7000215, the right one past its expiry AADSTS7000222 (§1.3)."""
    if user.secret is None or secret != user.secret:
        raise AuthorityError(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request "
            "is the client secret value, not the client secret ID, for a secret added to "
            f"app '{user.client_id}'.",
        )
    if user.secret_expired:
        raise AuthorityError(
            401,
            "invalid_client",
            7000222,
            f"The provided client secret keys for app '{user.client_id}' are expired. "
            "Visit the Azure portal to create new keys for your app: "
            "https://aka.ms/NewClientSecret, or consider using certificate credentials "
            "for added security: https://aka.ms/certCreds.",
        )


def _verify_assertion(assertion: str, user: ApplicationUser, audience: str) -> None:
    """Check a certificate client assertion (RFC 7523) against ``user``'s certificate."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise AuthorityError(
            400, "invalid_request", 50027, "JWT token is invalid or malformed."
        ) from exc
    thumbprint = header.get("x5t#S256") or header.get("x5t") or ""
    try:
        thumbprint_hex = base64.urlsafe_b64decode(thumbprint + "=" * (-len(thumbprint) % 4)).hex()
    except (binascii.Error, ValueError):
        thumbprint_hex = ""
    if user.certificate_pem is None or not _registered(user.certificate_pem, thumbprint_hex):
        raise AuthorityError(
            401,
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not "
            "registered on application. [Reason - The key was not found., Thumbprint of key "
            f"used by client: '{thumbprint_hex.upper()}']",
        )
    public_key = x509.load_pem_x509_certificate(user.certificate_pem).public_key()
    try:
        claims = jwt.decode(
            assertion,
            # PyJWT's annotation admits only the key types it verifies with, not every type a
            # certificate can hold; the certificates users register carry RSA keys (RS256/PS256).
            public_key,  # type: ignore[arg-type]
            algorithms=["RS256", "PS256"],
            audience=audience,
            options={"require": ["exp", "aud", "iss"]},
        )
    except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
        now = dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
        raise AuthorityError(
            401,
            "invalid_client",
            700024,
            f"Client assertion is not within its valid time range. Current time: {now}.",
        ) from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthorityError(
            401,
            "invalid_client",
            700027,
            f"Client assertion contains an invalid audience. Expected audience: '{audience}'.",
        ) from exc
    except jwt.PyJWTError as exc:
        raise AuthorityError(
            401, "invalid_client", 700027, "Client assertion contains an invalid signature."
        ) from exc
    if claims.get("iss") != user.client_id or claims.get("sub", user.client_id) != user.client_id:
        raise AuthorityError(
            401,
            "invalid_client",
            700027,
            "Client assertion issuer and subject must be the application's client id.",
        )


def _registered(certificate_pem: bytes, thumbprint_hex: str) -> bool:
    return thumbprint_hex.upper() in thumbprints(certificate_pem)


def _form(body: bytes) -> dict[str, str]:
    pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


def _headers() -> list[tuple[str, str]]:
    return [
        ("Cache-Control", "no-store, no-cache"),
        ("Pragma", "no-cache"),
        ("Content-Type", _JSON),
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
        ("X-Content-Type-Options", "nosniff"),
        ("x-ms-request-id", str(uuid.uuid4())),
        ("x-ms-ests-server", "2.1.0 - dataverse-emulator"),
    ]


def _json(status: int, body: dict[str, t.Any]) -> Response:
    return Response(status=status, headers=_headers(), body=orjson.dumps(body))


def _kind(endpoint: str) -> str:
    return "token" if endpoint == "oauth2/v2.0/token" else "discovery"


def authority_kind(path: str) -> str | None:
    """Which authority endpoint ``path`` addresses, or None.

    ``token`` is ``/{tenant}/oauth2/v2.0/token``; ``discovery`` the OpenID configuration and
    keys documents MSAL reads before it asks for a token.
    """
    match = _ROUTE.match(path)
    return None if match is None else _kind(match["endpoint"])


def transient_error(status: int) -> AuthorityError:
    """What an overloaded token service answers (§1.3 ``temporarily_unavailable``)."""
    return AuthorityError(
        status,
        "temporarily_unavailable",
        90033,
        "A transient error has occurred. Please try again.",
    )


def entra_error(
    exc: AuthorityError,
    client_request_id: str | None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """Entra's error JSON (§1.3), with the caller's ``client-request-id`` as correlation id."""
    trace_id = str(uuid.uuid4())
    correlation_id = client_request_id or str(uuid.uuid4())
    timestamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": exc.error,
        "error_description": f"AADSTS{exc.code}: {exc.message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}",
        "error_codes": [exc.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={exc.code}",
    }
    response = _json(exc.status, body)
    response.headers += headers or []
    return response
