"""Fixtures for the target's tests: the emulator as the one Dataverse double, and a listener.

``dataverse`` is a real :class:`DataverseClient` (real MSAL token, real HTTPS) on the reset session
emulator, with a clock whose sleeps return at once, and a record of every Web API request it sent.
The plain-http ``listener`` must never be reached: as an https proxy it records each
``CONNECT host:port`` and refuses the tunnel (502), which shows which host the target asked without
anything leaving the machine.
"""

from __future__ import annotations

import http.server
import json
import threading
import typing as t
from urllib.parse import unquote, urlsplit

import pytest

from dataverse_emulator.testing import running_emulator
from target_dynamics.app_users import AppUsers
from target_dynamics.auth import Credentials, TokenProvider
from target_dynamics.client import DataverseClient
from target_dynamics.collation import DEFAULT
from target_dynamics.metadata import MetadataCache
from target_dynamics.transport import HttpsTransport, make_session, trust_context
from target_dynamics.writer import Writer
from tests.target.transport_double import Sent, TransportDouble

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dataverse_emulator.server import EmulatorServer


class FakeTime:
    """Clock and sleeper in one: sleeping advances the clock instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Dataverse:
    """A client on the emulator, and what it sent: the target's view of Dataverse in unit tests."""

    def __init__(self, server: EmulatorServer, time: FakeTime) -> None:
        config = server.target_config
        trust = trust_context(config["ca_bundle"])
        self.transport = TransportDouble(HttpsTransport(trust))
        tokens = TokenProvider(
            Credentials(config["tenant_id"], config["client_id"], config["client_secret"]),
            authority_host=config["authority_host"],
            resource_url=config["dynamics_url"],
            session=make_session(trust),
        )
        self.server = server
        self.time = time
        self.client = DataverseClient(
            dynamics_url=config["dynamics_url"],
            api_version="9.2",
            tokens=tokens,
            transport=self.transport,
            timeout=30,
            max_retries=3,
            sleep=time.sleep,
            clock=time.clock,
        )

    @property
    def sent(self) -> list[Sent]:
        """Each Web API request answered, in the order sent."""
        return self.transport.sent

    def writer(self, **options: t.Any) -> Writer:
        """A writer on this client alone (``chunk_size``, ``part_retries``)."""
        users = AppUsers([("loader", self.client)])
        return Writer(users, collation=DEFAULT, sleep=self.time.sleep, **options)

    def metadata(self) -> MetadataCache:
        """A fresh metadata cache on this client."""
        return MetadataCache(self.client)

    def paths(self) -> list[str]:
        """Each Web API request as ``METHOD path?query`` below the service root (unquoted)."""
        out = []
        for request in self.sent:
            url = urlsplit(request.url)
            path = url.path.split("/api/data/v9.2/", 1)[1]
            out.append(
                f"{request.method} {unquote(path)}"
                + (f"?{unquote(url.query)}" if url.query else "")
            )
        return out

    def targets(self) -> list[list[dict[str, t.Any]]]:
        """The ``Targets`` of each bulk message sent (§6.1)."""
        return [
            json.loads(r.body or b"{}")["Targets"]
            for r in self.sent
            if r.method == "POST" and r.url.endswith("Multiple")
        ]

    def batch_sizes(self) -> list[int]:
        """How many parts each ``$batch`` request carried (§5.1)."""
        return [
            _text(r.body).count("Content-Type: application/http")
            for r in self.sent
            if r.url.endswith("/$batch")
        ]

    def kinds(self) -> list[str]:
        """The data requests sent: the bulk message's name, ``batch`` or ``get`` (not WhoAmI)."""
        out = []
        for line in self.paths():
            method, path = line.split(" ", 1)
            if path == "WhoAmI":
                continue
            if path == "$batch":
                out.append("batch")
            elif method == "GET":
                out.append("get")
            else:
                out.append(path.rsplit(".", 1)[-1])
        return out


def _text(body: bytes | str | None) -> str:
    return body.decode() if isinstance(body, bytes) else body or ""


ENTITIES = {
    "tables": [
        {
            "logical_name": "new_hobby",
            "columns": [
                {
                    "logical_name": "new_hobbies",
                    "type": "MultiSelectPicklist",
                    "options": [
                        {"value": 1, "label": "Swimming"},
                        {"value": 9, "label": "Camping"},
                        {"value": 3, "label": "Board games"},
                    ],
                }
            ],
        }
    ],
    "keys": [
        {
            "table": "contact",
            "schema_name": "contact_email_name",
            "key_attributes": ["emailaddress1", "lastname"],
        }
    ],
}
"""What the mapper's tests need besides the default environment: a composite key, a multi-select."""


@pytest.fixture(scope="session")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetadataCache]:
    """Metadata read from an emulator started with :data:`ENTITIES` (for pure mapping tests)."""
    path = tmp_path_factory.mktemp("entities") / "entities.json"
    path.write_text(json.dumps(ENTITIES), encoding="utf-8")
    with running_emulator(latency="zero", entities_file=path) as server:
        yield Dataverse(server, FakeTime()).metadata()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def dataverse(reset_emulator: EmulatorServer, fake_time: FakeTime) -> Dataverse:
    """A client on the freshly reset session emulator."""
    return Dataverse(reset_emulator, fake_time)


@pytest.fixture
def dataverse_on(fake_time: FakeTime) -> Callable[[EmulatorServer], Dataverse]:
    """Build a client on another emulator (one from ``emulator_factory``)."""
    return lambda server: Dataverse(server, fake_time)


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
