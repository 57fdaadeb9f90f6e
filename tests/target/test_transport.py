"""HttpsTransport and MSAL's session over real loopback TLS: trust, cookies, failures, proxies."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
import typing as t

import pytest
import requests
import trustme

from target_dynamics.errors import ConfigError
from target_dynamics.transport import (
    USER_AGENT,
    HttpsTransport,
    Unanswered,
    make_session,
    trust_context,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.target.conftest import Listener


class Server:
    """A loopback HTTPS server whose certificate only a private CA can verify.

    ``GET /`` sets cookies, ``GET /slow`` answers after 2 s, ``GET /cut`` promises 100 bytes
    and sends 2, ``GET /drop`` closes the connection without a word, ``GET /bye`` answers and
    then closes it; the paths of :data:`RAW` answer those bytes as they are (and close the
    connection after the ones in :data:`CLOSING`). Each request's headers (and client port,
    ``peer``) are kept in :attr:`received`.
    """

    def __init__(self, ca_path: str, url: str, received: list[dict[str, str]]) -> None:
        self.ca_path = ca_path
        self.url = url
        self.received = received


RAW = {
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\n{}\r\n3;ext=1\r\n[1]\r\n0\r\nTrailer-Field: x\r\n\r\n",
    "/interim": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-Part: 1\r\n\r\n",
    "/twice": b"HTTP/1.1 200 OK\r\nX-Seen: a\r\nx-seen: b\r\nContent-Length: 0\r\n\r\n",
    "/eof": b"HTTP/1.1 200 OK\r\n\r\nto the end",
    "/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    "/old": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "/junk": b"SPDY/3 200 OK\r\n\r\n",
    "/cut-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{}",
}
CLOSING = {"/eof", "/close", "/old", "/junk", "/cut-chunk"}


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    received: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            received.append(
                {**self.headers, "peer": str(self.client_address[1]), "path": self.path}
            )
            if self.path in RAW:
                self.wfile.write(RAW[self.path])
                self.close_connection = self.path in CLOSING
                return
            if self.path == "/drop":
                self.close_connection = True
                return
            if self.path == "/slow":
                time.sleep(2)
            self.send_response(200)
            self.send_header("Set-Cookie", "ARRAffinity=abc; Path=/; HttpOnly")
            self.send_header("Set-Cookie", "other=1; Path=/")
            self.send_header("Content-Length", "100" if self.path == "/cut" else "2")
            self.end_headers()
            self.wfile.write(b"{}")
            if self.path in {"/cut", "/bye"}:
                self.close_connection = True  # /bye: after a whole answer, without a word

        def do_POST(self) -> None:
            """Refuse the body unread, as a server does when it is too large."""
            self.send_response(413)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.flush()
            time.sleep(0.5)  # the answer reaches the client before the reset
            self.close_connection = True

        def log_message(self, *args: t.Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda *_: None  # a client that gave up (/slow) is expected here
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Server(str(ca_path), f"https://127.0.0.1:{server.server_address[1]}", received)
    server.shutdown()
    server.server_close()


def test_answers_with_status_headers_and_body(tls_server: Server) -> None:
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    answer = transport.send("GET", tls_server.url + "/", {"Accept": "application/json"}, None, 5)
    assert (answer.status, answer.body) == (200, b"{}")
    assert answer.header("content-length") == "2"
    assert tls_server.received[-1]["User-Agent"] == USER_AGENT
    assert tls_server.received[-1]["Accept"] == "application/json"


def test_a_target_outside_printable_ascii_goes_percent_encoded(tls_server: Server) -> None:
    """A link the service wrote (or a path) with spaces or non-ASCII text still goes out as
    one valid request line; what is already encoded stays as it is."""
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    url = tls_server.url + "/?$filter=name eq 'Zoë'&$skiptoken=%3Ccookie%3E&x=a\r\nb"
    assert transport.send("GET", url, {}, None, 5).status == 200
    assert tls_server.received[-1]["path"] == (
        "/?$filter=name%20eq%20'Zo%C3%AB'&$skiptoken=%3Ccookie%3E&x=a%0D%0Ab"
    )


def test_no_cookie_is_kept(tls_server: Server) -> None:
    """§7.2: the ARRAffinity cookie would pin every request to one web server; none is sent."""
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    for _ in range(2):
        transport.send("GET", tls_server.url + "/", {}, None, 5)
    assert "Cookie" not in tls_server.received[-1]


def test_connections_are_reused(tls_server: Server) -> None:
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    for _ in range(3):
        transport.send("GET", tls_server.url + "/", {}, None, 5)
    assert len({r["peer"] for r in tls_server.received[-3:]}) == 1


def test_a_connection_the_server_closed_is_replaced_not_written_to(tls_server: Server) -> None:
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    transport.send("GET", tls_server.url + "/bye", {}, None, 5)
    time.sleep(0.2)  # the close reaches this side
    assert transport.send("GET", tls_server.url + "/", {}, None, 5).status == 200
    assert tls_server.received[-2]["peer"] != tls_server.received[-1]["peer"]


@pytest.mark.parametrize(
    ("path", "expected", "reused"),
    [
        ("/chunked", (200, {"Transfer-Encoding": "chunked"}, b"{}[1]"), True),
        ("/interim", (204, {"X-Part": "1"}, b""), True),
        ("/twice", (200, {"X-Seen": "a, b", "Content-Length": "0"}, b""), True),
        ("/eof", (200, {}, b"to the end"), False),
        ("/close", (200, {"Connection": "close", "Content-Length": "2"}, b"{}"), False),
        ("/old", (200, {"Content-Length": "2"}, b"{}"), False),
    ],
)
def test_answers_are_framed_as_http_1_1_says(
    tls_server: Server, path: str, expected: tuple[int, dict[str, str], bytes], reused: bool
) -> None:
    """RFC 9112: chunked (extensions and trailers dropped), interim 1xx skipped, duplicate
    fields joined, a body to the end of the connection, Connection: close, HTTP/1.0."""
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    answer = transport.send("GET", tls_server.url + path, {}, None, 5)
    assert (answer.status, answer.headers, answer.body) == expected
    time.sleep(0.1)  # a close reaches this side
    transport.send("GET", tls_server.url + "/", {}, None, 5)
    assert (tls_server.received[-2]["peer"] == tls_server.received[-1]["peer"]) is reused


def test_an_answer_sent_before_the_whole_body_is_read(tls_server: Server) -> None:
    """A server that stops reading a large body answers why (413): that answer is returned."""
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    answer = transport.send("POST", tls_server.url + "/big", {}, b"x" * 50_000_000, 5)
    assert answer.status == 413


@pytest.mark.parametrize(
    ("path", "read_timeout"),
    [("/slow", True), ("/cut", False), ("/drop", False), ("/junk", False), ("/cut-chunk", False)],
)
def test_no_whole_answer_is_unanswered(tls_server: Server, path: str, read_timeout: bool) -> None:
    """A timeout says the request went out (a write may still run); a cut answer does not."""
    transport = HttpsTransport(trust_context(tls_server.ca_path))
    with pytest.raises(Unanswered) as caught:
        transport.send("GET", tls_server.url + path, {}, None, 0.5)
    assert caught.value.read_timeout is read_timeout


def test_refused_connection_is_unanswered() -> None:
    transport = HttpsTransport(trust_context(None))
    with pytest.raises(Unanswered) as caught:
        transport.send("GET", f"https://127.0.0.1:{free_port()}/", {}, None, 5)
    assert not caught.value.read_timeout


def test_untrusted_certificate_is_a_config_error(tls_server: Server) -> None:
    transport = HttpsTransport(trust_context(None))
    with pytest.raises(ConfigError, match=r"TLS verification of 127\.0\.0\.1 failed"):
        transport.send("GET", tls_server.url + "/", {}, None, 5)


def test_plain_http_is_refused() -> None:
    with pytest.raises(ConfigError, match="Refusing"):
        HttpsTransport(trust_context(None)).send("GET", "http://127.0.0.1:9/x", {}, None, 5)


def test_tls_bundle_is_added_and_environment_ignored(
    tls_server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any
) -> None:
    """§1.6 pitfall: REQUESTS_CA_BUNDLE must neither replace nor break the configured trust."""
    other = trustme.CA()
    other_path = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(other_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "missing.pem"))
    trusted = trust_context(tls_server.ca_path)
    assert make_session(trusted).get(tls_server.url, timeout=5).status_code == 200
    assert HttpsTransport(trusted).send("GET", tls_server.url + "/", {}, None, 5).status == 200
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_server.ca_path)
    with pytest.raises(requests.exceptions.SSLError):
        make_session(trust_context(None)).get(tls_server.url, timeout=5)
    with pytest.raises(ConfigError):
        HttpsTransport(trust_context(None)).send("GET", tls_server.url + "/", {}, None, 5)


def test_unreadable_bundle(tmp_path: t.Any) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="not readable PEM"):
        trust_context(str(bad))


def test_web_api_requests_go_through_the_environments_proxy(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY is honoured (the proxy sees only a CONNECT, never a header or body) and
    NO_PROXY exempts a host."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", listener.url)
    transport = HttpsTransport(trust_context(None))
    with pytest.raises(Unanswered):
        transport.send("POST", "https://org.example:443/api/x", {"Authorization": "s"}, b"b", 5)
    assert listener.received == [("CONNECT", "org.example:443", b"")]
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = HttpsTransport(trust_context(None))
    with pytest.raises(Unanswered):
        direct.send("GET", f"https://127.0.0.1:{free_port()}/", {}, None, 5)
    assert len(listener.received) == 1


def test_proxy_credentials_go_on_the_connect_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy URL's user and password (percent-decoded) authenticate the CONNECT."""
    heard: list[bytes] = []
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()

        def answer() -> None:
            peer, _ = proxy.accept()
            with peer:
                heard.append(peer.recv(4096))
                peer.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("HTTPS_PROXY", f"http://u%20s:p@127.0.0.1:{proxy.getsockname()[1]}")
        with pytest.raises(Unanswered):
            HttpsTransport(trust_context(None)).send("GET", "https://org.example/x", {}, None, 5)
        thread.join(5)
    assert heard[0].startswith(b"CONNECT org.example:443 HTTP/1.")
    assert b"Proxy-Authorization: Basic dSBzOnA=\r\n" in heard[0]  # base64 of "u s:p"


def test_an_https_proxy_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    with pytest.raises(ConfigError, match="set HTTPS_PROXY to http://host:port"):
        HttpsTransport(trust_context(None)).send("GET", "https://org.example/x", {}, None, 5)
