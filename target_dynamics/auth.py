"""Client-credentials tokens from Microsoft Entra ID through MSAL, thread-safe (§1).

One :class:`msal.ConfidentialClientApplication` per provider; MSAL serves the token from its cache
and fetches a new one when less than 5 minutes remain (§1.6), so :meth:`TokenProvider.token` is
cheap to call before every request. After a 401 from Dataverse, :meth:`TokenProvider.invalidate`
evicts the cached token so the next call goes to the identity provider.

Secrets, assertions and tokens never appear in messages or logs: errors carry only the
``error`` code and the first line of ``error_description`` (the AADSTS text).
"""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import msal

from target_dynamics.errors import AuthError

if t.TYPE_CHECKING:
    import requests

CLOUD_AUTHORITY_HOSTS: dict[str, str] = {
    "public": "https://login.microsoftonline.com",
    "gcc": "https://login.microsoftonline.com",
    "gcc_high": "https://login.microsoftonline.us",
    "dod": "https://login.microsoftonline.us",
    "china": "https://login.partner.microsoftonline.cn",
}
"""Entra authority host per cloud (§1.4)."""

_HINTS = {
    "AADSTS7000215": "Use the client secret *value*, not its secret ID.",
    "AADSTS7000222": "The client secret has expired: create a new one for the app registration.",
    "AADSTS700016": "Check client_id and tenant_id (and that the app is in that tenant).",
    "AADSTS90002": "Check tenant_id and the cloud / authority_host.",
    "AADSTS900023": "tenant_id must be a GUID or a domain name.",
    "AADSTS700027": "Check certificate_thumbprint and that the certificate is uploaded to the app.",
    "authority": "Check tenant_id: your directory's id (a GUID) or one of its domains, in the "
    "cloud / authority_host you use.",
}


@dataclass(frozen=True)
class Credentials:
    """An app registration's identity: a client secret, or a certificate (PEM key + thumbprint)."""

    tenant_id: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate_private_key: str | None = field(default=None, repr=False)
    """PEM text of the private key; used with :attr:`certificate_thumbprint`."""
    certificate_thumbprint: str | None = None
    """Hex SHA-1 thumbprint of the certificate uploaded to the app registration."""

    def client_credential(self) -> str | dict[str, str]:
        """The ``client_credential`` argument MSAL expects (§1.7).

        Raises:
            AuthError: when neither a secret nor a complete certificate is given.
        """
        if self.certificate_private_key and self.certificate_thumbprint:
            return {
                "private_key": self.certificate_private_key,
                "thumbprint": self.certificate_thumbprint,
            }
        if self.client_secret:
            return self.client_secret
        raise AuthError(
            "No credential: set client_secret, or certificate_private_key together with "
            "certificate_thumbprint."
        )


class _TimeoutHttpClient:
    """The ``http_client`` MSAL calls, with a timeout (MSAL ignores ``timeout=`` then, §1.6)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    def get(self, url: str, **kwargs: t.Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.get(url, **kwargs)

    def post(self, url: str, **kwargs: t.Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.post(url, **kwargs)

    def close(self) -> None:
        """The session belongs to the caller; nothing to close here."""


def _is_microsoft_host(authority_host: str) -> bool:
    host = urlsplit(authority_host).hostname or ""
    return host in {urlsplit(h).hostname for h in CLOUD_AUTHORITY_HOSTS.values()}


class TokenProvider:
    """Bearer tokens for one Dataverse environment, shared by all worker threads."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        authority_host: str,
        resource_url: str,
        session: requests.Session,
        timeout: float = 30,
    ) -> None:
        """Prepare the MSAL application (no network until the first :meth:`token`).

        Args:
            credentials: The app registration.
            authority_host: e.g. ``https://login.microsoftonline.com`` (must be https).
            resource_url: The Dataverse environment URL; the scope is ``{resource_url}/.default``.
            session: HTTP session (TLS trust, see ``client.make_session``).
            timeout: Seconds for each call to the identity provider.
        """
        self._credentials = credentials
        self._scopes = [f"{resource_url.rstrip('/')}/.default"]
        self._authority = f"{authority_host.rstrip('/')}/{credentials.tenant_id}"
        self._http = _TimeoutHttpClient(session, timeout)
        self._instance_discovery = _is_microsoft_host(authority_host)
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            try:
                self._app = msal.ConfidentialClientApplication(
                    self._credentials.client_id,
                    client_credential=self._credentials.client_credential(),
                    authority=self._authority,
                    instance_discovery=self._instance_discovery,
                    http_client=self._http,
                    azure_region=False,  # ignore MSAL_FORCE_REGION (§1.6)
                )
            except ValueError as exc:  # unknown tenant, bad authority URL, unreadable certificate
                hint = _HINTS["authority"] if "authority" in str(exc) else ""
                raise AuthError(f"Cannot use authority {self._authority}: {exc} {hint}") from None
        return self._app

    def token(self) -> str:
        """Return a valid access token, fetching one when the cache has none worth using.

        Raises:
            AuthError: with the AADSTS code, its first line and a hint; never the secret.
        """
        with self._lock:
            try:
                result = self._application().acquire_token_for_client(scopes=self._scopes)
            except AuthError:
                raise
            except Exception as exc:  # noqa: BLE001 - network, TLS or IdP 5xx; the type says which
                raise AuthError(
                    f"Token request to {self._authority} failed: {type(exc).__name__}: "
                    f"{_first_line(str(exc))}"
                ) from None
        if "access_token" in result:
            return str(result["access_token"])
        raise AuthError(_describe(result))

    def invalidate(self) -> None:
        """Forget the cached token (after a 401): the next :meth:`token` fetches a new one."""
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def _describe(result: t.Mapping[str, t.Any]) -> str:
    error = str(result.get("error") or "unknown_error")
    description = _first_line(str(result.get("error_description") or ""))
    code = description.split(":", 1)[0]
    hint = _HINTS.get(code, "")
    return " ".join(p for p in (f"Token request refused: {error}: {description}", hint) if p)
