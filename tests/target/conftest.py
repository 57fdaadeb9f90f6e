"""Fixtures for the target's tests: a plain-http listener that must never be reached.

As an https proxy it records each ``CONNECT host:port`` and refuses the tunnel (502), which shows
which host the target asked without anything leaving the machine.
"""

from __future__ import annotations

import http.server
import threading
import typing as t

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Iterator


class Listener:
    """A plain-http server on loopback that records every request it receives."""

    def __init__(self) -> None:
        received: list[tuple[str, str, bytes]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.command, self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = _record  # noqa: N815 - http.server's handler names

            def do_CONNECT(self) -> None:
                received.append((self.command, self.path, b""))
                self.send_error(502, "Bad Gateway")

            def log_message(self, *args: object) -> None:
                del args

        self.received = received
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()
