"""Client-credentials tokens from Microsoft Entra ID through MSAL, thread-safe (§1).

One :class:`msal.ConfidentialClientApplication` per provider; MSAL serves the token from its cache
and fetches a new one when less than 5 minutes remain (§1.6), so :meth:`TokenProvider.token` is
cheap to call before every request. After a 401 from Dataverse, :meth:`TokenProvider.invalidate`
evicts the cached token so the next call goes to the identity provider.

Blips are retried (Microsoft Learn, "Microsoft Entra authentication and authorization error
codes": ``temporarily_unavailable`` means retry; "MSAL retry policies": honour ``Retry-After``):
429, 5xx, ``temporarily_unavailable`` and broken connections are tried again with jittered
exponential backoff or ``Retry-After``, within ``retry_budget_seconds`` per outage. Everything
else (bad secret, tenant, certificate, TLS trust) fails at once. MSAL (§1.6) has no retry of its
own with a custom ``http_client``, raises ``MsalServiceError`` on a 5xx, returns a 429 or 4xx as
an error dict, and replays a 429 / 5xx from its HTTP cache for ``Retry-After`` (or 5) seconds and a
400 for 60 s; the provider owns that cache and empties it before each retry so the retry reaches
the endpoint.

Requests to the identity provider go over https only and never follow redirects: a redirected
token request would carry the client secret to the redirect target.

Secrets, assertions and tokens never appear in messages or logs: errors carry only the
``error`` code and the first line of ``error_description`` (the AADSTS text).
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
import typing as t
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import msal
import requests

from target_dynamics.clouds import is_microsoft_login_host
from target_dynamics.errors import AuthError
from target_dynamics.webapi import parse_retry_after

LOGGER = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 1.0
"""First retry delay when the answer names no ``Retry-After`` (doubles per attempt)."""
BACKOFF_CAP_SECONDS = 30.0
"""Longest backoff delay between two token requests."""

_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable"})
_MEMO_SECONDS = 60.0
"""How long a token MSAL handed out is reused before MSAL is asked again."""
_MSAL_MARGIN_SECONDS = 300
"""MSAL fetches a new token when the cached one has less than five minutes left."""
"""OAuth ``error`` values that mean "try again later" (reference-error-codes, §1.3)."""

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


@dataclass(frozen=True)
class _Answer:
    """Status and ``Retry-After`` of the identity provider's last answer."""

    status: int
    retry_after: float | None

    @property
    def is_transient(self) -> bool:
        return self.status == 429 or self.status >= 500


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, without user info, path or query."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


class _AuthorityHttpClient:
    """The ``http_client`` MSAL calls: https only, no redirects, a timeout (§1.6, §1.7).

    MSAL ignores ``timeout=`` when given a client, so the timeout is set here. The last answer
    is kept so the provider can read its status and ``Retry-After``, which MSAL does not pass on.
    """

    def __init__(self, session: requests.Session, timeout: float, authority: str) -> None:
        self._session = session
        self._timeout = timeout
        self._authority = authority
        self.last_answer: _Answer | None = None

    def get(self, url: str, **kwargs: t.Any) -> requests.Response:
        """A discovery GET."""
        return self._send("GET", url, kwargs)

    def post(self, url: str, **kwargs: t.Any) -> requests.Response:
        """A token POST."""
        return self._send("POST", url, kwargs)

    def close(self) -> None:
        """The session belongs to the caller; nothing to close here."""

    def forget(self) -> None:
        """Drop the last answer before a new token request."""
        self.last_answer = None

    def _send(self, method: str, url: str, kwargs: dict[str, t.Any]) -> requests.Response:
        if urlsplit(url).scheme != "https":
            raise AuthError(
                f"Refusing to send a request for {self._authority} to {_origin(url)}: the "
                "identity provider is only ever called over https. Check authority_host / cloud."
            )
        kwargs.setdefault("timeout", self._timeout)
        kwargs["allow_redirects"] = False
        response = self._session.request(method, url, **kwargs)
        self.last_answer = _Answer(
            response.status_code, parse_retry_after(response.headers.get("Retry-After"))
        )
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location")
            target = _origin(urljoin(url, location)) if location else "no Location"
            raise AuthError(
                f"The identity provider at {self._authority} answered {response.status_code} "
                f"redirecting to {target}; token requests never follow redirects (the "
                "credentials would go there too). Check authority_host / cloud and any proxy "
                "between this machine and Microsoft Entra ID."
            )
        return response


