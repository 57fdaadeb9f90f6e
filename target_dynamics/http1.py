"""HTTP/1.1 on one TLS connection: a request written in one piece, its answer read whole.

The message syntax of RFC 9112, the part a Web API client needs: a request with a
``Content-Length`` body, an answer framed by ``Content-Length``, ``chunked`` transfer coding
or the end of the connection, interim ``1xx`` answers skipped, ``Connection: close`` obeyed,
and a ``CONNECT`` tunnel through an http:// proxy (RFC 9110 §9.3.6). Nothing is retried or
followed here; failures are raised for the transport to name.
"""

from __future__ import annotations

import select
import socket
import typing as t

if t.TYPE_CHECKING:
    import ssl
    from collections.abc import Mapping

MAX_LINE = 65_536
"""Longest status or header line read (as :mod:`http.client`)."""
MAX_HEADERS = 200
"""Most header lines in one answer."""
_BODYLESS = frozenset({204, 304})


class BrokenAnswer(Exception):
    """The answer was cut short or is not HTTP/1.1: the connection cannot be used again."""


class Answer(t.NamedTuple):
    """Status, headers (duplicates joined with ``, ``) and the whole body."""

    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive connection to ``host``, directly or through a proxy tunnel."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        context: ssl.SSLContext,
        timeout: float,
        proxy: tuple[str, int, Mapping[str, str]] | None = None,
    ) -> None:
        """Connect and verify TLS (through ``proxy``: host, port, ``CONNECT`` headers).

        Raises:
            OSError: the connection, the tunnel or the TLS handshake failed (a certificate
                that cannot be verified raises :class:`ssl.SSLCertVerificationError`).
            BrokenAnswer: the proxy's answer to ``CONNECT`` is not HTTP.
        """
        authority = f"[{host}]" if ":" in host else host
        self.host = host
        self._timeout = timeout
        self._host_header = authority if port == 443 else f"{authority}:{port}"
        address = (host, port) if proxy is None else (proxy[0], proxy[1])
        raw = socket.create_connection(address, timeout=timeout)
        try:
            if proxy is not None:
                _tunnel(raw, f"{authority}:{port}", proxy[2])
            self._sock = context.wrap_socket(raw, server_hostname=host)
        except BaseException:
            raw.close()
            raise
        self._reader = self._sock.makefile("rb")
        self.persistent = True
        """Whether the last exchange left the connection open for another (both sides)."""

    def exchange(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> Answer:
        """Send one request and read its whole answer.

        Raises:
            TimeoutError: no answer (or the rest of it) within the timeout.
            OSError: the connection failed.
            BrokenAnswer: the answer was cut short or is not HTTP/1.1.
        """
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None or method in {"POST", "PUT", "PATCH"}:
            lines.append(f"Content-Length: {len(body or b'')}\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        try:
            self._sock.sendall(head + body if body else head)
        except TimeoutError:
            raise
        except OSError:  # the server stopped reading: an answer may say why (413), else none
            self.persistent = False
        status, fields, version = _read_head(self._reader)
        while 100 <= status < 200:  # interim answers: the final one follows
            status, fields, version = _read_head(self._reader)
        if method == "HEAD" or status in _BODYLESS:
            data = b""
        elif "chunked" in fields.get("transfer-encoding", "").lower():
            data = _read_chunked(self._reader)
        elif "content-length" in fields:
            data = _read_exactly(self._reader, _length(fields["content-length"]))
        else:
            data = self._reader.read()  # delimited by the end of the connection
            self.persistent = False
        tokens = fields.get("connection", "").lower()
        if "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens):
            self.persistent = False
        return Answer(status, fields.headers, data)

    def set_timeout(self, seconds: float) -> None:
        """Wait at most ``seconds`` for each read and write from now on."""
        if seconds != self._timeout:
            self._timeout = seconds
            self._sock.settimeout(seconds)

    def reusable(self) -> bool:
        """Whether another request may go on this connection (the server has not closed it)."""
        if not self.persistent:
            return False
        poller = select.poll()
        poller.register(self._sock, select.POLLIN)
        return not poller.poll(0)  # readable when idle: the end of the stream, or junk

    def close(self) -> None:
        """Close the connection."""
        self.persistent = False
        self._reader.close()
        self._sock.close()


class _Fields:
    """An answer's header fields, names as sent, duplicates joined; looked up by lower case."""

    __slots__ = ("_names", "headers")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        first = self._names.setdefault(name.lower(), name)
        known = self.headers.get(first)
        self.headers[first] = value if known is None else f"{known}, {value}"

    def get(self, name: str, default: str) -> str:
        first = self._names.get(name)
        return default if first is None else self.headers[first]

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def __getitem__(self, name: str) -> str:
        return self.headers[self._names[name]]


def _tunnel(raw: socket.socket, authority: str, headers: Mapping[str, str]) -> None:
    """Ask the proxy on ``raw`` for a tunnel to ``authority``.

    Raises:
        OSError: when the proxy refuses (its status in the message).
    """
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    raw.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{extra}\r\n".encode())
    with raw.makefile("rb") as reader:  # the proxy sends nothing more before the TLS hello
        status, _, _ = _read_head(reader)
    if status != 200:
        raise OSError(f"Tunnel connection failed: {status}")


def _read_head(reader: t.BinaryIO) -> tuple[int, _Fields, str]:
    """Read a status line and its header fields: (status, fields, HTTP version)."""
    line = reader.readline(MAX_LINE + 1)
    if not line:
        raise BrokenAnswer("the connection closed before an answer")
    parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise BrokenAnswer(f"not an HTTP/1.1 status line: {line[:40]!r}")
    fields = _Fields()
    for _ in range(MAX_HEADERS):
        line = reader.readline(MAX_LINE + 1)
        if line in {b"\r\n", b"\n"}:
            return int(parts[1]), fields, parts[0]
        if not line.endswith(b"\n") or b":" not in line:
            raise BrokenAnswer(f"a header line is cut or malformed: {line[:40]!r}")
        name, _, value = line.decode("latin-1").partition(":")
        fields.add(name.strip(), value.strip())
    raise BrokenAnswer(f"more than {MAX_HEADERS} header lines")


def _length(text: str) -> int:
    values = {value.strip() for value in text.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise BrokenAnswer(f"Content-Length is not one number: {text[:40]!r}")
    return int(values.pop())


def _read_exactly(reader: t.BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise BrokenAnswer(f"the body ended after {len(data)} of {size} bytes")
    return data


def _read_chunked(reader: t.BinaryIO) -> bytes:
    """Read a ``chunked`` body (and its trailer fields, which are dropped)."""
    chunks = []
    while True:
        line = reader.readline(MAX_LINE + 1)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BrokenAnswer(f"not a chunk size: {line[:40]!r}") from None
        if size == 0:
            break
        chunks.append(_read_exactly(reader, size))
        if _read_exactly(reader, 2) != b"\r\n":
            raise BrokenAnswer("a chunk does not end with CRLF")
    for _ in range(MAX_HEADERS):
        line = reader.readline(MAX_LINE + 1)
        if not line:
            raise BrokenAnswer("the connection closed inside the chunked trailer")
        if line in {b"\r\n", b"\n"}:
            return b"".join(chunks)
    raise BrokenAnswer(f"more than {MAX_HEADERS} trailer lines")
