"""HTTPS to Dataverse and Microsoft Entra ID: one verified TLS context, environment proxies.

The Web API client sends through :class:`HttpsTransport`, a thin layer on urllib3's connection
pools: it keeps no cookies (the ``ARRAffinity`` cookie would pin every request to one web
server, §7.2), follows no redirects and retries nothing, since the client decides all of that.
MSAL gets a requests session (:func:`make_session`) with the same trust. Both verify TLS against
the default CAs plus an optional bundle, whatever ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
say, and honour ``HTTPS_PROXY`` / ``NO_PROXY``.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import ssl
import threading
import typing as t
from urllib.parse import unquote

import certifi
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import get_auth_from_url, get_environ_proxies, select_proxy
from typing_extensions import override
from urllib3.util.ssl_match_hostname import CertificateError

from target_dynamics.errors import ConfigError
from target_dynamics.webapi import WebResponse

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    # The stubs' shapes of a connection pool key (typing-only).
    from requests.adapters import _HostParams, _PoolKwargs

POOL_SIZE = 64
"""Connections kept per host: above the 52 concurrent requests Dataverse allows (§7.1)."""
USER_AGENT = f"target-dynamics/{importlib.metadata.version('target-dynamics')}"
TRANSPORT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
"""Sent with every Web API request, under the client's own headers."""


class Unanswered(Exception):
    """No whole answer came back: the connection failed, was reset, timed out or was cut short.

    ``read_timeout`` says the request went out and its answer did not come in time, so a write
    may still be running on the service.
    """

    def __init__(self, reason: str, *, read_timeout: bool = False) -> None:
        super().__init__(reason)
        self.read_timeout = read_timeout


class Transport(t.Protocol):
    """Sends one HTTP request and returns the whole answer (the client's one seam)."""

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> WebResponse:
        """Send ``body`` to ``url``; wait at most ``timeout`` seconds to connect and per read.

        Raises:
            Unanswered: when no whole answer came back.
            ConfigError: when the server's certificate cannot be verified.
        """
        ...


def trust_context(ca_bundle: str | None) -> ssl.SSLContext:
    """System CAs, certifi's CAs, plus ``ca_bundle`` when given (§1.6, §1.7).

    Raises:
        ConfigError: when ``ca_bundle`` cannot be read as PEM certificates.
    """
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    if ca_bundle:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ca_bundle {ca_bundle!r} is not readable PEM: {exc}") from None
    return context


class HttpsTransport:
    """Pooled HTTPS connections to the Web API, through the environment's proxy if any.

    One connection pool per origin (a client talks to one environment), made on first use with
    the proxy the environment names for it (``NO_PROXY`` honoured).
    """

    def __init__(self, context: ssl.SSLContext, *, pool_size: int = POOL_SIZE) -> None:
        self._context = context
        self._pool_size = pool_size
        self._pools: dict[str, urllib3.HTTPSConnectionPool] = {}
        self._managers: list[urllib3.PoolManager] = []
        self._timeouts: dict[float, urllib3.Timeout] = {}
        self._lock = threading.Lock()

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> WebResponse:
        """See :meth:`Transport.send`."""
        end = url.find("/", len("https://"))
        origin, path = url[:end], url[end:]
        pool = self._pools.get(origin) or self._pool(url, origin)
        wait = self._timeouts.get(timeout) or self._timeout(timeout)
        try:
            answer = pool.urlopen(
                method,
                path,
                body=body,
                headers={**TRANSPORT_HEADERS, **headers},
                retries=False,
                redirect=False,
                timeout=wait,
                preload_content=True,
                assert_same_host=False,
            )
        except urllib3.exceptions.ReadTimeoutError:
            raise Unanswered("ReadTimeout", read_timeout=True) from None
        except urllib3.exceptions.SSLError as exc:
            if _unverified(exc):
                raise ConfigError(
                    f"TLS verification of {pool.host} failed; "
                    "set ca_bundle to the CA that signed its certificate."
                ) from None
            raise Unanswered(type(exc).__name__) from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise Unanswered(type(exc).__name__) from None
        return WebResponse(answer.status, dict(answer.headers), answer.data)

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            for manager in self._managers:
                manager.clear()
            self._pools.clear()

    def _pool(self, url: str, origin: str) -> urllib3.HTTPSConnectionPool:
        with self._lock:
            pool = self._pools.get(origin)
            if pool is None:
                if not url.startswith("https://"):
                    raise ConfigError(f"Refusing to send a Web API request over {url[:8]!r}.")
                manager = self._manager(url)
                self._managers.append(manager)
                pool = t.cast("urllib3.HTTPSConnectionPool", manager.connection_from_url(url))
                self._pools[origin] = pool
            return pool

    def _manager(self, url: str) -> urllib3.PoolManager:
        """A pool manager for ``url``: through the proxy the environment names for it, if any."""
        options: dict[str, t.Any] = {
            "maxsize": self._pool_size,
            "ssl_context": self._context,
            "cert_reqs": "CERT_REQUIRED",
        }
        proxy = select_proxy(url, get_environ_proxies(url))
        if not proxy:
            return urllib3.PoolManager(**options)
        user, password = get_auth_from_url(proxy)
        proxy_headers = (
            urllib3.make_headers(proxy_basic_auth=f"{unquote(user)}:{unquote(password)}")
            if user
            else {}
        )
        return urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **options)

    def _timeout(self, seconds: float) -> urllib3.Timeout:
        wait = self._timeouts[seconds] = urllib3.Timeout(connect=seconds, read=seconds)
        return wait


def _unverified(exc: urllib3.exceptions.SSLError) -> bool:
    """Whether a TLS failure is the certificate's (not a connection cut during the handshake)."""
    seen: BaseException | None = exc
    for _ in range(8):  # the failure as raised, then what it wraps
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError | CertificateError):
            return True
        inner = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = inner or seen.__cause__ or seen.__context__
    return False


class _TrustAdapter(HTTPAdapter):
    """Verifies TLS with one fixed SSL context, whatever ``verify`` the environment injects."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(pool_connections=8, pool_maxsize=8)

    @override
    def init_poolmanager(self, *args: t.Any, **kwargs: t.Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)

    @override
    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,  # ignored: the environment must not weaken or swap trust
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        host, pool = super().build_connection_pool_key_attributes(request, "", cert)
        pool.pop("ca_certs", None)
        pool.pop("ca_cert_dir", None)
        pool["ssl_context"] = self._context
        pool["cert_reqs"] = "CERT_REQUIRED"
        return host, pool

    @override
    def cert_verify(self, conn: t.Any, url: str, verify: t.Any, cert: t.Any) -> None:
        """Require verification against the adapter's context, never a path from ``verify``."""
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None


class _NoNetrc(requests.auth.AuthBase):
    """Leaves a request's headers alone.

    As the session's ``auth`` it keeps requests from reading ``~/.netrc`` on every request (an
    entry for the login host would add Basic authentication to the token requests).
    """

    @override
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def make_session(context: ssl.SSLContext) -> requests.Session:
    """MSAL's session: verifies TLS with ``context`` (see :func:`trust_context`) only.

    ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` are ignored (§1.6 pitfall); proxies from the
    environment still apply.
    """
    session = requests.Session()
    session.auth = _NoNetrc()
    session.mount("https://", _TrustAdapter(context))
    return session
