"""HTTPS to Dataverse and Microsoft Entra ID: one verified TLS context, environment proxies.

The Web API client sends through :class:`HttpsTransport`, keep-alive HTTP/1.1 connections
(:mod:`target_dynamics.http1`). It keeps no cookies (the ``ARRAffinity`` cookie would pin every
request to one web server, §7.2), follows no redirects and retries nothing: the client decides
all of that. MSAL gets a requests session (:func:`make_session`) with the same trust. Both
verify TLS against the default CAs plus an optional bundle, whatever ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE`` say, and honour ``HTTPS_PROXY`` / ``NO_PROXY``.
"""

from __future__ import annotations

import base64
import ssl
import threading
import typing as t
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import certifi
import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_auth_from_url, get_environ_proxies, select_proxy
from typing_extensions import override

from target_dynamics import __version__, http1
from target_dynamics.errors import ConfigError
from target_dynamics.webapi import WebResponse

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    # The stubs' shapes of a connection pool key (typing-only).
    from requests.adapters import _HostParams, _PoolKwargs

POOL_SIZE = 64
"""Connections kept per host: above the 52 concurrent requests Dataverse allows (§7.1)."""
USER_AGENT = f"target-dynamics/{__version__}"
URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
"""What a request target keeps as it is; anything else (spaces, controls, non-ASCII) is
percent-encoded (RFC 3986: reserved characters, unreserved ones and existing escapes)."""
TRANSPORT_HEADERS = {"User-Agent": USER_AGENT}
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


@dataclass(frozen=True)
class _Route:
    """Where connections for one origin go: the host itself, or a tunnel through a proxy."""

    host: str
    port: int
    proxy: tuple[str, int, Mapping[str, str]] | None
    """Proxy host, port and ``CONNECT`` headers (credentials from the proxy URL)."""


class HttpsTransport:
    """Keep-alive HTTPS connections to the Web API, through the environment's proxy if any.

    Each request is one write (headers and body together) and its answer is read whole
    (:mod:`target_dynamics.http1`). Idle connections are kept per origin (at most
    ``pool_size``) and checked before reuse; one the server closed is replaced, never written
    to. A proxy from ``HTTPS_PROXY`` (``NO_PROXY`` honoured) is tunnelled through with
    ``CONNECT``.
    """

    def __init__(self, context: ssl.SSLContext, *, pool_size: int = POOL_SIZE) -> None:
        self._context = context
        self._pool_size = pool_size
        self._routes: dict[str, _Route] = {}
        self._idle: dict[str, list[http1.Connection]] = {}
        self._lock = threading.Lock()

    def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, timeout: float
    ) -> WebResponse:
        """See :meth:`Transport.send`."""
        end = url.find("/", len("https://"))
        origin, target = (url, "/") if end < 0 else (url[:end], url[end:])
        if not target.isascii() or not target.isprintable() or " " in target:
            target = quote(target, safe=URL_SAFE)  # e.g. a next link as the service wrote it
        connection = self._idle_connection(origin, timeout) or self._connect(url, origin, timeout)
        try:
            answer = connection.exchange(method, target, {**TRANSPORT_HEADERS, **headers}, body)
        except TimeoutError:
            connection.close()
            raise Unanswered("ReadTimeout", read_timeout=True) from None
        except (http1.BrokenAnswer, OSError) as exc:
            connection.close()
            raise Unanswered(type(exc).__name__) from None
        self._keep(origin, connection)
        return WebResponse(answer.status, answer.headers, answer.body)

    def _idle_connection(self, origin: str, timeout: float) -> http1.Connection | None:
        """An idle connection to ``origin`` the server has not closed, if there is one."""
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                connection = idle.pop()
                if connection.reusable():
                    connection.set_timeout(timeout)
                    return connection
                connection.close()
        return None

    def _connect(self, url: str, origin: str, timeout: float) -> http1.Connection:
        route = self._routes.get(origin) or self._route(url, origin)
        try:
            return http1.Connection(
                route.host, route.port, context=self._context, timeout=timeout, proxy=route.proxy
            )
        except ssl.SSLCertVerificationError:
            raise ConfigError(
                f"TLS verification of {route.host} failed; "
                "set ca_bundle to the CA that signed its certificate."
            ) from None
        except (http1.BrokenAnswer, OSError) as exc:  # timeouts included
            raise Unanswered(type(exc).__name__) from None

    def _keep(self, origin: str, connection: http1.Connection) -> None:
        """Put ``connection`` back for reuse, unless the answer closed it or enough are idle."""
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if connection.persistent and len(idle) < self._pool_size:
                idle.append(connection)
                return
        connection.close()

    def _route(self, url: str, origin: str) -> _Route:
        """How to reach ``origin``: directly, or through the proxy the environment names."""
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ConfigError(f"Refusing to send a Web API request to {origin!r}: https only.")
        proxy_url = select_proxy(url, get_environ_proxies(url))
        proxy = None
        if proxy_url:
            through = urlsplit(proxy_url if "://" in proxy_url else f"http://{proxy_url}")
            if through.scheme != "http" or not through.hostname:
                raise ConfigError(
                    f"The proxy for {parts.hostname} ({through.scheme}://{through.hostname}) is "
                    "not an http:// proxy; set HTTPS_PROXY to http://host:port (the TLS "
                    "connection to Dataverse is tunnelled through it with CONNECT)."
                )
            user, password = get_auth_from_url(proxy_url)
            connect_headers = {}
            if user:
                token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
                connect_headers["Proxy-Authorization"] = f"Basic {token}"
            proxy = (through.hostname, through.port or 80, connect_headers)
        route = _Route(parts.hostname, parts.port or 443, proxy)
        with self._lock:
            self._routes[origin] = route
        return route


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