@dataclass(frozen=True)
class _Failure:
    """One failed attempt: whether it is worth another, what to say, and how long to wait."""

    transient: bool
    message: str
    retry_after: float | None = None


class TokenProvider:
    """Bearer tokens for one Dataverse environment, shared by all worker threads.

    Only one thread talks to the identity provider at a time; the others wait for its result.
    An outage (consecutive failed attempts) is retried for at most ``retry_budget_seconds``
    in total, however many threads are waiting; once spent, every call fails at once.
    """

    def __init__(  # noqa: PLR0913 - keyword-only knobs, each documented
        self,
        credentials: Credentials,
        *,
        authority_host: str,
        resource_url: str,
        session: requests.Session,
        timeout: float = 30,
        retry_budget_seconds: float = 300.0,
    ) -> None:
        """Prepare the MSAL application (no network until the first :meth:`token`).

        Args:
            credentials: The app registration.
            authority_host: e.g. ``https://login.microsoftonline.com`` (must be https).
            resource_url: The Dataverse environment URL; the scope is ``{resource_url}/.default``.
            session: HTTP session (TLS trust, see ``transport.make_session``).
            timeout: Seconds for each call to the identity provider.
            retry_budget_seconds: How long an outage of the identity provider is retried
                before the run stops.
        """
        self._credentials = credentials
        self._scopes = [f"{resource_url.rstrip('/')}/.default"]
        self._authority = f"{authority_host.rstrip('/')}/{credentials.tenant_id}"
        self._http = _AuthorityHttpClient(session, timeout, self._authority)
        self._http_cache: dict[str, t.Any] = {}
        self._instance_discovery = is_microsoft_login_host(authority_host)
        self._budget = retry_budget_seconds
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._gave_up: str | None = None
        self._memo: tuple[str, float] | None = None

    def token(self) -> str:
        """Return a valid access token, fetching one when the cache has none worth using.

        Raises:
            AuthError: with the AADSTS code, its first line and a hint; or, after an outage
                longer than the retry budget, what kept failing. Never the secret.
        """
        with self._lock:
            if self._gave_up is not None:
                raise AuthError(self._gave_up)
            if self._memo is not None and time.monotonic() < self._memo[1]:
                return self._memo[0]
            attempt = 0
            while True:
                failure = self._attempt()
                if isinstance(failure, str):
                    self._failing_since = None
                    return failure
                if not failure.transient:
                    raise AuthError(failure.message)
                self._wait_before_retry(failure, attempt)
                attempt += 1

    def invalidate(self) -> None:
        """Forget the cached token (after a 401): the next :meth:`token` fetches a new one."""
        with self._lock:
            self._memo = None
            if self._app is not None:
                self._app.remove_tokens_for_client()

    def _application(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            self._app = msal.ConfidentialClientApplication(
                self._credentials.client_id,
                client_credential=self._credentials.client_credential(),
                authority=self._authority,
                instance_discovery=self._instance_discovery,
                http_client=self._http,
                http_cache=self._http_cache,
                azure_region=False,  # ignore MSAL_FORCE_REGION (§1.6)
            )
        return self._app

    def _attempt(self) -> str | _Failure:
        """One call into MSAL: the token, or what went wrong."""
        self._http.forget()
        try:
            result = self._application().acquire_token_for_client(scopes=self._scopes)
        except AuthError:
            raise
        except Exception as exc:  # noqa: BLE001 - network, TLS, discovery or IdP 5xx; sorted below
            return self._exception_failure(exc)
        if "access_token" in result:
            token = str(result["access_token"])
            self._remember(token, result.get("expires_in"))
            return token
        answer = self._http.last_answer
        transient = str(result.get("error")) in _TRANSIENT_ERRORS or bool(
            answer and answer.is_transient
        )
        return _Failure(
            transient=transient,
            message=_describe(result),
            retry_after=answer.retry_after if answer else None,
        )

    def _remember(self, token: str, expires_in: t.Any) -> None:
        """Hand ``token`` out without asking MSAL again for a while (MSAL's cache costs CPU).

        Only a token valid well beyond MSAL's own refresh margin is kept, and for at most
        ``_MEMO_SECONDS``, so MSAL still decides every refresh.
        """
        left = expires_in if isinstance(expires_in, int | float) else 0
        if left > _MEMO_SECONDS + _MSAL_MARGIN_SECONDS:
            self._memo = (token, time.monotonic() + _MEMO_SECONDS)
        else:
            self._memo = None

    def _exception_failure(self, exc: Exception) -> _Failure:
        answer = self._http.last_answer
        retry_after = answer.retry_after if answer else None
        if isinstance(exc, requests.exceptions.SSLError) and _untrusted(exc):
            return _Failure(
                transient=False,
                message=f"TLS verification of {_origin(self._authority)} failed; set ca_bundle "
                "to the CA that signed its certificate.",
            )
        if isinstance(exc, msal.exceptions.MsalServiceError | requests.RequestException) or (
            answer is not None and answer.is_transient
        ):
            status = f"HTTP {answer.status}" if answer else type(exc).__name__
            return _Failure(
                transient=True,
                message=f"{status}: {_first_line(str(exc))}",
                retry_after=retry_after,
            )
        if isinstance(exc, ValueError):  # bad authority URL, unknown tenant, unreadable key
            return _Failure(
                transient=False,
                message=f"Cannot use authority {self._authority}: {_first_line(str(exc))} "
                + _HINTS["authority"],
            )
        return _Failure(
            transient=False,
            message=f"Token request to {self._authority} failed: {type(exc).__name__}: "
            f"{_first_line(str(exc))}",
        )

    def _wait_before_retry(self, failure: _Failure, attempt: int) -> None:
        """Sleep ``Retry-After`` or the backoff delay, or give up when the budget is spent.

        Raises:
            AuthError: when the wait would end after the outage's retry budget.
        """
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elapsed = now - self._failing_since
        delay = failure.retry_after if failure.retry_after is not None else _backoff(attempt)
        if elapsed + delay > self._budget:
            self._gave_up = (
                f"The identity provider at {self._authority} kept failing for {elapsed:.0f} s "
                f"({attempt + 1} attempts; retry budget {self._budget:.0f} s); last error: "
                f"{failure.message}. Check Microsoft Entra ID service health and the network "
                f"path to {_origin(self._authority)}, then run the pipeline again."
            )
            raise AuthError(self._gave_up)
        LOGGER.warning(
            "Token request to %s failed (%s); retrying in %.1f s",
            self._authority,
            failure.message,
            delay,
        )
        time.sleep(delay)
        self._http_cache.clear()  # else MSAL replays the failure instead of asking again


def _backoff(attempt: int) -> float:
    """Equal-jitter exponential backoff: half fixed, half random."""
    delay = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt)
    return delay / 2 + random.random() * delay / 2  # noqa: S311 - jitter, not a secret


def _untrusted(exc: BaseException) -> bool:
    """Whether a TLS failure is a certificate the trust store does not accept."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        pending += [a for a in current.args if isinstance(a, BaseException)]
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return False


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else ""


def _describe(result: t.Mapping[str, t.Any]) -> str:
    error = str(result.get("error") or "unknown_error")
    description = _first_line(str(result.get("error_description") or ""))
    code = description.split(":", 1)[0]
    hint = _HINTS.get(code, "")
    return " ".join(p for p in (f"Token request refused: {error}: {description}", hint) if p)
