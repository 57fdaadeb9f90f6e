"""The HTTPS server: configuration it writes, size limit, crash safety, concurrency (A.3)."""

from __future__ import annotations

import json
import re
import socket
import ssl
import stat
from concurrent.futures import ThreadPoolExecutor

import msal
import pytest
import requests

from dataverse_emulator.http import Response
from dataverse_emulator.server import EmulatorServer
from dataverse_emulator.testing import api_session, https_session


def test_target_config_is_complete_and_works(tmp_path):
    """§1.6 recipe: the written target-config.json (dynamics_url, tenant_id, client_id,
    client_secret, authority_host, ca_bundle) gets a token through MSAL and calls WhoAmI
    (§2.4)."""
    with EmulatorServer(tmp_path, latency="zero") as server:
        config = json.loads((tmp_path / "target-config.json").read_text())
        assert config == server.target_config
        assert set(config) == {
            "dynamics_url",
            "tenant_id",
            "client_id",
            "client_secret",
            "authority_host",
            "ca_bundle",
        }
        assert config["dynamics_url"] == f"https://127.0.0.1:{server.port}"
        assert config["ca_bundle"] == str(tmp_path / "ca.pem")
        assert stat.S_IMODE((tmp_path / "target-config.json").stat().st_mode) == 0o600
        http = requests.Session()
        http.trust_env = False
        http.verify = config["ca_bundle"]
        app = msal.ConfidentialClientApplication(
            config["client_id"],
            client_credential=config["client_secret"],
            authority=f"{config['authority_host']}/{config['tenant_id']}",
            instance_discovery=False,
            http_client=http,
        )
        token = app.acquire_token_for_client(scopes=[f"{config['dynamics_url']}/.default"])
        who = http.get(
            f"{config['dynamics_url']}/api/data/v9.2/WhoAmI",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=5,
        )
        assert who.status_code == 200
        assert who.json()["UserId"] == server.users.first.systemuser_id
        assert who.headers["x-ms-dop-hint"] == "4"


def test_users_file_and_certificate_written(tmp_path):
    """§1.7: a certificate and private key for the certificate user are written for demos."""
    with EmulatorServer(tmp_path, latency="zero") as server:
        users = json.loads((tmp_path / "users.json").read_text())
        assert users["tenant_id"] == server.tenant_id
        assert len(users["users"]) == len(server.users) >= 3
        cert_user = next(u for u in users["users"] if "certificate" in u)
        assert (tmp_path / "client-certificate.pem").read_bytes().startswith(b"-----BEGIN CERT")
        assert cert_user["private_key"] == str(tmp_path / "client-certificate-key.pem")
        assert stat.S_IMODE((tmp_path / "client-certificate-key.pem").stat().st_mode) == 0o600


def test_port_zero_and_port_released(tmp_path):
    """Port 0 picks a real port; stop releases it."""
    server = EmulatorServer(latency="zero").start()
    port = server.port
    assert port > 0
    assert https_session(server).get(f"{server.base_url}/_emulator/health", timeout=5).ok
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_body_over_the_limit_is_413(emulator_factory):
    """§2.5 / §7.5: a request too large → 413 with a Dataverse error body."""
    server = emulator_factory(latency="zero", max_body_bytes=1000)
    session = api_session(server)
    response = session.post(f"{server.api_url}/accounts", data=b"x" * 5000, timeout=5)
    assert response.status_code == 413
    assert set(response.json()["error"]) == {"code", "message"}
    assert session.get(f"{server.api_url}/WhoAmI", timeout=5).status_code == 200


def test_unexpected_exception_is_dataverse_500(emulator_factory):
    """Nothing crashes the server: an exception becomes a Dataverse-shaped 500 (§4.8)."""

    def broken(request, env):
        if request.method == "POST":
            raise RuntimeError("boom")
        request.context["operation_kind"] = "read"
        return Response(200, [("OData-Version", "4.0")], b"{}")

    server = emulator_factory(latency="zero", wire_handler=broken)
    session = api_session(server)
    response = session.post(f"{server.api_url}/accounts", json={}, timeout=5)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "0x80040216"
    assert "boom" not in response.text
    assert session.get(f"{server.api_url}/accounts", timeout=5).status_code == 200


def test_concurrent_clients_see_consistent_state(emulator_factory):
    """Wire runs on the event-loop thread: 8 clients x 20 creates all land, none lost."""
    server = emulator_factory(latency="zero")
    token = api_session(server).headers["Authorization"]

    def create(worker):
        with https_session(server) as session:
            session.headers["Authorization"] = token
            return [
                session.post(
                    f"{server.api_url}/accounts", json={"name": f"w{worker}-{i}"}, timeout=10
                ).status_code
                for i in range(20)
            ]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(create, range(8)) for s in batch]
    assert statuses == [204] * 160
    names = {row["name"] for row in server.admin.snapshot()["account"]}
    assert len(names) == 160
    assert server.admin.counters()["requests"]["single"] == {"204": 160}


def test_shared_fixtures(emulator, reset_emulator, api):
    """tests/conftest.py: the session emulator (latency zero), reset before the test, and an
    authorized session with the §2.2 headers."""
    assert reset_emulator is emulator
    assert emulator.options.latency == "zero"
    assert api.headers["OData-Version"] == "4.0"
    assert api.post(f"{emulator.api_url}/accounts", json={"name": "A"}, timeout=5).ok
    assert len(emulator.admin.snapshot()["account"]) == 1


def test_abort_reset_sends_headers_and_half_the_body(emulator_factory):
    """Abort.RESET: status line and headers with the full Content-Length, half of the body,
    then the connection closes (§10 F11: a connection broken mid-response)."""
    server = emulator_factory(latency="zero", faults=[{"action": "reset"}])
    context = ssl.create_default_context(cafile=str(server.ca_path))
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        request = f"GET /api/data/v9.2/accounts HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
        tls.sendall(request.encode())
        received = b""
        while chunk := tls.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500")
    length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))
    assert 0 < len(body) == length // 2
